"""The DHCP backend contract: what the lab runner needs from any DHCP server it drives.

Two backends satisfy it: :class:`framework.dhcp.server.DhcpServer` (scapy, ours, with
fault knobs) and :class:`framework.dhcp.kea.KeaDhcpServer` (ISC Kea, a server we did not
write, to cross-check that a phone's behaviour does not depend on our server). Pick one
by name with :func:`create_backend`.

Usage::

    settings = ServerSettings.build("br-lab", "192.0.2.1", pool=("192.0.2.100", "192.0.2.199"),
                                    allowlist=rig_macs, netns="hil-lab")
    with create_backend("scapy", settings) as dhcp:
        dhcp.set_options(mac, {66: b"http://192.0.2.1", 67: b"abc.img;efg.cfg"})
        t0 = time.time()
        phone.power_cycle()
        dhcp.wait_for(mac, "ACK", since=t0, timeout=60)
        evidence = dhcp.export_json(None, mac)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from framework.dhcp.settings import ServerSettings
    from framework.dhcp.transcript import DhcpMessageRecord


@runtime_checkable
class DhcpBackend(Protocol):
    """A DHCPv4 server on one lab interface, answering only allowlisted MACs.

    MACs are accepted in any usual spelling and reported as ``aa:bb:cc:dd:ee:ff``.
    """

    def start(self) -> DhcpBackend: ...

    def stop(self) -> None: ...

    def __enter__(self) -> DhcpBackend: ...

    def __exit__(self, *exc: object) -> None: ...

    def set_options(self, mac: str, options: Mapping[int, bytes]) -> None:
        """Replace the options ``mac`` gets (sent whether or not it asks); next reply on."""

    def clear(self, mac: str) -> None:
        """Forget the option set of ``mac``."""

    def allow(self, mac: str) -> None: ...

    def disallow(self, mac: str) -> None: ...

    def ignore(self, mac: str, enabled: bool = True) -> None:
        """Receive but never answer ``mac`` (a phone seeing no DHCP server)."""

    def leases(self) -> dict[str, str]:
        """Current leases: MAC -> address."""

    def mac_for_ip(self, ip: str) -> str | None: ...

    def transcript(self, mac: str | None = None) -> list[DhcpMessageRecord]: ...

    def export_json(self, path: str | os.PathLike[str] | None = None, mac: str | None = None) -> str: ...

    def wait_for(self, mac: str | None, msg_type: str = "DISCOVER", *, since: float,
                 timeout: float) -> DhcpMessageRecord: ...

    def subscribe(self, callback: Callable[[DhcpMessageRecord], None]) -> Callable[[], None]: ...


#: Backend name -> "module:class"; imported on demand so naming one costs nothing.
BACKENDS: dict[str, str] = {
    "scapy": "framework.dhcp.server:DhcpServer",
    "kea": "framework.dhcp.kea:KeaDhcpServer",
}


def create_backend(name: str, settings: ServerSettings, **backend_options: Any) -> DhcpBackend:
    """Construct the backend called ``name`` (see :data:`BACKENDS`) on ``settings``.

    ``backend_options`` are that backend's own keyword arguments (Kea's ``kea_binary``).
    """
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(f"DHCP backend {name!r}: expected one of {', '.join(sorted(BACKENDS))}") from None
    module, _, cls = target.partition(":")
    backend: DhcpBackend = getattr(importlib.import_module(module), cls)(settings, **backend_options)
    return backend
