"""URL equivalence (issue 16 item 2): RFC 3986 6.2.2 by default, byte-exact a switch."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.resolution import forgiven, get_profile, urls_equivalent
from framework.resolution.equivalence import UrlParts

RFC = get_profile("2.2").interpretation
EXACT = get_profile("2.2").with_switches(url_compare="byte-exact").interpretation
MAC = "00908F9D8992"


@pytest.mark.parametrize(("expected", "observed", "why"), [
    ("tftp://audiocodes.com/440HD.img", "tftp://Audiocodes.com/440HD.img",
     "host case differs (RFC 3986 6.2.2.1, RFC 4343)"),
    ("tftp://audiocodes.com/440HD.img", "Tftp://audiocodes.com/440HD.img",
     "protocol case differs (RFC 3986 6.2.2.1)"),
    ("http://h/a~b.img", "http://h/a%7Eb.img", "percent-encoding differs (RFC 3986 6.2.2.2)"),
    ("http://h/a%2Fb.img", "http://h/a%2fb.img", "percent-encoding differs (RFC 3986 6.2.2.2)"),
    ("http://h/a.img", "http://h:80/a.img", "port 80 is the default (RFC 3986 6.2.3)"),
    ("tftp://h/a.img", "tftp://h:69/a.img", "port 69 is the default (RFC 3986 6.2.3)"),
    ("https://h/a.img", "https://h:/a.img", "empty port (RFC 3986 6.2.3)"),
])
def test_equivalent_by_rfc3986_and_said_why(expected: str, observed: str, why: str) -> None:
    assert urls_equivalent(expected, observed, interp=RFC)
    assert forgiven(expected, observed, interp=RFC) == (why,)
    assert not urls_equivalent(expected, observed, interp=EXACT)
    assert forgiven(expected, observed, interp=EXACT) == ()


@pytest.mark.parametrize(("expected", "observed"), [
    ("http://h/a.img", "http://h/A.img"),  # the path is case-sensitive
    ("http://h/a.img", "http://h:8080/a.img"),  # not the default port
    ("http://h/a.img", "https://h/a.img"),
    ("http://h/a.img", "http://g/a.img"),
    ("http://h/a%2Fb.img", "http://h/a/b.img"),  # a reserved character stays encoded
    ("tftp://h/00908F9D8992.cfg", "tftp://h/00908f9d8992.cfg"),  # the MAC: its own check
])
def test_not_equivalent(expected: str, observed: str) -> None:
    assert not urls_equivalent(expected, observed, interp=RFC, mac=MAC)
    assert forgiven(expected, observed, interp=RFC, mac=MAC) == ()


def test_mac_case_left_to_its_own_assertion_or_forgiven_by_the_switch() -> None:
    e, o = "tftp://h/00908F9D8992.cfg", "tftp://H/00908f9d8992.cfg"
    assert urls_equivalent(e, o, interp=RFC, mac=MAC, mac_case=False)
    assert forgiven(e, o, interp=RFC, mac=MAC, mac_case=False, mac_note=False) == (
        "host case differs (RFC 3986 6.2.2.1, RFC 4343)",)
    assert forgiven(e, o, interp=RFC, mac=MAC, mac_case=False)[-1] == \
        "MAC case differs (switch mac_compare=case-insensitive)"


def test_byte_exact_with_host_compare_forgives_only_host_case() -> None:
    loose = get_profile("2.2").with_switches(url_compare="byte-exact",
                                             host_compare="case-insensitive").interpretation
    assert urls_equivalent("http://h/a.img", "http://H/a.img", interp=loose)
    assert not urls_equivalent("http://h/a.img", "http://h:80/a.img", interp=loose)


def test_ipv6_literal_and_userinfo() -> None:
    assert urls_equivalent("http://[2001:db8::a]/a.img", "http://[2001:DB8::A]:80/a.img",
                           interp=RFC)
    assert urls_equivalent("ftp://u%7e@h/a.img", "ftp://u~@h/a.img", interp=RFC)
    assert not urls_equivalent("ftp://u@h/a.img", "ftp://U@h/a.img", interp=RFC)


_URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
    st.sampled_from(["http", "HTTP", "tftp", "Tftp", "ftp", "https"]),
    st.from_regex(r"[A-Za-z0-9]{1,8}(\.[A-Za-z0-9]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(["", ":", ":80", ":69", ":21", ":443", ":8080"]),
    st.from_regex(r"([A-Za-z0-9._~;/-]|%[0-9A-Fa-f]{2}){0,20}", fullmatch=True),
)


@given(_URLS, _URLS)
def test_equivalence_is_symmetric_and_normalising_is_idempotent(a: str, b: str) -> None:
    assert urls_equivalent(a, b, interp=RFC) == urls_equivalent(b, a, interp=RFC)
    n = UrlParts.split(a).normalised()
    assert n.normalised() == n
    assert urls_equivalent(a, a.upper().split("://")[0] + "://" + a.split("://", 1)[1],
                           interp=RFC)
