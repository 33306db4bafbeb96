"""Verdicts from expected vs observed requests: every way a phone can be wrong is named."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from framework.resolution import ExpectedProvisioning, PhoneIdentity, get_profile, resolve
from framework.runner.verdict import (
    Judgement,
    Observed,
    Verdict,
    describe_difference,
    difference_kind,
    judge,
    url_differences,
)

PHONE = PhoneIdentity("440HD", "00908F000001")
P22 = get_profile("2.2")


def files(*urls: str) -> list[Observed]:
    return [Observed(float(i), u.split(":")[0], u, None) for i, u in enumerate(urls)]


def dns(*names: str) -> list[Observed]:
    return [Observed(0.0, "dns", None, n) for n in names]


EXP = resolve({66: b"AudioCodes.Lab.Example"}, PHONE)
FW = "tftp://audiocodes.lab.example/440HD.img"
CFG = "tftp://audiocodes.lab.example/00908F000001.cfg"


def j(obs_files: list[Observed], obs_dns: list[Observed] | None = None,
      exp: ExpectedProvisioning = EXP) -> Judgement:
    return judge(exp, obs_files, obs_dns or [], mac=PHONE.mac, interp=P22.interpretation,
                 model=PHONE.model)


def test_exact_requests_pass() -> None:
    r = j(files(FW, CFG), dns("audiocodes.lab.example"))
    assert r.verdict is Verdict.PASSED and "2 expected URLs" in r.reason


def test_retries_of_the_same_url_are_not_extra() -> None:
    assert j(files(FW, FW, CFG)).verdict is Verdict.PASSED


def test_missing_config_fails_and_says_which() -> None:
    r = j(files(FW))
    assert r.verdict is Verdict.FAILED
    assert f"configuration: expected {CFG}, not requested" in r.reason


def test_mac_case_difference_is_named() -> None:
    r = j(files(FW, CFG.replace("00908F000001", "00908f000001")))
    assert r.verdict is Verdict.FAILED
    assert r.reason == (f"configuration: expected {CFG}, requested "
                        "tftp://audiocodes.lab.example/00908f000001.cfg (MAC case differs)")


def test_host_case_difference_is_a_note_by_default() -> None:
    # RFC 3986 6.2.2.1 / RFC 4343: host case is insignificant; Table 10-2's capitals are
    # typography. The difference is a note in the case, never a failure (issue 16 item 2).
    kept = FW.replace("audiocodes.lab.example", "AudioCodes.Lab.Example")
    r = j(files(kept, CFG))
    assert r.verdict is Verdict.PASSED and r.matches
    assert r.notes == (f"firmware: requested {kept}, equivalent to the expected {FW} (host "
                       "case differs (RFC 3986 6.2.2.1, RFC 4343)): a note, not a failure",)
    assert "note: firmware: requested" in r.reason


def test_host_case_difference_fails_under_byte_exact() -> None:
    strict = P22.with_switches(url_compare="byte-exact").interpretation
    r = judge(EXP, files(FW.replace("audiocodes.lab.example", "AudioCodes.Lab.Example"), CFG),
              [], mac=PHONE.mac, interp=strict, model=PHONE.model)
    assert r.verdict is Verdict.FAILED and not r.notes
    assert r.reason == (f"firmware: expected {FW}, requested "
                        "tftp://AudioCodes.Lab.Example/440HD.img (host case differs)")


def test_wrong_protocol_is_named() -> None:
    r = j(files(FW.replace("tftp", "http"), CFG))
    assert r.reason == (f"firmware: expected {FW}, requested http://audiocodes.lab.example/"
                        "440HD.img (protocol http instead of tftp)")


# A configuration name with both placeholders (Table 10-1, '<MODEL>_<MAC>_conf.cfg').
NAMED = resolve({160: b"tftp://AudioCodes.Lab.Example/<MODEL>.img;<MODEL>_<MAC>_conf.cfg"},
                PHONE)
NAMED_CFG = "tftp://audiocodes.lab.example/440HD_00908F000001_conf.cfg"


def test_lower_cased_model_is_not_called_a_mac_case_difference() -> None:
    # The case: a phone that lower-cases <MODEL> was reported as "MAC case differs".
    r = j(files(FW, NAMED_CFG.replace("440HD_", "440hd_")), exp=NAMED)
    assert NAMED.config_url == NAMED_CFG and r.verdict is Verdict.FAILED
    assert r.reason == (f"configuration: expected {NAMED_CFG}, requested "
                        "tftp://audiocodes.lab.example/440hd_00908F000001_conf.cfg "
                        "(model case differs: 440hd instead of 440HD)")


def test_model_case_is_found_without_the_model_given() -> None:
    # judge() called as before the model keyword: a 400HD name in the expected file.
    r = judge(NAMED, files(FW, NAMED_CFG.replace("440HD_", "440hd_")), [], mac=PHONE.mac,
              interp=P22.interpretation)
    assert "(model case differs: 440hd instead of 440HD)" in r.reason
    assert "MAC" not in r.reason


def test_model_and_mac_case_both_named() -> None:
    r = j(files(FW, "tftp://audiocodes.lab.example/440hd_00908f000001_conf.cfg"), exp=NAMED)
    assert r.reason.endswith("(model case differs: 440hd instead of 440HD, MAC case differs)")


def test_model_missing_is_named() -> None:
    r = j(files(FW, "tftp://audiocodes.lab.example/_00908F000001_conf.cfg"), exp=NAMED)
    assert r.reason.endswith("(model missing from the file name)")


M = PHONE.mac
H = "tftp://audiocodes.lab.example"


def say(expected: str, observed: str) -> str:
    return describe_difference(expected, observed, M, PHONE.model)


def test_extension_case_and_other_extension() -> None:
    assert say(f"{H}/{M}.cfg", f"{H}/{M}.CFG") == "extension .CFG instead of .cfg"
    assert say(f"{H}/440HD.img", f"{H}/440HD.cfg") == "extension .cfg instead of .img"
    assert say(f"{H}/440HD.img", f"{H}/440HD") == "no extension instead of .img"


def test_directory_differs() -> None:
    assert say(f"{H}/{M}.cfg", f"{H}/420HD/{M}.cfg") == "directory /420HD/ instead of /"
    assert say(f"{H}/420HD/{M}.cfg", f"{H}/420hd/{M}.cfg") == \
        "directory case differs: /420hd/ instead of /420HD/"
    assert say(f"{H}/a/b/{M}.cfg", f"{H}/a/c/{M}.cfg") == "directory /c/ instead of /b/"
    assert say(f"{H}/a/b/{M}.cfg", f"{H}/a/{M}.cfg") == "directory /a/ instead of /a/b/"


def test_directory_missing() -> None:
    # config-at-server-root: '[F] http://host/420HD/420HD.img;420HD.cfg'
    assert say(f"{H}/420HD/{M}.cfg", f"{H}/{M}.cfg") == \
        "file at the server root instead of /420HD/"


def test_host_case_and_other_server() -> None:
    assert say(f"{H}/{M}.cfg", f"tftp://AudioCodes.Lab.Example/{M}.cfg") == "host case differs"
    assert say(f"{H}/{M}.cfg", f"tftp://192.0.2.1/{M}.cfg") == \
        "server 192.0.2.1 instead of audiocodes.lab.example"


def test_protocol_and_port() -> None:
    assert say(f"{H}/{M}.cfg", f"HTTP://audiocodes.lab.example/{M}.cfg") == \
        "protocol HTTP instead of tftp"
    assert say(f"{H}/{M}.cfg", f"tftp://TFTP.example:6969/{M}.cfg") == \
        "server TFTP.example instead of audiocodes.lab.example, port 6969 instead of the default"
    assert say(f"http://h:8080/{M}.cfg", f"http://h:8081/{M}.cfg") == "port 8081 instead of 8080"
    assert say(f"http://h:8080/{M}.cfg", f"http://h/{M}.cfg") == "default port instead of 8080"
    assert say(f"http://[2001:db8::1]:8080/{M}.cfg", f"http://[2001:db8::1]/{M}.cfg") == \
        "default port instead of 8080"


def test_blank_after_semicolon() -> None:
    # semicolon-space-kept: 'different_firmware_name.img; <MODEL>_<MAC>_conf.cfg'
    assert say(f"{H}/d/440HD_{M}_conf.cfg", f"{H}/d/ 440HD_{M}_conf.cfg") == \
        "blank after ';' kept in the file name"
    assert say(f"http://h/440HD_{M}.cfg", f"http://h/%20440HD_{M}.cfg") == \
        "blank after ';' kept in the file name"


def test_further_name_kept_after_the_file_name() -> None:
    # 'fw.img;c.cfg;x': a phone that keeps the third name in the configuration name
    assert say(f"{H}/c.cfg", f"{H}/c.cfg;x") == "';x' kept after the file name"
    assert say(f"{H}/d/{M}.cfg", f"{H}/d/{M}.cfg;/root.cfg") == \
        "';/root.cfg' kept after the file name"


def test_doubled_slash() -> None:
    assert say(f"{H}/d/{M}.cfg", f"{H}/d//{M}.cfg") == "doubled slash in the path"
    assert say(f"{H}/{M}.cfg", f"{H}//{M}.cfg") == "doubled slash in the path"


def test_another_mac_and_another_model() -> None:
    assert say(f"{H}/{M}.cfg", f"{H}/001122AABBCC.cfg") == \
        "MAC 001122AABBCC instead of 00908F000001"
    assert say(f"{H}/{M}.cfg", f"{H}/.cfg") == "MAC missing from the file name"
    assert say(f"{H}/440HD.img", f"{H}/420HD.img") == "model 420HD instead of 440HD"
    assert say(f"{H}/{M}.cfg", f"{H}/440HD_{M}.cfg") == "model 440HD added to the file name"


def test_rest_of_the_name() -> None:
    assert say(f"{H}/440HD_{M}_conf.cfg", f"{H}/440HD_{M}_CONF.cfg") == \
        f"file name case differs: 440HD_{M}_CONF.cfg instead of 440HD_{M}_conf.cfg"
    assert say(f"{H}/440HD_{M}_conf.cfg", f"{H}/440HD_{M}.cfg") == \
        f"file name 440HD_{M}.cfg instead of 440HD_{M}_conf.cfg"


def test_unrelated_path_keeps_the_whole_path() -> None:
    assert say(f"{H}/a.img", f"{H}/b.img") == "path /b.img instead of /a.img"
    # the firmware guessed for a missing configuration: another file, not 'MAC added'
    assert say(f"{H}/440HD.img", f"{H}/{M}.cfg") == f"path /{M}.cfg instead of /440HD.img"
    assert say("tftp://h/a.img", "http://g/b.img") == \
        "protocol http instead of tftp, server g instead of h, path /b.img instead of /a.img"
    assert say(f"{H}/{M}.cfg", f"{H}/{M}.cfg") == "same URL"


def test_every_phrase_reads_back_as_its_kind() -> None:
    # Callers (exploration's difference kinds) read a reason back: one kind per phrase,
    # no values, and no phrase holds the "(" or ", " the reason wraps them in.
    seen = [d for e, o in [(f"{H}/440HD_{M}_conf.cfg", f"HTTP://h:1/x/ 440hd_{M.lower()}_c.CFG"),
                           (f"http://H:80/a/{M}.cfg", f"http://h//{M}.cfg")]
            for d in url_differences(e, o, mac=M, model="440HD")]
    assert {d.kind for d in seen} == {
        "protocol", "server", "port", "directory", "blank", "model case", "MAC case",
        "file name", "extension", "host case", "default port", "doubled slash",
        "server root"}
    for d in seen:
        assert difference_kind(d.phrase) == d.kind
        assert "(" not in d.phrase and ", " not in d.phrase


MODELS = ["405HD", "420HD", "430HD", "440HD", "445HD", "450HD"]
PROTOCOLS = ["tftp", "http", "https", "ftp"]
HOSTS = ["audiocodes.lab.example", "192.0.2.1", "Prov.Example"]
EXTS = [".cfg", ".img", ".txt"]
words = st.text("ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=6)
hexes = st.text("0123456789ABCDEF", min_size=12, max_size=12)


def _other(draw: st.DrawFn, choices: list[str], value: str) -> str:
    return draw(st.sampled_from([c for c in choices if c.lower() != value.lower()]))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, str, str, str]:
    """(expected URL, observed URL, the one part changed, MAC, model)."""
    mac, model = draw(hexes), draw(st.sampled_from(MODELS))
    proto, host = draw(st.sampled_from(PROTOCOLS)), draw(st.sampled_from(HOSTS))
    port = draw(st.sampled_from([None, "69", "8080"]))
    dirs = draw(st.lists(words, max_size=3))
    pieces = draw(st.sampled_from([["model"], ["MAC"], ["model", "MAC"], ["MAC", "model"]]))
    literal = draw(st.none() | words)
    if literal is not None:
        pieces.insert(draw(st.integers(0, len(pieces))), "literal")
    sep, ext = draw(st.sampled_from(["_", "-"])), draw(st.sampled_from(EXTS))

    def url(proto: str = proto, host: str = host, port: str | None = port,
            dirs: list[str] = dirs, text: dict[str, str] | None = None, ext: str = ext,
            blank: str = "", slash: int = -1) -> str:
        values = {"model": model, "MAC": mac, "literal": literal or ""} | (text or {})
        segments = [*dirs, blank + sep.join(values[p] for p in pieces) + ext]
        if slash >= 0:
            segments.insert(slash, "")
        return f"{proto}://{host}{f':{port}' if port else ''}/" + "/".join(segments)

    changes: list[tuple[str, str]] = [
        ("protocol", url(proto=_other(draw, PROTOCOLS, proto))),
        ("host", url(host=_other(draw, HOSTS, host))),
        ("port", url(port=_other(draw, ["69", "8080", "2121"], port or ""))),
        ("slash", url(slash=draw(st.integers(0, len(dirs))))),
        ("blank", url(blank=draw(st.sampled_from([" ", "  ", "%20"])))),
        ("extension", url(ext=draw(st.sampled_from([ext.upper(), "", _other(draw, EXTS, ext)])))),
    ]
    if "model" in pieces:
        changes.append(("model", url(text={"model": draw(st.sampled_from(
            [model.lower(), "", _other(draw, MODELS, model)]))})))
    if "MAC" in pieces:
        changes.append(("MAC", url(text={"MAC": draw(st.sampled_from(
            ["", draw(hexes.filter(lambda h: h != mac))]))})))
    if port:
        changes.append(("port", url(port=None)))
    if not host[0].isdigit():
        changes.append(("host", url(host=host.swapcase())))
    if "MAC" in pieces and mac.lower() != mac:
        changes.append(("MAC", url(text={"MAC": mac.lower()})))
    if literal is not None:
        changes.append(("file name", url(text={"literal": draw(st.sampled_from(
            [literal.swapcase(), _other(draw, ["conf", "phone", "x"], literal)]))})))
    if dirs:
        i = draw(st.integers(0, len(dirs) - 1))
        changes += [
            ("directory", url(dirs=[]) if len(dirs) == 1 else url(dirs=dirs[:i] + dirs[i + 1:])),
            ("directory", url(dirs=[*dirs[:i], dirs[i].swapcase(), *dirs[i + 1:]])),
            ("directory", url(dirs=[*dirs[:i], dirs[i] + "x1", *dirs[i + 1:]])),
        ]
    else:
        changes.append(("directory", url(dirs=draw(st.lists(words, min_size=1, max_size=2)))))
    part, observed = draw(st.sampled_from(changes))
    return url(), observed, part, mac, model


@given(mutated())
def test_a_single_change_is_named_by_its_part_alone(case: tuple[str, str, str, str, str]) -> None:
    expected, observed, part, mac, model = case
    found = url_differences(expected, observed, mac=mac, model=model)
    assert {d.part for d in found} == {part}, (expected, observed, found)
    assert describe_difference(expected, observed, mac, model) == \
        ", ".join(d.phrase for d in found)
    assert all(difference_kind(d.phrase) == d.kind for d in found)


def test_extra_request_fails() -> None:
    r = j(files(FW, CFG, "http://audiocodes.lab.example/extra.cfg"))
    assert r.verdict is Verdict.FAILED and "unexpected request http://audiocodes" in r.reason


def test_order_is_checked() -> None:
    r = j(files(CFG, FW))
    assert r.verdict is Verdict.FAILED and "configuration requested before firmware" in r.reason


def test_unexpected_dns_query_fails() -> None:
    r = j(files(FW, CFG), dns("redirect.audiocodes.com"))
    assert r.verdict is Verdict.FAILED and "unexpected DNS query for redirect" in r.reason


def test_redirect_lookup_allowed_when_nothing_expected() -> None:
    none = resolve({}, PHONE)
    assert j([], dns("redirect.audiocodes.com"), exp=none).verdict is Verdict.PASSED
    assert j(files(FW), exp=none).verdict is Verdict.FAILED


def test_unpromised_rows_are_observations_either_way() -> None:
    pending = resolve({66: b"http://AudioCodes.Lab.Example"}, PHONE, "3.4")
    same = judge(pending, files("http://audiocodes.lab.example/440HD.img",
                                "http://audiocodes.lab.example/00908F000001.cfg"), [],
                 mac=PHONE.mac, interp=P22.interpretation)
    other = judge(pending, [], [], mac=PHONE.mac, interp=P22.interpretation)
    assert same.verdict is Verdict.OBSERVED and same.matches
    assert other.verdict is Verdict.OBSERVED and not other.matches
    assert "not requested" in other.reason
