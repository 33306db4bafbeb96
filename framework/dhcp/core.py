"""What both DHCP backends keep and answer the same way: settings, per-MAC state, transcript.

The scapy server and Kea differ in how they answer (our own RFC 2131 code, or a Kea
process reconfigured over its control socket) but not in what a test or the runner asks
of them: the allowlist, the ignore knob and the per-MAC option sets, the transcript and
the evidence export. :class:`ServerCore` holds that once; a backend overrides
:meth:`ServerCore._change` when a state change must reach something outside the process.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from framework.dhcp.options import OptionSet
from framework.dhcp.packet import DhcpConfigError, normalise_mac
from framework.dhcp.settings import ServerSettings, check_option_set
from framework.dhcp.transcript import DhcpMessageRecord, Subscriber, Transcript, export_transcript


class ServerCore:
    """Settings, allowlist, ignore knob, option sets and transcript of one DHCP backend."""

    #: The ``backend`` value in :meth:`describe` (the name in ``framework.dhcp.BACKENDS``).
    BACKEND: ClassVar[str]

    def __init__(self, settings: ServerSettings) -> None:
        if not isinstance(settings, ServerSettings):
            raise TypeError(f"{type(self).__name__} takes a ServerSettings "
                            f"(ServerSettings.build(...)), not {type(settings).__name__}")
        self.settings = settings
        self._lock = threading.RLock()
        self._allow = set(settings.allowlist)
        self._ignore: set[str] = set()
        self._options: dict[str, OptionSet] = {}
        self._transcript = Transcript()

    # --- per-MAC control ----------------------------------------------------------------

    def _change(self, mutate: Callable[[], object]) -> None:
        """Apply a change to the per-MAC state; a backend that must push it elsewhere overrides this."""
        with self._lock:
            mutate()

    def set_options(self, mac: str, options: Mapping[int, bytes]) -> None:
        """Replace the option set ``mac`` gets; takes effect on the next reply.

        ``b""`` is sent as a present-but-empty option; leave a code out to not send it.
        :class:`DhcpConfigError` names the MAC when the set (or the backend) refuses it.
        """
        key, checked = check_option_set(mac, options)
        try:
            self._change(lambda: self._options.__setitem__(key, checked))
        except DhcpConfigError as exc:
            raise DhcpConfigError(f"option set for {key}: {exc}") from None

    def clear(self, mac: str) -> None:
        """Forget the option set of ``mac`` (it then gets only the base options)."""
        key = normalise_mac(mac)
        self._change(lambda: self._options.pop(key, None))

    def allow(self, mac: str) -> None:
        key = normalise_mac(mac)
        self._change(lambda: self._allow.add(key))

    def disallow(self, mac: str) -> None:
        key = normalise_mac(mac)
        self._change(lambda: self._allow.discard(key))

    def ignore(self, mac: str, enabled: bool = True) -> None:
        """Fault knob: receive and record, but never answer ``mac``."""
        key = normalise_mac(mac)
        self._change(lambda: (self._ignore.add if enabled else self._ignore.discard)(key))

    def _ignored_because(self, mac: str) -> str:
        """Why a client message from ``mac`` goes unanswered by design, or "" when it is answered."""
        with self._lock:
            if mac not in self._allow:
                return "MAC not on the allowlist"
            if mac in self._ignore:
                return "fault knob: ignore"
        return ""

    # --- what happened ------------------------------------------------------------------

    def leases(self) -> dict[str, str]:
        """Current (unexpired) leases: MAC -> address."""
        raise NotImplementedError

    def mac_for_ip(self, ip: str) -> str | None:
        """The MAC holding a lease on ``ip`` (or with it as fixed address), else None."""
        try:
            wanted = str(ipaddress.IPv4Address(ip))
        except ValueError:
            return None
        for mac, address in self.leases().items():
            if address == wanted:
                return mac
        for mac, fixed in self.settings.fixed.items():
            if str(fixed) == wanted:
                return mac
        return None

    def transcript(self, mac: str | None = None) -> list[DhcpMessageRecord]:
        """Every message received from and sent to ``mac`` (or everyone), in order."""
        return self._transcript.records(mac)

    def wait_for(self, mac: str | None, msg_type: str = "DISCOVER", *, since: float,
                 timeout: float) -> DhcpMessageRecord:
        """Block until ``mac`` sends (or is sent) ``msg_type`` at/after ``since`` (time.time()).

        An event wait on the transcript; raises :class:`DhcpWaitTimeout` (a TimeoutError)
        naming the MAC and message type awaited.
        """
        return self._transcript.wait_for(mac, msg_type, since=since, timeout=timeout)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(record)`` for every transcript record; returns an unsubscribe function."""
        return self._transcript.subscribe(callback)

    def describe(self) -> dict[str, Any]:
        """The server's configuration and state as JSON-ready data (for evidence)."""
        with self._lock:
            return {
                "backend": self.BACKEND,
                **self.settings.to_dict(),
                "allowlist": sorted(self._allow),
                "option_sets": {m: {str(c): v.hex() for c, v in o.items()}
                                for m, o in sorted(self._options.items())},
                **self._describe_state(),
            }

    def _describe_state(self) -> dict[str, Any]:
        """The backend's own part of :meth:`describe` (knobs, counters); called with the lock held."""
        return {}

    def export_json(self, path: str | os.PathLike[str] | None = None, mac: str | None = None) -> str:
        """The transcript (optionally one MAC's) with the server settings, as JSON; written to ``path``."""
        return export_transcript(path, server=self.describe(), records=self.transcript(mac))
