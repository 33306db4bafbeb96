"""ServiceProbe on loopback: load is not death, death is found fast, liveness saves probes.

The lab services run on 127.0.0.1 with kernel-chosen ports; the slow and the silent
servers are UDP sockets this test controls, so every probe datagram is counted where it
arrives (on the wire), not by the probe's own bookkeeping.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framework.runner.catalogue import LAB_DNS_NAME
from framework.runner.probe import ServiceProbe
from framework.services import (
    ContentStore,
    ProvisioningServices,
    RequestLog,
    RequestRecord,
    ServicePorts,
    Zone,
)

HOST = "127.0.0.1"
CALLERS = 128
TFTP_ERROR = struct.pack("!HH", 5, 1) + b"File not found\x00"


def concurrently(n: int, call: Callable[[], str | None]) -> tuple[list[str | None], float]:
    """``call`` from ``n`` threads released at once; their results and the wall time."""
    results: list[str | None] = [None] * n
    errors: list[BaseException] = []
    gate = threading.Barrier(n + 1)

    def run(i: int) -> None:
        gate.wait(timeout=30)
        try:
            results[i] = call()
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    gate.wait(timeout=30)
    t0 = time.monotonic()
    for t in threads:
        t.join(timeout=60)
    wall = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "callers still probing after 60 s"
    assert not errors, errors
    return results, wall


class Responder:
    """A UDP server on loopback that counts what reaches it and answers each datagram
    with ``reply`` after ``delay_s`` from a port of its own (as a TFTP server's transfer
    does), or never (``reply=None``: a hung server that still holds its port)."""

    def __init__(self, reply: bytes | None, delay_s: float = 0.0) -> None:
        self.reply, self.delay_s = reply, delay_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port: int = self.sock.getsockname()[1]
        self.received = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                _, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.received += 1
            if self.reply is not None:
                threading.Thread(target=self._answer, args=(peer,), daemon=True).start()

    def _answer(self, peer: tuple[str, int]) -> None:
        if self._stop.wait(self.delay_s):  # the artificial slowness; ends early on close
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.bind((HOST, 0))
            assert self.reply is not None
            out.sendto(self.reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def responder() -> Iterator[Callable[..., Responder]]:
    made: list[Responder] = []

    def make(reply: bytes | None, delay_s: float = 0.0) -> Responder:
        made.append(Responder(reply, delay_s))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[ProvisioningServices]:
    """DNS, TFTP, HTTP, HTTPS and FTP on loopback, each on a free port."""
    log = RequestLog()
    services = ProvisioningServices(HOST, state_dir=tmp_path, log=log, content=ContentStore(),
                                    zone=Zone({LAB_DNS_NAME: HOST}),
                                    ports=ServicePorts.ephemeral())
    with services:
        yield services


def lab_probe(services: ProvisioningServices, **timing: float) -> ServiceProbe:
    return ServiceProbe(HOST, ports={p: port for p, (_, port) in services.endpoints.items()},
                        **timing)  # type: ignore[arg-type]


def health_checks(log: RequestLog, protocol: str) -> int:
    """The probes the ``protocol`` server itself recorded (from the lab's own address)."""
    return sum(1 for r in log.records(protocol=protocol) if r.client_ip == HOST)


def test_a_live_lab_is_healthy_for_128_concurrent_callers_with_one_probe_each(
        lab: ProvisioningServices) -> None:
    probe = lab_probe(lab)

    results, _ = concurrently(CALLERS, probe.fault)

    assert results == [None] * CALLERS
    sent = probe.sent()
    assert all(1 <= sent[p] <= 2 for p in ("dns", "tftp", "http", "https", "ftp")), sent
    # on the wire: what the servers saw from the lab's address is what was sent
    assert health_checks(lab.log, "tftp") == sent["tftp"]
    assert health_checks(lab.log, "dns") == sent["dns"]
    assert probe.estimate("tftp") is not None


def test_a_tftp_server_answering_after_1_5_s_is_slow_not_dead(
        responder: Callable[..., Responder]) -> None:
    slow = responder(TFTP_ERROR, delay_s=1.5)
    probe = ServiceProbe(HOST, ports={"tftp": slow.port})  # default timing: 1 s floor

    results, wall = concurrently(CALLERS, lambda: probe.fault({"tftp"}))

    assert results == [None] * CALLERS
    assert wall >= 1.4  # it really was that slow
    assert slow.received <= 2  # attempt 1, and its retry: not one probe per caller
    # the deadline is learnt: the next probe waits long enough with a single datagram
    assert probe.deadlines("tftp")[0] >= 3 * 1.4
    again = ServiceProbe(HOST, ports={"tftp": slow.port}, fresh_s=0.0)
    again._services["tftp"].srtt = probe.estimate("tftp")  # the learnt figure, carried
    before = slow.received
    assert again.fault({"tftp"}) is None
    assert slow.received == before + 1


@pytest.mark.parametrize(("protocol", "message"), [
    ("dns", "lab DNS on 127.0.0.1:{port} does not answer (ConnectionRefusedError)"),
    ("tftp", "lab TFTP on 127.0.0.1:{port} does not answer"),
    ("http", "lab HTTP on 127.0.0.1:{port} refuses connections (Connection refused)"),
    ("ftp", "lab FTP on 127.0.0.1:{port} refuses connections (Connection refused)"),
])
def test_a_stopped_service_is_a_fault_naming_it_within_a_second(
        lab: ProvisioningServices, protocol: str, message: str) -> None:
    ports = {p: bound for p, (_, bound) in lab.endpoints.items()}
    port = ports[protocol]
    assert lab_probe(lab).fault() is None
    getattr(lab, protocol).stop()
    stale = ServiceProbe(HOST, ports=ports)

    results, wall = concurrently(CALLERS, stale.fault)

    assert results == [message.format(port=port)] * CALLERS
    assert wall < 1.0
    assert stale.sent()[protocol] <= 2


def test_a_hung_server_is_a_fault_within_the_budget(
        responder: Callable[..., Responder]) -> None:
    hung = responder(None)  # holds the port, never answers
    probe = ServiceProbe(HOST, ports={"tftp": hung.port}, floor_s=0.2, budget_s=1.4)

    results, wall = concurrently(64, lambda: probe.fault({"tftp"}))

    assert results == [f"lab TFTP on 127.0.0.1:{hung.port} does not answer"] * 64
    assert 1.3 <= wall < 1.4 + 2.0  # retried with growing deadlines, and bounded
    assert hung.received == 3  # 0.2 + 0.4 + 0.8 s, one probe for all callers
    assert sum(ServiceProbe(HOST).deadlines("tftp")) <= 8.0  # the default bound


def test_an_observed_liveness_answers_without_a_probe(
        responder: Callable[..., Responder]) -> None:
    hung = responder(None)  # would make any probe a fault; counts every datagram
    probe = ServiceProbe(HOST, ports={"tftp": hung.port}, floor_s=0.2, budget_s=0.6)

    probe.observed("tftp")
    assert probe.fault({"tftp"}) is None
    assert probe.fault({"tftp"}, alive={"tftp"}) is None
    assert hung.received == 0 and probe.sent()["tftp"] == 0

    followed = ServiceProbe(HOST, ports={"tftp": hung.port}, floor_s=0.2, budget_s=0.6)
    log = RequestLog()
    stop = followed.follow(log)
    log.append(RequestRecord(time=time.time(), protocol="tftp", client_ip="192.0.2.11",
                             host=HOST, path="/440HD.img", url=None, method="RRQ",
                             outcome="served"))
    stop()
    assert followed.fault({"tftp"}) is None
    assert hung.received == 0

    # a request that ended in an error (e.g. cut by a stopping server) proves nothing
    errored = ServiceProbe(HOST, ports={"tftp": hung.port}, floor_s=0.2, budget_s=0.6)
    stop = errored.follow(log)
    log.append(RequestRecord(time=time.time(), protocol="tftp", client_ip="192.0.2.11",
                             host=HOST, path="/440HD.img", url=None, method="RRQ",
                             outcome="error"))
    stop()
    assert errored.fault({"tftp"}) == f"lab TFTP on 127.0.0.1:{hung.port} does not answer"
    assert hung.received >= 1


def test_a_stale_observation_does_not_spare_the_probe(
        responder: Callable[..., Responder]) -> None:
    hung = responder(None)
    probe = ServiceProbe(HOST, ports={"tftp": hung.port}, floor_s=0.2, budget_s=0.6)

    probe.observed("tftp", at=time.time() - 60)

    assert probe.fault({"tftp"}) == f"lab TFTP on 127.0.0.1:{hung.port} does not answer"
    assert hung.received >= 1


def test_a_liveness_from_before_the_case_does_not_count_for_it(
        lab: ProvisioningServices) -> None:
    """A service that answered a second ago and died since: the case that began after
    the liveness still probes it, and finds it dead."""
    ports = {p: bound for p, (_, bound) in lab.endpoints.items()}
    probe = ServiceProbe(HOST, ports=ports)
    assert probe.fault({"dns"}) is None  # alive, and fresh for 2 s
    lab.dns.stop()
    case_start = time.time()
    assert probe.fault({"dns"}) is None  # fresh: no probe for callers without a case
    assert probe.fault({"dns"}, since=case_start) == (
        f"lab DNS on {HOST}:{ports['dns']} does not answer (ConnectionRefusedError)")


def test_bad_timing_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="floor_s <= budget_s"):
        ServiceProbe(HOST, floor_s=5.0, budget_s=1.0)
    with pytest.raises(ValueError, match=r"unknown protocol\(s\) \['gopher'\]"):
        ServiceProbe(HOST, ports={"gopher": 70})
