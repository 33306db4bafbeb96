"""The lab services stack: our DHCP server, the provisioning services and the captures.

One start and one stop, used by the runner (`LabSession`), `hil lab serve` and the release
install (through the session). Start-up order is the safety order: the lab network
namespace, the lab interface, the refusal to serve where another DHCP server already
answers, our DHCP server (answering only the rig's MACs), the passive watch for foreign
DHCP servers, then DNS/TFTP/HTTP/HTTPS/FTP, then the capture. Whatever fails is a
:class:`~framework.errors.RigFault` naming the piece and the reason, and everything that
had started is stopped again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import RigFault
from framework.netns import NamespaceError, Netns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackConfig:
    """Where the stack listens and whom it answers."""

    interface: str
    address: ipaddress.IPv4Interface  # our address on the lab network, with its prefix
    pool: tuple[str, str]
    macs: tuple[str, ...]  # colon form: the only clients DHCP answers and files go to
    fixed: Mapping[str, str] = field(default_factory=dict)  # MAC -> fixed address
    names: Mapping[str, str] = field(default_factory=dict)  # the lab DNS zone
    domain: str | None = None
    lease_time: int = 600
    netns: str | None = None
    state_dir: Path = Path(os.environ.get("HIL_STATE_DIR", "/run/hil"))
    requests_jsonl: Path | None = None  # the request log, appended as requests come
    #: Refuse to start where another DHCP server answers; the probe's window (None: the
    #: probe's full default).
    refuse_other_dhcp: bool = True
    probe_window_s: float | None = None
    #: The whole lab interface captured here (None: no capture), minus ``capture_filter``.
    capture_path: Path | None = None
    capture_filter: str | None = None

    @property
    def ip(self) -> str:
        return str(self.address.ip)


class LabStack:
    """DHCP + provisioning services + capture + the foreign-DHCP watch, started once."""

    def __init__(self, config: StackConfig, *,
                 on_dhcp: Callable[[Any], None] | None = None,
                 client_filter: Callable[[str], bool] | None = None) -> None:
        self.config = config
        self._on_dhcp = on_dhcp
        self._client_filter = client_filter
        self._exit = contextlib.ExitStack()
        self.dhcp: Any = None
        self.services: Any = None
        self.capture: Any = None
        self.foreign_dhcp: Any = None
        self._macs = {_bare(m) for m in config.macs}

    # --- start / stop -------------------------------------------------------------

    def start(self) -> LabStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop what started, last first (idempotent)."""
        with contextlib.suppress(Exception):
            self._exit.close()

    def __enter__(self) -> LabStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def on_exit(self, callback: Callable[[], Any]) -> None:
        """Something the caller started on top of the stack, stopped before it."""
        self._exit.callback(callback)

    def _start(self) -> None:
        c = self.config
        if c.netns:
            try:
                self._exit.enter_context(Netns(c.netns).entered())
            except NamespaceError as exc:
                raise RigFault(f"lab network: {exc}") from None
        self._check_interface()
        if c.refuse_other_dhcp:
            self._refuse_other_dhcp()
        self._start_dhcp()
        self._watch_foreign_dhcp()
        self._start_services()
        if c.capture_path is not None:
            self._start_capture()

    def _check_interface(self) -> None:
        """The lab interface must exist here (a missing NIC is a rig fault, said plainly)."""
        from framework.netns import interface_mac

        c = self.config
        if not c.netns and not os.path.exists(f"/sys/class/net/{c.interface}"):
            raise RigFault(f"lab interface {c.interface!r} does not exist on this host")
        if c.netns:
            try:
                interface_mac(c.interface)
            except NamespaceError as exc:
                raise RigFault(f"lab interface {c.interface!r}: {exc}") from None

    def _refuse_other_dhcp(self) -> None:
        """Safety: never serve DHCP where another server already answers (an outage)."""
        from framework.dhcp.probe import PROBE_WINDOW_S, RogueDhcpServerError, refuse_rogue_servers

        window = self.config.probe_window_s or PROBE_WINDOW_S
        try:
            refuse_rogue_servers(self.config.interface, timeout=window)
        except RogueDhcpServerError as exc:
            raise RigFault(f"refusing to start: {exc} (--allow-other-dhcp to override)") \
                from None
        except OSError as exc:
            raise RigFault(f"lab interface {self.config.interface}: {exc.strerror or exc}") \
                from None

    def _start_dhcp(self) -> None:
        from framework.dhcp.server import DhcpServer, DhcpServerError
        from framework.dhcp.settings import ServerSettings

        c = self.config
        try:
            settings = ServerSettings.build(
                c.interface, c.ip, netmask=str(c.address.network.netmask), pool=c.pool,
                fixed=dict(c.fixed), allowlist=list(c.macs), router=None, dns=[c.ip],
                domain=c.domain, lease_time=c.lease_time)
            self.dhcp = DhcpServer(settings)
            self.dhcp.start()
        except (OSError, DhcpServerError) as exc:
            raise RigFault(f"DHCP server cannot start on {c.interface}: {exc}") from None
        self._exit.callback(self.dhcp.stop)
        if self._on_dhcp is not None:
            self._exit.callback(self.dhcp.subscribe(self._on_dhcp))

    def _watch_foreign_dhcp(self) -> None:
        """A DHCP server other than ours answering on the lab interface mid-run (plugged in,
        or slower than the start-up probe): the runner breaks the cases it touched."""
        from framework.dhcp.watch import DhcpWatchError, ForeignDhcpWatch
        from framework.netns import interface_mac

        c = self.config
        try:
            own = [interface_mac(c.interface)]
        except (NamespaceError, OSError):
            own = []
        try:
            self.foreign_dhcp = ForeignDhcpWatch(c.interface, own_macs=own, own_ips=[c.ip],
                                                 netns=c.netns).start()
        except DhcpWatchError as exc:
            raise RigFault(f"cannot watch the lab interface for other DHCP servers: {exc}") \
                from None
        self._exit.callback(self.foreign_dhcp.stop)

    def _start_services(self) -> None:
        from framework.services import ContentStore, ProvisioningServices, RequestLog, Zone

        c = self.config
        self.services = ProvisioningServices(
            c.ip, state_dir=c.state_dir,
            log=RequestLog(jsonl=c.requests_jsonl, mac_resolver=self.dhcp.mac_for_ip),
            content=ContentStore(client_filter=self._client_filter or self.is_rig_client),
            zone=Zone({k: str(v) for k, v in c.names.items()}))
        try:
            self.services.start()
        except (OSError, RuntimeError) as exc:
            raise RigFault(f"provisioning services cannot start on {c.ip}: {exc}") from None
        self._exit.callback(self.services.stop)

    def _start_capture(self) -> None:
        from framework.services import CaptureError, PacketCapture

        c = self.config
        assert c.capture_path is not None
        try:
            self.capture = PacketCapture(c.interface, c.capture_path,
                                         bpf_filter=c.capture_filter).start()
            self._exit.callback(self.capture.stop)
        except CaptureError as exc:  # capture is evidence, not a precondition
            log.warning("packet capture unavailable: %s", exc)
            self.capture = None

    def capture_phone(self, mac_colon: str, path: Path) -> Any:
        """One capture of a phone's traffic (its frames and its DHCP) for the whole run;
        slices are cut out of it by time (:class:`~framework.services.PcapTail`)."""
        from framework.services import CaptureError, PacketCapture, PcapTail

        mac = mac_colon.replace(":", "").lower()
        chaddr = f"udp[36:4] == 0x{mac[:8]} and udp[40:2] == 0x{mac[8:]}"
        bpf = f"ether host {mac_colon.lower()} or (udp port 67 and {chaddr})"
        try:
            capture = PacketCapture(self.config.interface, path, bpf_filter=bpf).start()
        except CaptureError as exc:
            log.warning("no capture for %s: %s", mac_colon, exc)
            return None
        self._exit.callback(capture.stop)
        return PcapTail(path)

    # --- who is ours ---------------------------------------------------------------

    def is_rig_client(self, ip: str) -> bool:
        """Safety: files go only to addresses leased to (or fixed for) the rig's phones."""
        mac = self.dhcp.mac_for_ip(ip) if self.dhcp is not None else None
        return mac is not None and _bare(mac) in self._macs


def bench_filter(hosts: Iterable[str]) -> str | None:
    """A capture filter leaving out bench equipment (PDU, terminal servers): their traffic
    carries credentials in clear (SNMP community, serial logins) and is not evidence of
    what a phone did."""
    wanted = sorted({h for h in hosts if h})
    return " and ".join(f"not host {h}" for h in wanted) or None


def _bare(mac: str) -> str:
    return mac.replace(":", "").replace("-", "").upper()
