"""`hil rig check` on a bench whose PDUs and consoles do not answer: bounded, one line each.

The hosts are on 127.0.0.1, so no privileges or namespaces are needed: a UDP socket that
swallows SNMP requests (a PDU that never answers), a TCP listener that accepts and never
speaks (a terminal server port or SSH daemon that hangs), a closed port (refused) and a
serial device that does not exist.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from framework.cli import main

EXAMPLE = Path(__file__).parents[2] / "rigs" / "example-bench.yaml"


@pytest.fixture
def silent_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("HIL_LAB_APC_COMMUNITY", "HIL_LAB_POE_COMMUNITY", "HIL_LAB_PHONE_PASSWORD"):
        monkeypatch.setenv(name, "hilt-unused")
    monkeypatch.setenv("HIL_SECRETS_FILE", str(tmp_path / "none.env"))
    udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    hang = socket.socket()
    refused = socket.socket()
    for sock in (*udp, hang, refused):
        sock.bind(("127.0.0.1", 0))
    hang.listen(16)
    closed_port = refused.getsockname()[1]
    refused.close()  # nothing listens there any more: connections are refused
    silent = hang.getsockname()[1]
    data = yaml.safe_load(EXAMPLE.read_text())
    apc, poe = data["pdus"]
    apc.update(host="127.0.0.1", port=udp[0].getsockname()[1], timeout_s=2, retries=2)
    poe.update(host="127.0.0.1", port=udp[1].getsockname()[1], timeout_s=5, retries=2)
    desk1, desk2, conf1, exec1 = data["phones"]
    desk1["console"] = {"serial": {"url": f"socket://127.0.0.1:{silent}"},
                        "ssh": {"host": "127.0.0.1", "port": silent}}
    desk2["console"] = {"serial": {"url": f"socket://127.0.0.1:{closed_port}"},
                        "ssh": {"host": "127.0.0.1", "port": closed_port}}
    conf1["console"] = {"serial": {"url": "/dev/ttyHILT-absent"}}
    exec1["console"] = {"ssh": {"host": "127.0.0.1", "port": silent}}
    rig = tmp_path / "silent.yaml"
    rig.write_text(yaml.safe_dump(data))
    try:
        yield rig
    finally:
        for sock in (*udp, hang):
            sock.close()


def test_nothing_answers_bounded_one_line_per_problem(
        silent_rig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["rig", "check", "--rig", str(silent_rig), "--no-dhcp",
                 "--log-dir", str(tmp_path / "logs")])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 1
    assert elapsed < 10.0, f"the check took {elapsed:.1f} s"
    problems = [line for line in out.splitlines() if line.startswith("fail")]
    # two PDUs (one line each, not one per outlet) and the consoles: one phone's consoles
    # are checked one after the other, so desk1, whose serial line never speaks, is one
    # problem (its SSH console is not reached before the deadline)
    assert len(problems) == 7, out
    assert sum("PDU apc1: outlets 1 (desk1), 2 (desk2): " in p for p in problems) == 1
    assert sum("PDU poe1: outlets 7 (conf1), 8 (exec1): no answer within" in p
               for p in problems) == 1
    assert any(p.startswith("fail phone desk2: ssh console") and "Unable to connect" in p
               for p in problems)
    assert any(p.startswith("fail phone desk1: serial console: no answer within the check's "
                            "deadline of 8 s") for p in problems)
    assert any("phone conf1: serial console" in p and "ttyHILT-absent" in p for p in problems)
    assert "UNHEALTHY: 7 failed" in out
    assert "Traceback" not in out + err
    assert err.splitlines() == ["hil: error: 7 of 7 checks failed (console logs in "
                                f"{tmp_path / 'logs'})"]


def test_json_is_one_object_with_every_check(
        silent_rig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rig", "check", "--rig", str(silent_rig), "--no-dhcp", "--json",
                 "--deadline", "3", "--log-dir", str(tmp_path / "logs")])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    report = json.loads(out)
    assert (report["rig"], report["healthy"], report["failed"]) == ("bench-a", False, 7)
    assert report["seconds"] < 5
    checks = {(c["target"], c["name"]): c for c in report["checks"]}
    assert len(checks) == 7
    for check in checks.values():
        assert set(check) == {"name", "target", "ok", "level", "detail", "seconds"}
        assert check["ok"] is False and check["detail"]
        assert 0 <= check["seconds"] <= 3.5
    assert checks[("phone exec1", "ssh console")]["detail"].startswith("no answer within")
