"""Fixtures for the DHCP tests: a namespace network and a running backend per test.

Namespaces use the prefix ``hilt-d`` (``hilt-d<letter>`` per test module); every fixture
tears down what it built, also when the test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framework.dhcp import DhcpBackend, create_backend
from framework.dhcp.settings import ServerSettings
from framework.netns import TestNetwork, have_privileges
from tests.dhcp.wire_clients import Dhclient, RawClient, Udhcpc

LAB_IP = "192.0.2.1"
POOL = ("192.0.2.100", "192.0.2.199")
#: Client i of the test network has PHONE_MACS[i]; 0 and 1 are allowlisted, 2 is not.
PHONE_MACS = ("00:90:8f:0d:00:01", "00:90:8f:0d:00:02", "00:90:8f:0d:00:03")
FIXED = {PHONE_MACS[0]: "192.0.2.11"}
ALLOWED = PHONE_MACS[:2]
STRANGER = PHONE_MACS[2]


def _require_netns() -> None:
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)


@pytest.fixture
def net(request: pytest.FixtureRequest) -> Iterator[TestNetwork]:
    """``hilt-d<x>-lab`` with bridge br0 at 192.0.2.1/24 and three client namespaces."""
    _require_netns()
    prefix = getattr(request.module, "NETNS_PREFIX", "hilt-d")
    with TestNetwork(prefix, clients=len(PHONE_MACS), macs=PHONE_MACS) as network:
        yield network


def backend_settings(net: TestNetwork, **overrides: object) -> ServerSettings:
    """The standard settings on br0 in the lab namespace, with ``overrides`` applied."""
    settings: dict[str, object] = dict(
        pool=POOL, fixed=FIXED, allowlist=ALLOWED, router=LAB_IP, dns=[LAB_IP],
        domain="lab.test", lease_time=600, netns=net.lab.name,
    )
    settings.update(overrides)
    return ServerSettings.build("br0", LAB_IP, **settings)  # type: ignore[arg-type]


@pytest.fixture(params=["scapy", "kea"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def dhcp(net: TestNetwork, backend_name: str) -> Iterator[DhcpBackend]:
    """The backend under test on br0 in the lab namespace, with the standard settings."""
    with create_backend(backend_name, backend_settings(net)) as server:
        yield server


@pytest.fixture
def udhcpc(net: TestNetwork, tmp_path: Path) -> Iterator[Callable[..., Udhcpc]]:
    """Factory: ``udhcpc(i, extra=[...])`` -> a BusyBox client on client namespace i."""
    made: list[Udhcpc] = []

    def make(i: int, **kwargs: object) -> Udhcpc:
        client = Udhcpc(net.client(i), tmp_path / f"udhcpc{i}-{len(made)}", **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


@pytest.fixture
def dhclient(net: TestNetwork, tmp_path: Path) -> Iterator[Callable[[int], Dhclient]]:
    """Factory: ``dhclient(i)`` -> an ISC dhclient on client namespace i (stopped after)."""
    made: list[Dhclient] = []

    def make(i: int) -> Dhclient:
        client = Dhclient(net.client(i), tmp_path / f"dhclient{i}-{len(made)}")
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


@pytest.fixture
def raw_client(net: TestNetwork) -> Iterator[Callable[[int], RawClient]]:
    """Factory: ``raw_client(i)`` -> a scapy client on client namespace i."""
    made: list[RawClient] = []

    def make(i: int) -> RawClient:
        client = RawClient(net.client(i))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
