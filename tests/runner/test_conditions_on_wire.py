"""The lab conditions of the failure-path and HTTPS-refusal cases, seen by clients we did
not write: curl (HTTP 404, a cut body, a silent server, TLS verification against the lab
CA), BusyBox tftp (file not found) and dig (NXDOMAIN). Each condition holds only inside
its block and only for its own path or name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.resolution import (
    ExpectedProvisioning,
    PhoneIdentity,
    PhoneSettings,
    get_profile,
    resolve,
)
from framework.runner.failures import CONDITION_CASES, ConditionCase, applied
from tests.services.conftest import LAB_DNS_NAME, SERVER, Wire, wire_lab

pytestmark = [pytest.mark.netns]

PREFIX = "hgfs"  # not tests/services' hilt-s: both may run at once
MAC, MODEL = "00908F9D8992", "440HD"
CONFIG = b"# configuration\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    with wire_lab(PREFIX, tmp_path_factory.mktemp("conditions-state"), clients=1,
                  tools=("curl", "dig", "busybox")) as wire:
        yield wire


def _case(cid: str) -> ConditionCase:
    return next(c for c in CONDITION_CASES if c.id == cid)


def _expected(case: ConditionCase) -> ExpectedProvisioning:
    return resolve(case.render(SERVER), PhoneIdentity(MODEL, MAC), get_profile("2.2"),
                   PhoneSettings(url_option=160))


def _config_url(case: ConditionCase) -> str:
    (url,) = [r.url for r in _expected(case).requests if r.purpose == "configuration"]
    return url


def _serve_config(lab: Wire, case: ConditionCase) -> str:
    url = _config_url(case)
    lab.content.serve("/" + url.split("/", 3)[3], CONFIG)
    lab.since = time.time()
    return url


def _code(lab: Wire, url: str, *args: str) -> tuple[int, str]:
    r = lab.curl(0, "-o", "/dev/null", "-w", "%{http_code}", *args, url)
    return r.returncode, r.stdout.strip()


def test_missing_configuration_is_a_real_404_then_served_again(lab: Wire) -> None:
    case = _case("fail/http-config-404")
    url = _serve_config(lab, case)
    assert _code(lab, url) == (0, "200")
    with applied(case.condition, lab.services, _expected(case), SERVER):  # type: ignore[arg-type]
        assert _code(lab, url) == (0, "404")
        assert _code(lab, f"http://{SERVER}/other.cfg")[1] == "404"
    assert _code(lab, url) == (0, "200")


def test_missing_configuration_over_tftp_is_error_1(lab: Wire, tmp_path: Path) -> None:
    case = _case("fail/tftp-config-not-found")
    url = _serve_config(lab, case)
    name = url.rsplit("/", 1)[1]
    fetch = ["busybox", "tftp", "-g", "-r", name, "-l", str(tmp_path / "got"), SERVER]
    with applied(case.condition, lab.services, _expected(case), SERVER):  # type: ignore[arg-type]
        r = lab.run(0, fetch)
        assert r.returncode != 0 and "not found" in (r.stderr + r.stdout).lower(), r
    assert lab.run(0, fetch).returncode == 0
    assert (tmp_path / "got").read_bytes() == CONFIG


def test_a_cut_transfer_breaks_mid_body(lab: Wire) -> None:
    case = _case("fail/http-cut")
    url = _serve_config(lab, case)
    with applied(case.condition, lab.services, _expected(case), SERVER):  # type: ignore[arg-type]
        code, status = _code(lab, url)
    assert code == 18 and status == "200"  # curl: partial file
    assert _code(lab, url) == (0, "200")


def test_a_silent_server_takes_the_request_and_never_answers(lab: Wire) -> None:
    case = _case("fail/http-silent")
    url = _serve_config(lab, case)
    with applied(case.condition, lab.services, _expected(case), SERVER):  # type: ignore[arg-type]
        code, status = _code(lab, url, "--max-time", "1.5")
        assert (code, status) == (28, "000")  # curl: operation timed out, no status line
    rec = lab.wait(lambda r: r.protocol == "http" and r.url == url, "the silent request")
    assert rec.outcome == "error" and "silent" in rec.details["error"]
    assert _code(lab, url) == (0, "200")


def test_nxdomain_for_the_case_name_only(lab: Wire) -> None:
    case = _case("fail/dns-nxdomain")
    lab.zone.set("Gone.Lab.Example", SERVER)  # even if something had put it there
    with applied(case.condition, lab.services, _expected(case), SERVER):  # type: ignore[arg-type]
        r = lab.run(0, ["dig", f"@{SERVER}", "Gone.Lab.Example", "A", "+tries=1"])
        assert "status: NXDOMAIN" in r.stdout
        r = lab.run(0, ["dig", f"@{SERVER}", LAB_DNS_NAME, "A", "+short", "+tries=1"])
        assert r.stdout.strip() == SERVER


@pytest.mark.parametrize("kind", ["untrusted-ca", "expired", "wrong-name"])
def test_a_refused_certificate_fails_curl_verification(lab: Wire, kind: str) -> None:
    case = _case(f"https-refusal/{kind}")
    url = _serve_config(lab, case)
    name = url.split("/")[2]
    ca = str(lab.services.ca_pem_path)
    with applied(case.condition, lab.services, _expected(case), SERVER):  # type: ignore[arg-type]
        code, status = _code(lab, url, "--cacert", ca)
        assert code == 60 and status == "000", (kind, code)  # peer certificate refused
        rec = lab.wait(lambda r: r.method == "TLS", "the handshake's record")
        assert rec.details["sni"].lower() == name.lower()
        # curl checks the name after a handshake the server saw complete (TLS 1.3): the
        # evidence that counts is that no request came over it
        assert rec.outcome == ("served" if kind == "wrong-name" else "error"), rec
        assert not [r for r in lab.records(protocol="https") if r.method == "GET"]
        # the certificate is really served: without verification the request completes
        assert _code(lab, url, "-k") == (0, "200")
        done = lab.wait(lambda r: r.method == "TLS" and r.outcome == "served",
                        "the completed handshake")
        assert done.details["tls"] == "handshake completed"
        assert [r for r in lab.records(protocol="https") if r.method == "GET"]
        # other names keep the lab certificate
        other = f"https://{LAB_DNS_NAME}/" + url.split("/", 3)[3]
        assert _code(lab, other, "--cacert", ca) == (0, "200")
    lab.since = time.time()
    assert _code(lab, url, "--cacert", ca)[0] == 6  # the name is gone from the zone again
