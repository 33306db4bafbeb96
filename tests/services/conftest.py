"""One lab wire for the service tests: the five servers in ``hilt-s-lab`` (192.0.2.1) and
two client namespaces (192.0.2.50, .51) running clients we did not write.

The servers run for the whole session (starting them per test would cost ~0.4 s each);
each test clears the content and zone and reads only records newer than its own start.
Clients resolve names through our DNS: ``/etc/netns/<client>/resolv.conf`` points at it
(``ip netns exec`` bind-mounts that file), removed at teardown.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from framework.netns import Netns, TestNetwork, have_privileges
from framework.services import (
    ContentStore,
    ProvisioningServices,
    RequestLog,
    RequestRecord,
    Zone,
)

PREFIX = "hilt-s"
SERVER = "192.0.2.1"
CLIENT_IPS = ("192.0.2.50", "192.0.2.51")
CLIENT_MACS = ("00:00:5e:00:53:50", "00:00:5e:00:53:51")  # RFC 7042 documentation MACs
LAB_DNS_NAME = "Audiocodes.com"
FTP_USER, FTP_PASSWORD = "phone", "Pw-4b9c-never-logged"
CURL_TIMEOUT = 10


@dataclass
class Wire:
    """The running lab as a test sees it."""

    net: TestNetwork
    services: ProvisioningServices
    log: RequestLog
    content: ContentStore
    zone: Zone
    jsonl: Path
    since: float = 0.0

    def client(self, i: int = 0) -> Netns:
        return self.net.client(i)

    def run(self, i: int, argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """Run a command in client ``i``'s namespace."""
        return self.client(i).run(argv, timeout=timeout)

    def curl(self, i: int, *args: str) -> subprocess.CompletedProcess[str]:
        """curl in client ``i`` (silent, errors shown, bounded time)."""
        return self.run(i, ["curl", "-sS", "--max-time", str(CURL_TIMEOUT), *args])

    def wait(self, predicate: Callable[[RequestRecord], bool], what: str,
             timeout: float = 10) -> RequestRecord:
        """The first record of this test matching ``predicate`` (an event wait)."""
        return self.log.wait_for(predicate, timeout=timeout, what=what, since=self.since)

    def wait_count(self, predicate: Callable[[RequestRecord], bool], count: int, what: str,
                   timeout: float = 10) -> list[RequestRecord]:
        return self.log.wait_for_count(predicate, count, timeout=timeout, what=what,
                                       since=self.since)

    def records(self, **filters: object) -> list[RequestRecord]:
        return self.log.records(since=self.since, **filters)  # type: ignore[arg-type]


@contextlib.contextmanager
def wire_lab(prefix: str, state: Path, clients: int = len(CLIENT_IPS),
             tools: tuple[str, ...] = ("curl", "dig", "busybox", "tcpdump"),
             ftp_users: dict[str, str] | None = None) -> Iterator[Wire]:
    """The lab's servers in ``<prefix>-lab`` and ``clients`` client namespaces resolving
    names through its DNS (skips without root or one of ``tools``); torn down after."""
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    net = TestNetwork(prefix, clients=clients, macs=CLIENT_MACS[:clients])
    resolv_dirs = [Path("/etc/netns") / f"{prefix}-c{i}" for i in range(clients)]
    mac_by_ip = dict(zip(CLIENT_IPS[:clients], CLIENT_MACS[:clients], strict=True))
    log = RequestLog(jsonl=state / "requests.jsonl", mac_resolver=mac_by_ip.get)
    content, zone = ContentStore(), Zone({LAB_DNS_NAME: SERVER})
    services = ProvisioningServices(SERVER, netns=f"{prefix}-lab", state_dir=state, log=log,
                                    content=content, zone=zone, ftp_users=ftp_users)
    try:
        net.up()
        for i, address in enumerate(CLIENT_IPS[:clients]):
            net.client(i).ip("addr", "add", f"{address}/24", "dev", "eth0")
            resolv_dirs[i].mkdir(parents=True, exist_ok=True)
            (resolv_dirs[i] / "resolv.conf").write_text(f"nameserver {SERVER}\noptions timeout:2\n")
        services.start()
        yield Wire(net=net, services=services, log=log, content=content, zone=zone,
                   jsonl=state / "requests.jsonl")
    finally:
        services.stop()
        log.close()
        net.down()
        for directory in resolv_dirs:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def lab_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    with wire_lab(PREFIX, tmp_path_factory.mktemp("services-state"),
                  ftp_users={FTP_USER: FTP_PASSWORD}) as lab:
        yield lab


@pytest.fixture
def wire(lab_wire: Wire) -> Wire:
    """The lab with empty content, the default zone, and records counted from now."""
    lab_wire.content.clear()
    for name in lab_wire.zone.names():
        lab_wire.zone.remove(name)
    lab_wire.zone.set(LAB_DNS_NAME, SERVER)
    lab_wire.log.forget_names()  # as after a phone reboot: no name carried over
    lab_wire.since = time.time()
    return lab_wire
