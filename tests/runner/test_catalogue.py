"""The case catalogue covers the manual's tables; each case renders to lab option bytes."""

from __future__ import annotations

from framework.resolution import PhoneIdentity, resolve
from framework.runner.catalogue import ALL_CASES, PRECEDENCE, TABLE_10_1, TABLE_10_2, by_id

PHONE = PhoneIdentity("440HD", "00908F000001")


def rules_of(cases):  # type: ignore[no-untyped-def]
    return {resolve(c.render("192.0.2.1"), PHONE).rule.split("+")[0] for c in cases}


def test_every_table_10_2_row_is_exercised() -> None:
    rules = rules_of(TABLE_10_2)
    for row in ("T10-2/r2-host", "T10-2/r3-host-67-names", "T10-2/r4-protocol-host",
                "T10-2/r5-protocol-host-67-names", "T10-2/r6-66-names", "none"):
        assert row in rules


def test_every_table_10_1_form_is_exercised() -> None:
    assert {"T10-1/server", "T10-1/firmware", "T10-1/firmware-config",
            "T10-1/config"} <= rules_of(TABLE_10_1)


def test_precedence_covers_every_non_empty_subset() -> None:
    subsets = {c.id for c in PRECEDENCE if c.id.count("/") == 1 and "falls" not in c.id
               and "url-option" not in c.id}
    assert len(subsets) == 7


def test_no_case_points_outside_the_lab() -> None:
    for case in ALL_CASES:
        for value in case.render("192.0.2.1").values():
            assert b"192.168." not in value and b"audiocodes.com" not in value.lower()


def test_render_and_long_option() -> None:
    long = by_id("robust/160-long-rfc3396").render("192.0.2.1")[160]
    assert len(long) > 255 and long.startswith(b"http://192.0.2.1/")
    assert by_id("t10-2/r1-66-empty").render("192.0.2.1")[66] == b""
