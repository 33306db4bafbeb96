"""The input grammar: reproducible from a seed, covers what the issue lists, stays in the lab."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framework.explore.grammar import OVERRIDE_OPTION, case_size, generate_cases
from framework.resolution import PhoneIdentity, PhoneSettings, get_profile, resolve
from framework.runner.catalogue import LAB_DNS_NAME, VendorTlv
from framework.sim.firmware import REDIRECT_HOST, SIP_PNP_GROUP, Faithful400HD
from tests.explore.conftest import LAB_IP


@pytest.fixture(scope="module")
def cases() -> list:
    return generate_cases(5, 400)


def test_same_seed_same_cases_other_seed_other_cases() -> None:
    a = generate_cases(42, 60)
    assert [c.id for c in a] == [c.id for c in generate_cases(42, 60)]
    assert [c.id for c in a] != [c.id for c in generate_cases(43, 60)]
    assert len(a) == 60 and len({c.id for c in a}) == 60


def test_grammar_covers_the_listed_shapes(cases: list) -> None:
    texts: list[str] = []
    for c in cases:
        for v in c.options.values():
            texts.append(v.text if isinstance(v, VendorTlv) else
                         v.decode("latin-1") if isinstance(v, bytes) else v)
    rendered = [c.render(LAB_IP, LAB_DNS_NAME) for c in cases]
    features = {
        "url option override": any(c.url_option == OVERRIDE_OPTION for c in cases),
        "option 160": any(160 in c.options for c in cases),
        "option 66 and 67": any({66, 67} <= set(c.options) for c in cases),
        "option 43 string": any(isinstance(c.options.get(43), str) for c in cases),
        "option 43 vendor TLV": any(isinstance(c.options.get(43), VendorTlv) for c in cases),
        "all of 160/66/67/43": any({160, 66, 67, 43} <= set(c.options) for c in cases),
        "IP host": any("{ip}" in t for t in texts),
        "lab name, odd case": any(LAB_DNS_NAME.lower() in t.lower() and LAB_DNS_NAME not in t
                                  for t in texts),
        "port": any(re.search(r"\}:\d+|[a-z]:\d+", t) for t in texts),
        "odd-case protocol": any(re.match(r"(?=.*[A-Z])[A-Za-z]+://", t.strip()) for t in texts),
        "unknown protocol": any(t.strip().startswith(("sftp://", "gopher://", "tftps://"))
                                for t in texts),
        "no protocol": any(t and not re.match(r"\s*[A-Za-z]+://", t) and "{" in t
                           for t in texts),
        "directories": any(re.search(r"//[^/]+/[^/;]+/", t) for t in texts),
        "';'-separated names": any(";" in t for t in texts),
        "third name": any(t.count(";") >= 2 for t in texts),
        "placeholders": any("<MODEL>" in t or "<MAC>" in t for t in texts),
        "white space": any(t != t.strip() or "; " in t for t in texts),
        "empty value": any(v == b"" for r in rendered for v in r.values()),
        "NUL padding": any(v.endswith(b"\x00") for r in rendered for v in r.values()),
        "over 255 bytes": any(len(v) > 255 for r in rendered for v in r.values()),
    }
    assert [name for name, seen in features.items() if not seen] == []


def test_without_extra_names_no_value_has_a_third_name() -> None:
    for c in generate_cases(5, 200, extra_names=False):
        for v in c.options.values():
            text = v.text if isinstance(v, VendorTlv) else str(v)
            assert text.count(";") < 2, c


def test_generated_cases_only_ever_point_at_the_lab(cases: list) -> None:
    """The sim firmware asks only the lab (or its own redirect fallback, which the lab DNS
    answers NXDOMAIN) for every generated input."""
    fw = Faithful400HD()
    allowed = {LAB_IP, LAB_DNS_NAME.lower(), REDIRECT_HOST, SIP_PNP_GROUP}
    for c in cases:
        plan = fw.plan(c.render(LAB_IP, LAB_DNS_NAME), model="440HD", mac="00908F000001",
                       settings={"provisioning/url_option_value": str(c.url_option)})
        hosts = {r.host.lower() for r in plan.requests}
        assert hosts <= allowed, (c.options, hosts)


def test_the_core_gives_a_defined_answer_for_every_generated_input(cases: list) -> None:
    for c in cases:
        r = resolve(c.render(LAB_IP, LAB_DNS_NAME), PhoneIdentity("440HD", "00908F000001"),
                    get_profile("2.2"), PhoneSettings(url_option=c.url_option))
        assert r.explanation and r.rule


def test_case_size_counts_options_and_bytes() -> None:
    small, big = generate_cases(1, 2)
    for c in (small, big):
        n, b, s = case_size(c)
        assert n == len(c.options) and b == sum(len(v) for v in c.render(LAB_IP).values())
        assert s == int(c.url_option != 160)


def test_the_same_seed_gives_the_same_cases_in_another_process_with_other_local_code(
        tmp_path: Path) -> None:
    """Hypothesis draws constants from the source of local modules loaded in the process;
    generation must not: ``hil explore``, the fast tests and the wire tests (each with
    other modules loaded) replay one list of cases for one seed."""
    import json
    import subprocess
    import sys

    from framework.runner.session import ROOT

    (tmp_path / "noise_constants.py").write_text(
        "A = 'zz-local-noise'\nB = 'audiocodes.lab.example/zz;x.cfg'\nC = 4242\nD = 37\n"
        "E = b'noise'\nF = ['x' * 3, 'semicolon;', '<MAC>', 'sub/', 7, 11, 13]\n")
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import noise_constants\n"
              "from framework.explore.grammar import generate_cases\n"
              "print(json.dumps([c.id for c in generate_cases(6, 80)]))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert json.loads(out) == [c.id for c in generate_cases(6, 80)]
