"""MANIFEST.json: a signed run verifies; every kind of tampering is named in one line.

Run directories are built from the record samples plus a few evidence files (no lab)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from framework.records import load_record
from framework.report import html, manifest, signing
from framework.report.cli import app
from framework.runner.record import CertificationRecord
from tests.records.samples import case, phone_record, run_record

ROOT = Path(__file__).resolve().parents[2]
EVIDENCE = "evidence/ph1/a/requests.jsonl"


def make_run(d: Path, verdict: str = "passed") -> Path:
    rec = CertificationRecord(d, run_record(d.name, start=0.0), [phone_record()])
    ev = d / EVIDENCE
    ev.parent.mkdir(parents=True)
    ev.write_text('{"url": "tftp://192.0.2.1/440HD.img"}\n')
    (d / "consoles").mkdir()
    (d / "consoles" / "ph1.console.log").write_text("boot\nprovisioning\n")
    rec.add_case(case("a", "ph1", verdict, observed=[], start=0.0))
    rec.finish()
    (d / "junit.xml").write_text("<testsuites/>\n")
    html.write(load_record(d), d / "certification.html")
    return d


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    a, a_pub, _ = signing.keygen(d / "a.key")
    b, b_pub, _ = signing.keygen(d / "b.key")
    return {"a": a, "a.pub": a_pub, "b": b, "b.pub": b_pub}


def hil(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def signed_run(tmp_path: Path, keys: dict[str, Path]) -> Path:
    run = make_run(tmp_path / "r1")
    code, out = hil("sign", run, "--key", keys["a"])
    assert code == 0, out
    return run


def fp(key: Path) -> str:
    return signing.fingerprint(signing.load_public_key(str(key)))[:16]


def test_signed_run_verifies(tmp_path: Path, keys: dict[str, Path]) -> None:
    run = signed_run(tmp_path, keys)
    code, out = hil("verify", run, "--key", keys["a.pub"])
    assert code == 0, out
    assert f"signed by key {fp(keys['a.pub'])}" in out
    assert f"evidence sha256:{manifest.evidence_digest(run)}" in out
    code, out = hil("verify", run)  # the signature is checked without --key too
    assert code == 0, out
    envelope = json.loads((run / "MANIFEST.json").read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    names = [s["name"] for s in stmt["subject"]]
    assert names == sorted(names) and "MANIFEST.json" not in names
    assert {EVIDENCE, "certification.json", "cases.jsonl", "junit.xml"} <= set(names)
    pred = stmt["predicate"]
    assert pred["record"]["sha256"] == next(s["digest"]["sha256"] for s in stmt["subject"]
                                            if s["name"] == "certification.json")
    assert pred["framework"]["revision"] == "abc" and pred["framework"]["dirty"] is False
    assert pred["resolution"]["profiles"][0]["name"] == "2.2"
    assert envelope["signatures"][0]["keyid"].startswith(fp(keys["a.pub"]))


def _flip(path: Path, at: int = 3) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _tamper_payload(run: Path) -> None:
    """One byte of the signed payload: a digit of the evidence file's hash."""
    m = run / "MANIFEST.json"
    envelope = json.loads(m.read_text())
    payload = base64.b64decode(envelope["payload"]).decode()
    stmt = json.loads(payload)
    sha = next(s["digest"]["sha256"] for s in stmt["subject"] if s["name"] == EVIDENCE)
    forged = sha[:-1] + ("0" if sha[-1] != "0" else "1")
    envelope["payload"] = base64.b64encode(payload.replace(sha, forged).encode()).decode()
    m.write_text(json.dumps(envelope))


@pytest.mark.parametrize(("tamper", "line"), [
    (lambda r: _flip(r / EVIDENCE), f"changed: {EVIDENCE} (sha256 "),
    (lambda r: _flip(r / "consoles" / "ph1.console.log"), "changed: consoles/ph1.console.log"),
    (lambda r: _flip(r / "certification.json", 40), "record changed: certification.json"),
    (_tamper_payload, "manifest changed: payload does not match its signature"),
    (lambda r: (r / "junit.xml").unlink(), "removed: junit.xml"),
    (lambda r: (r / "evidence" / "ph1" / "x.txt").write_text("late\n"),
     "added: evidence/ph1/x.txt"),
], ids=["evidence", "console", "record", "manifest-payload", "removed", "added"])
def test_each_tampering_fails_with_its_line(tmp_path: Path, keys: dict[str, Path],
                                            tamper: object, line: str) -> None:
    run = signed_run(tmp_path, keys)
    tamper(run)  # type: ignore[operator]
    for extra in ([], ["--key", keys["a.pub"]]):
        code, out = hil("verify", run, *extra)
        assert code == 1, out
        assert any(x.startswith(line) for x in out.splitlines()), out
    code, out = hil("verify", run, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["verified"] is False
    assert any(p.startswith(line) for p in doc["problems"])


def test_a_changed_envelope_byte_fails(tmp_path: Path, keys: dict[str, Path]) -> None:
    run = signed_run(tmp_path, keys)
    m = run / "MANIFEST.json"
    text = m.read_text()
    at = text.index('"sig": "') + 12
    m.write_text(text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:])
    code, out = hil("verify", run)
    assert code == 1 and ("manifest changed: payload does not match its signature" in out
                          or "bad signature" in out), out


def test_a_different_key_fails(tmp_path: Path, keys: dict[str, Path]) -> None:
    run = signed_run(tmp_path, keys)
    code, out = hil("verify", run, "--key", keys["b.pub"])
    assert code == 1
    assert f"wrong key: signed by {fp(keys['a.pub'])}, expected {fp(keys['b.pub'])}" in out
    # re-signed by another key (files untouched): verifies, but not as key a's
    assert hil("sign", run, "--key", keys["b"])[0] == 0
    assert hil("verify", run)[0] == 0
    code, out = hil("verify", run, "--key", keys["a.pub"])
    assert code == 1 and "wrong key" in out


def test_unsigned_run_verifies_without_key_only(tmp_path: Path, keys: dict[str, Path]) -> None:
    run = make_run(tmp_path / "r1")
    seal = manifest.write(run)
    assert seal.fingerprint is None
    code, out = hil("verify", run)
    assert code == 0 and "not signed" in out, out
    code, out = hil("verify", run, "--key", keys["a.pub"])
    assert code == 1 and out.splitlines()[0] == "not signed"
    code, out = hil("verify", make_run(tmp_path / "r2"))
    assert code == 1 and out.splitlines()[0] == "no MANIFEST.json"


def test_renderings_show_the_evidence_digest_not_in_it(tmp_path: Path,
                                                       keys: dict[str, Path]) -> None:
    run = signed_run(tmp_path, keys)
    digest = manifest.evidence_digest(run)
    html.write(load_record(run), run / "certification.html")  # re-rendered: same evidence
    assert manifest.evidence_digest(run) == digest
    page = (run / "certification.html").read_text()
    assert f"sha256:{digest}" in page and '<footer id="manifest-digest"' in page
    assert fp(keys["a.pub"]) in page  # the manifest seals this evidence: its key is shown
    code, out = hil("verify", run)
    assert code == 1 and out.splitlines()[0].startswith("changed: certification.html")
    _flip(run / EVIDENCE)
    assert manifest.evidence_digest(run) != digest


def test_sign_refuses_changed_files_unless_forced(tmp_path: Path, keys: dict[str, Path]) -> None:
    run = signed_run(tmp_path, keys)
    _flip(run / EVIDENCE)
    code, out = hil("sign", run, "--key", keys["a"])
    assert code == 1 and f"changed: {EVIDENCE}" in out and "--force" in out
    code, out = hil("sign", run, "--key", keys["a"], "--force")
    assert code == 0 and hil("verify", run)[0] == 0


def test_bundle_moved_elsewhere_verifies(tmp_path: Path, keys: dict[str, Path]) -> None:
    run = signed_run(tmp_path, keys)
    code, out = hil("bundle", run, "-o", tmp_path / "out" / "r1.tar.gz")
    assert code == 0, out
    moved = tmp_path / "far" / "away" / "r1.tar.gz"
    moved.parent.mkdir(parents=True)
    (tmp_path / "out" / "r1.tar.gz").rename(moved)
    import shutil

    shutil.rmtree(run)  # nothing refers back to the run directory
    code, out = hil("verify", moved, "--key", keys["a.pub"])
    assert code == 0, out
    with tarfile.open(moved) as tar:
        assert all(n.startswith("r1/") for n in tar.getnames())
        assert "r1/MANIFEST.json" in tar.getnames()


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("member", [
    tarfile.TarInfo("r1/../../escape.txt"),
    tarfile.TarInfo("/tmp/absolute.txt"),
    tarfile.TarInfo("r1/link"),
], ids=["dotdot", "absolute", "symlink"])
def test_a_bundle_leaving_its_directory_is_refused(tmp_path: Path,
                                                   member: tarfile.TarInfo) -> None:
    if member.name.endswith("link"):
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    bad = _tar_with(tmp_path / "bad.tar.gz", member)
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "report", "verify", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "refused" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path.parent / "escape.txt").exists()


def test_diff_refuses_a_tampered_run_unless_unverified(tmp_path: Path,
                                                        keys: dict[str, Path]) -> None:
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b", verdict="failed")
    for r in (a, b):
        manifest.write(r)
    assert hil("diff", a, b, "--json")[0] == 1  # both verify: compared, one verdict changed
    _flip(b / EVIDENCE)
    code, out = hil("diff", a, b, "--json")
    assert code == 2 and f"{b}: changed: {EVIDENCE}" in out and "--unverified" in out
    code, out = hil("diff", a, b, "--json", "--unverified")
    assert code == 1 and json.loads(out)[0]["case"] == "a"


def test_bad_input_is_one_line_exit_2(tmp_path: Path, keys: dict[str, Path]) -> None:
    run = signed_run(tmp_path, keys)
    for args in (["verify", str(tmp_path / "nope")],
                 ["verify", str(run), "--key", str(tmp_path / "missing.pub")],
                 ["verify", str(run), "--key", str(keys["a"])],  # a private key given as PUB
                 ["sign", str(run), "--key", "env:HIL_TEST_NO_SUCH_KEY"]):
        proc = subprocess.run([sys.executable, "-m", "framework.cli", "report", *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "HIL_SECRETS_FILE": "/nonexistent"})
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr and "PRIVATE KEY" not in proc.stderr


def test_keys_never_appear_in_the_manifest_or_output(tmp_path: Path,
                                                     keys: dict[str, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    private_pem = keys["a"].read_text()
    secret_lines = [line for line in private_pem.splitlines() if "-----" not in line]
    raw = signing.load_private_key(str(keys["a"])).private_bytes_raw()
    forms = [*secret_lines, raw.hex(), base64.b64encode(raw).decode()]
    monkeypatch.setenv("HIL_TEST_SIGNING_KEY", private_pem)  # the env:NAME reference
    run = make_run(tmp_path / "r1")
    outputs = [hil("sign", run, "--key", "env:HIL_TEST_SIGNING_KEY")[1],
               hil("verify", run, "--key", keys["a.pub"])[1],
               hil("verify", run, "--json")[1],
               hil("bundle", run, "-o", tmp_path / "b.tar.gz")[1]]
    assert "signed by key" in outputs[0]
    envelope = json.loads((run / "MANIFEST.json").read_text())
    texts = [*outputs, (run / "MANIFEST.json").read_text(),
             base64.b64decode(envelope["payload"]).decode()]
    for text in texts:
        for form in forms:
            assert form not in text
        assert "PRIVATE KEY" not in text and "BEGIN PUBLIC KEY" not in text
    assert all(not p.name.endswith((".key", ".pub")) for p in run.rglob("*"))
    assert oct(keys["a"].stat().st_mode & 0o777) == "0o600"


def test_hil_run_refuses_an_unreadable_signing_key_before_starting(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--sign",
                           str(tmp_path / "none.key"), "--reports", str(tmp_path / "reports")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--sign" in proc.stderr
    assert "none.key: no such file" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_the_allure_environment_names_the_evidence_and_the_key(tmp_path: Path) -> None:
    from framework.run import _seal_allure_environment

    env = tmp_path / "allure-results" / "environment.properties"
    env.parent.mkdir()
    env.write_text("rig=sim\nevidence_sha256=old\n")
    _seal_allure_environment(tmp_path, manifest.Seal("ab" * 32, "cd" * 32))
    assert env.read_text() == f"rig=sim\nevidence_sha256={'ab' * 32}\nsigning_key={'cd' * 32}\n"
    assert manifest.is_rendering("allure-results/environment.properties")
