"""Invariants of the core over generated inputs (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.resolution import PhoneIdentity, Promise, get_profile, resolve

PHONE = PhoneIdentity("440HD", "001122334455")
codes = st.sampled_from([43, 66, 67, 160, 161])
raw = st.binary(max_size=300)
texty = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=80).map(
    lambda s: s.encode("ascii"))
urlish = st.builds(
    lambda proto, host, path: f"{proto}{host}{path}".encode(),
    st.sampled_from(["", "tftp://", "http://", "HTTPS://", "ftp://", "sftp://"]),
    st.sampled_from(["h.example", "192.0.2.1", "Host", "h:69", "[2001:db8::1]", ""]),
    st.sampled_from(["", "/", "/a.img", "/a.img;b.cfg", "/;b.cfg", "/d/", "/d/a.img; b.cfg", ";"]),
)
values = st.one_of(raw, texty, urlish)
option_sets = st.dictionaries(codes, values, max_size=4)
profiles = st.sampled_from(["2.2", "3.4"])
cfg = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@cfg
@given(option_sets, profiles)
def test_never_raises_and_is_self_consistent(options: dict[int, bytes], profile: str) -> None:
    r = resolve(options, PHONE, profile)
    assert r.explanation
    assert r.rule
    if r.source is None:
        assert r.firmware_url is None and r.config_url is None
    else:
        assert r.firmware_url is not None and r.config_url is not None
        assert r.firmware_url.split("://")[0] in ("tftp", "ftp", "http", "https")


@cfg
@given(option_sets, urlish, profiles)
def test_160_always_wins_when_it_yields_a_url(options: dict[int, bytes], url: bytes,
                                              profile: str) -> None:
    options = {**options, 160: url}
    alone = resolve({160: url}, PHONE, profile)
    r = resolve(options, PHONE, profile)
    if alone.source == "160":
        assert r.source == "160"
        assert (r.firmware_url, r.config_url) == (alone.firmware_url, alone.config_url)


@cfg
@given(urlish, values, values)
def test_option67_never_matters_when_66_holds_names(v66: bytes, a67: bytes, b67: bytes) -> None:
    first = resolve({66: v66, 67: a67}, PHONE)
    if first.source == "66/67" and first.rule.split("+")[0] in ("T10-2/r6-66-names",
                                                                 "T10-2/x-host-66-names"):
        second = resolve({66: v66, 67: b67}, PHONE)
        assert (second.firmware_url, second.config_url) == (first.firmware_url, first.config_url)


@cfg
@given(values)
def test_option67_alone_never_yields_a_url(v67: bytes) -> None:
    r = resolve({67: v67}, PHONE)
    assert r.source is None and r.promise is Promise.PROMISED


@cfg
@given(option_sets)
def test_lower_sources_do_not_change_a_66_result(options: dict[int, bytes]) -> None:
    without43 = {k: v for k, v in options.items() if k != 43}
    a = resolve(without43, PHONE)
    if a.source in ("160", "66/67"):
        b = resolve({**without43, 43: b"http://h43/z.img"}, PHONE)
        assert (b.source, b.firmware_url) == (a.source, a.firmware_url)


@cfg
@given(option_sets)
def test_3_4_never_promises_more_than_2_2_for_the_same_urls(options: dict[int, bytes]) -> None:
    r22 = resolve(options, PHONE, get_profile("2.2"))
    r34 = resolve(options, PHONE, get_profile("3.4"))
    assert (r22.firmware_url, r22.config_url) == (r34.firmware_url, r34.config_url)
    if r22.promise is not Promise.PROMISED:
        assert r34.promise is not Promise.PROMISED
