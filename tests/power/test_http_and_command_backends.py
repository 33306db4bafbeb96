"""pdudaemon (HTTP listener) and command backends; the per-PDU lock; the registry."""

from __future__ import annotations

import importlib
import json
import stat
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from framework.netns import TestNetwork
from framework.power import BACKENDS, PowerError, PowerStateUnreadable, power_switch
from framework.rig.model import PDU_DRIVERS, CommandPdu, PdudaemonPdu


class PdudaemonListener(ThreadingHTTPServer):
    """The HTTP side of pdudaemon: records requests; answers 200, or 503 for unknown PDUs."""

    known_pdus = frozenset({"pdu-lab-3"})

    def __init__(self, address: tuple[str, int]) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: PdudaemonListener

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append((url.path, query))
        ok = url.path.startswith("/power/control/") and \
            query.get("hostname") in self.server.known_pdus
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b"OK" if ok else b"Invalid request")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pdudaemon(pdu_net: TestNetwork) -> Iterator[PdudaemonListener]:
    """A listener in the PDU namespace at 192.0.2.250:16421; the test runs in the lab."""
    box: list[PdudaemonListener] = []
    ready = threading.Event()

    def serve() -> None:
        box.append(PdudaemonListener(("192.0.2.250", 16421)))
        ready.set()
        box[0].serve_forever(poll_interval=0.05)

    pdu_net.client(0).thread(serve, name="pdudaemon").start()
    assert ready.wait(5), "pdudaemon listener did not start"
    with pdu_net.lab.entered():
        yield box[0]
    box[0].shutdown()
    box[0].server_close()


def pdud(**extra: object) -> PdudaemonPdu:
    return PdudaemonPdu.model_validate({"name": "pdu3", "driver": "pdudaemon",
                                        "host": "192.0.2.250", "pdu": "pdu-lab-3",
                                        "outlets": 8, "timeout_s": 0.5, "retries": 1, **extra})


@pytest.mark.netns
def test_pdudaemon_on_off_requests(pdudaemon: PdudaemonListener) -> None:
    switch = power_switch(pdud(), 6)
    switch.off()
    switch.on()
    assert pdudaemon.requests == [
        ("/power/control/off", {"hostname": "pdu-lab-3", "port": "6", "delay": "0"}),
        ("/power/control/on", {"hostname": "pdu-lab-3", "port": "6", "delay": "0"}),
    ]


@pytest.mark.netns
def test_pdudaemon_refusal_is_not_retried(pdudaemon: PdudaemonListener) -> None:
    with pytest.raises(PowerError) as err:
        power_switch(pdud(pdu="no-such-pdu"), 1).on()
    assert err.value.attempts == 1
    assert "pdudaemon refused http://192.0.2.250:16421/power/control/on?hostname=no-such-pdu" \
        "&port=1&delay=0 (HTTP 503)" in str(err.value)


@pytest.mark.netns
def test_pdudaemon_state_is_unreadable_and_cycle_still_works(
        pdudaemon: PdudaemonListener) -> None:
    switch = power_switch(pdud(), 2)
    with pytest.raises(PowerStateUnreadable, match="the pdudaemon driver cannot read"):
        switch.state()
    switch.cycle(off_time=0.01)
    assert [path for path, _ in pdudaemon.requests] == ["/power/control/off",
                                                        "/power/control/on"]


@pytest.mark.netns
def test_pdudaemon_down_is_retried(pdu_net: TestNetwork) -> None:
    with pdu_net.lab.entered(), pytest.raises(
            PowerError, match=r"on failed after 2 attempts: pdudaemon at 192.0.2.250:16421 "
                              r"unreachable: \[Errno 111\] Connection refused"):
        power_switch(pdud(), 1).on()


# --- command ------------------------------------------------------------------------------

PDU_SCRIPT = """\
import json, os, sys, time
state_file, action, outlet = sys.argv[1], sys.argv[2], sys.argv[3]
journal = state_file + ".journal"
with open(journal, "a") as j:
    j.write(f"start {outlet} {time.monotonic()}\\n")
if os.environ.get("PDU_TOKEN") != "tok-4411":
    print("denied: token", os.environ.get("PDU_TOKEN"), file=sys.stderr)
    sys.exit(3)
state = json.load(open(state_file)) if os.path.exists(state_file) else {}
if action == "state":
    print("on" if state.get(outlet, True) else "off")
else:
    time.sleep(float(os.environ.get("PDU_DELAY", "0")))
    state[outlet] = action == "on"
    json.dump(state, open(state_file, "w"))
with open(journal, "a") as j:
    j.write(f"end {outlet} {time.monotonic()}\\n")
"""


@pytest.fixture
def pdu_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_pdu.py"
    script.write_text(PDU_SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("HILT_R_PDU_TOKEN", "tok-4411")
    return tmp_path / "state.json"


def cmd_pdu(state: Path, **extra: object) -> CommandPdu:
    script = str(state.with_name("fake_pdu.py"))
    return CommandPdu.model_validate({
        "name": "relay", "driver": "command", "outlets": 4, "timeout_s": 2, "retries": 1,
        "on": [sys.executable, script, str(state), "on", "{outlet}"],
        "off": [sys.executable, script, str(state), "off", "{outlet}"],
        "state": [sys.executable, script, str(state), "state", "{outlet}"],
        "env": {"PDU_TOKEN": {"env": "HILT_R_PDU_TOKEN"}}, **extra})


def test_command_backend_switches_and_reads(pdu_script: Path) -> None:
    switch = power_switch(cmd_pdu(pdu_script), 2)
    switch.off()
    assert json.loads(pdu_script.read_text()) == {"2": False}
    assert switch.state() is False
    switch.cycle(off_time=0.01)
    assert switch.state() is True


def test_command_failure_is_retried_and_masks_the_secret(
        pdu_script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HILT_R_PDU_TOKEN", "wrong-token-99")
    with pytest.raises(PowerError) as err:
        power_switch(cmd_pdu(pdu_script), 1).on()
    assert err.value.attempts == 2
    assert str(err.value).endswith("exited 3: denied: token *** (timeout 2 s per attempt)")
    assert "wrong-token-99" not in str(err.value)


def test_command_not_found_fails_at_once(pdu_script: Path) -> None:
    spec = cmd_pdu(pdu_script, on=["/nonexistent/pductl", "{outlet}"])
    with pytest.raises(PowerError, match="after 1 attempt: command not found: "
                                         "/nonexistent/pductl"):
        power_switch(spec, 1).on()


def test_command_hanging_is_timed_out(pdu_script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDU_DELAY", "5")
    started = time.monotonic()
    with pytest.raises(PowerError, match=r"off failed after 2 attempts: .* did not finish "
                                         r"within 0\.3 s"):
        power_switch(cmd_pdu(pdu_script, timeout_s=0.3), 1).off()
    assert time.monotonic() - started < 2.5


def test_commands_to_one_pdu_are_serialised(pdu_script: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Four phones switching at once on one PDU: the PDU never sees two commands overlap."""
    monkeypatch.setenv("PDU_DELAY", "0.05")
    spec = cmd_pdu(pdu_script)
    threads = [threading.Thread(target=power_switch(spec, outlet).off) for outlet in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    events = [line.split() for line in
              Path(f"{pdu_script}.journal").read_text().splitlines()]
    assert len(events) == 8
    for (kind_a, outlet_a, _), (kind_b, outlet_b, _) in zip(events[::2], events[1::2],
                                                            strict=True):
        assert (kind_a, kind_b) == ("start", "end") and outlet_a == outlet_b, events
    assert json.loads(pdu_script.read_text()) == {str(o): False for o in (1, 2, 3, 4)}


def test_every_rig_driver_has_a_backend() -> None:
    assert set(BACKENDS) == set(PDU_DRIVERS)
    for module in BACKENDS.values():
        backend = importlib.import_module(module)
        assert callable(backend.power_set) and callable(backend.power_get), module
