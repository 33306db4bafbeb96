"""The DHCP transcript: every message each client sent and every reply, as evidence.

Both backends (the scapy server and Kea) write into a :class:`Transcript`; tests and the
lab runner read it, wait on it (``wait_for`` is a condition-variable event, never a
polling sleep) and export it as JSON next to the verdict.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from framework.dhcp.options import (
    OptionCodecError,
    OptionSet,
    decode_client_id,
    decode_parameter_list,
    decode_text,
    decode_user_class,
    describe_options,
)
from framework.dhcp.packet import DhcpMessage, normalise_mac
from framework.errors import HilError

log = logging.getLogger(__name__)

RECEIVED = "received"
SENT = "sent"


class DhcpWaitTimeout(HilError, TimeoutError):
    """An awaited DHCP message did not come in time; the message names what was awaited."""


@dataclass(frozen=True)
class DhcpMessageRecord:
    """One DHCP message on the wire, as received from a client or sent by the server.

    ``options`` is every option exactly as on the wire: for a received message all the
    client sent, for a sent one what was offered/acked. The readable fields (55, 60, 61,
    77, 12) are decoded from it for lab engineers. ``ignored`` marks a client message the
    server deliberately did not answer (not on the allowlist, or the ignore fault knob);
    ``note`` says why, or what the server decided.
    """

    time: float
    direction: str
    message_type: str
    xid: int
    mac: str
    ciaddr: str
    yiaddr: str
    source: str
    destination: str
    options: OptionSet = field(default_factory=dict)
    ignored: bool = False
    note: str = ""

    @property
    def parameter_list(self) -> tuple[int, ...]:
        """Option 55: the codes the client asked for (empty when absent)."""
        value = self.options.get(55)
        return decode_parameter_list(value) if value is not None else ()

    @property
    def vendor_class(self) -> str | None:
        """Option 60 as text (model name for a 400HD)."""
        value = self.options.get(60)
        return decode_text(value) if value is not None else None

    @property
    def client_id(self) -> str | None:
        """Option 61 as ``type:identifier`` hex."""
        value = self.options.get(61)
        if value is None:
            return None
        try:
            return str(decode_client_id(value))
        except OptionCodecError:
            return ""

    @property
    def user_class(self) -> tuple[str, ...] | None:
        """Option 77 names (RFC 3004 length-prefixed or bare text)."""
        value = self.options.get(77)
        return decode_user_class(value).classes if value is not None else None

    @property
    def host_name(self) -> str | None:
        """Option 12 as text."""
        value = self.options.get(12)
        return decode_text(value) if value is not None else None

    @property
    def requested_address(self) -> str | None:
        """Option 50, when it is four bytes."""
        value = self.options.get(50)
        return ".".join(str(b) for b in value) if value is not None and len(value) == 4 else None

    @property
    def server_id(self) -> str | None:
        """Option 54, when it is four bytes."""
        value = self.options.get(54)
        return ".".join(str(b) for b in value) if value is not None and len(value) == 4 else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: header fields, readable client fields, every option in hex."""
        stamp = _dt.datetime.fromtimestamp(self.time, _dt.UTC).isoformat(timespec="microseconds")
        return {
            "time": stamp,
            "direction": self.direction,
            "message_type": self.message_type,
            "xid": f"0x{self.xid:08x}",
            "mac": self.mac,
            "ciaddr": self.ciaddr,
            "yiaddr": self.yiaddr,
            "source": self.source,
            "destination": self.destination,
            "requested_address": self.requested_address,
            "server_id": self.server_id,
            "parameter_list": list(self.parameter_list),
            "vendor_class": self.vendor_class,
            "client_id": self.client_id,
            "user_class": list(self.user_class) if self.user_class is not None else None,
            "host_name": self.host_name,
            "options": describe_options(self.options),
            "ignored": self.ignored,
            "note": self.note,
        }

    @classmethod
    def from_message(cls, message: DhcpMessage, *, direction: str, source: str, destination: str,
                     ignored: bool = False, note: str = "", at: float | None = None) -> DhcpMessageRecord:
        return cls(
            time=time.time() if at is None else at,
            direction=direction,
            message_type=message.message_type,
            xid=message.xid,
            mac=message.mac,
            ciaddr=message.ciaddr,
            yiaddr=message.yiaddr,
            source=source,
            destination=destination,
            options=dict(message.options),
            ignored=ignored,
            note=note,
        )


Subscriber = Callable[[DhcpMessageRecord], None]


class Transcript:
    """A thread-safe, append-only list of :class:`DhcpMessageRecord` with event waits."""

    def __init__(self) -> None:
        self._records: list[DhcpMessageRecord] = []
        self._changed = threading.Condition()
        self._subscribers: list[Subscriber] = []

    def append(self, record: DhcpMessageRecord) -> None:
        with self._changed:
            self._records.append(record)
            subscribers = list(self._subscribers)
            self._changed.notify_all()
        for callback in subscribers:
            try:
                callback(record)
            except Exception:  # a subscriber must never stop the server
                log.exception("DHCP transcript subscriber %r failed on %s", callback, record.message_type)

    def records(self, mac: str | None = None) -> list[DhcpMessageRecord]:
        wanted = normalise_mac(mac) if mac is not None else None
        with self._changed:
            return [r for r in self._records if wanted is None or r.mac == wanted]

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(record)`` for every new record (from the server thread).

        Returns a function that unsubscribes. Exceptions in the callback are logged.
        """
        with self._changed:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._changed:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def wait_for(self, mac: str | None, message_type: str = "DISCOVER", *, since: float,
                 timeout: float) -> DhcpMessageRecord:
        """The first record of ``message_type`` for ``mac`` at or after ``since`` (``time.time()``).

        Blocks on a condition variable until it is recorded; raises :class:`DhcpWaitTimeout`
        naming the MAC, the message type and the window, with the last messages seen.
        """
        wanted_mac = normalise_mac(mac) if mac is not None else None
        wanted_type = message_type.upper()
        deadline = time.monotonic() + timeout

        def match() -> DhcpMessageRecord | None:
            for r in self._records:
                if (r.time >= since and r.message_type == wanted_type
                        and (wanted_mac is None or r.mac == wanted_mac)):
                    return r
            return None

        with self._changed:
            while True:
                found = match()
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            seen = [r for r in self._records if wanted_mac is None or r.mac == wanted_mac][-5:]
        who = wanted_mac or "any client"
        when = _dt.datetime.fromtimestamp(since).strftime("%H:%M:%S.%f")[:-3]
        last = "; ".join(f"{r.direction} {r.message_type} xid=0x{r.xid:08x}" for r in seen) or "none"
        raise DhcpWaitTimeout(
            f"no DHCP {wanted_type} for {who} within {timeout:g} s (since {when}); "
            f"last messages for it: {last}"
        )


def export_transcript(path: str | os.PathLike[str] | None, *, server: dict[str, Any],
                      records: Iterable[DhcpMessageRecord]) -> str:
    """Write (when ``path`` is given) and return the JSON evidence: server settings + records."""
    text = json.dumps({"server": server, "messages": [r.to_dict() for r in records]}, indent=2)
    if path is not None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return text
