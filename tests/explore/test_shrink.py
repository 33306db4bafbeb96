"""The shrinker and the pieces it stands on, with the sim planner as the phone."""

from __future__ import annotations

from framework.explore.assess import assess, difference_kinds, without_default_port
from framework.explore.grammar import case_size, make_case
from framework.explore.oracle import PlannerOracle
from framework.explore.shrink import candidates, shrink
from framework.runner.catalogue import VendorTlv
from tests.explore.conftest import SIM_PROFILE


def test_default_ports_only_are_dropped() -> None:
    assert without_default_port("tftp://192.0.2.1:69/a.img") == "tftp://192.0.2.1/a.img"
    assert without_default_port("HTTP://h:80") == "HTTP://h"
    assert without_default_port("http://h:8080/a") == "http://h:8080/a"
    assert without_default_port("ftp://h:69/a") == "ftp://h:69/a"


def test_difference_kinds_drop_the_urls() -> None:
    kinds = difference_kinds([
        "configuration: expected tftp://h/00908F000001.cfg, requested tftp://h/00908f000001.cfg"
        " (MAC case differs)",
        "firmware: expected tftp://h/a.img, not requested",
        "unexpected request http://h/x (http)",
        "configuration requested before firmware (Admin Manual 10.1: ...)",
        "unexpected DNS query for x.example",
        "firmware: expected tftp://h/a.img, requested http://g/b.img (protocol http instead of "
        "tftp, server g instead of h, path /b.img instead of /a.img)"])
    assert kinds == {"configuration:MAC case", "firmware:missing", "extra-request", "order",
                     "extra-dns", "firmware:protocol", "firmware:server", "firmware:path"}


def test_candidates_are_simpler_spellings() -> None:
    case = make_case({160: "  HTTP://AudioCodes.LAB.example:80/d/e/fw.img;  <MODEL>_<MAC>_conf"
                           ".cfg;x.cfg ", 66: b"{ip}\x00\x00", 43: VendorTlv(2, "ftp://{ip}")}, 224)
    seen = {repr(sorted(c.options.items())) + str(c.url_option) for c in candidates(case)}
    assert any("HTTP" not in s and "http://" in s for s in seen)           # protocol case
    assert any(":80" not in s and "160" in s for s in seen)                 # port
    assert any("'{name}" in s or "//{name}" in s for s in seen)             # host spelling
    assert any("(43, 'ftp://{ip}')" in s for s in seen)                     # TLV -> string
    assert any("b'{ip}\\x00'" in s for s in seen)                           # fewer NULs
    assert any("160" in s and "224" not in s for s in seen)                 # no override
    assert len({c.id for c in candidates(case)}) > 20


def test_shrinking_reaches_the_table_row_with_the_phone_as_oracle() -> None:
    phone = PlannerOracle(["mac-case-flipped"], name="ph")
    start = phone.run(make_case({66: "  AUDIOCODES.lab.Example\t", 67: ";", 43: "tftp://{ip}",
                                 160: "gopher://{ip}/x.img"}))
    first = assess(start, SIM_PROFILE)
    assert not first.agree

    def still_shows(t) -> bool:  # type: ignore[no-untyped-def]
        a = assess(t, SIM_PROFILE)
        return not a.agree and bool(a.kinds & first.kinds)

    result = shrink(start, phone.run, still_shows, budget=60)
    # One source left, no larger than the Table 10-1 form 1 row ('tftp://<server>').
    assert len(result.case.options) == 1
    assert case_size(result.case)[:2] <= (1, len("tftp://192.0.2.1"))
    assert result.phone_runs == phone.calls - 1 and not result.exhausted
    assert case_size(result.case) < case_size(start.case)


def test_shrinking_stops_at_the_budget() -> None:
    phone = PlannerOracle(["mac-case-flipped"], name="ph")
    start = phone.run(make_case({66: "  AUDIOCODES.lab.Example\t", 43: "tftp://{ip}/a/b/c.img"}))
    result = shrink(start, phone.run, lambda t: not assess(t, SIM_PROFILE).agree, budget=2)
    assert result.phone_runs == 2 and result.exhausted
