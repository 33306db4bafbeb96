"""The request log: one record per request a phone made to the provisioning services.

Every server (DNS, TFTP, HTTP, HTTPS, FTP) appends to one shared ``RequestLog``. The
verdict compares these records with the resolution core's expected URLs, so a record
keeps the wire evidence as the phone sent it (host and path case, options, headers)
and the URL rebuilt from that evidence. Records never hold credentials.

Usage::

    log = RequestLog(jsonl=Path("reports/requests.jsonl"), mac_resolver=dhcp.mac_for_ip)
    t0 = time.time()
    ... power-cycle the phone ...
    rec = log.wait_for(lambda r: r.protocol == "tftp" and r.path.endswith(".img"),
                       timeout=30, what="the firmware TFTP request of ph1", since=t0)
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from framework.errors import HilError

logger = logging.getLogger(__name__)

ProtocolName = Literal["dns", "tftp", "http", "https", "ftp"]
PROTOCOLS: tuple[ProtocolName, ...] = ("dns", "tftp", "http", "https", "ftp")
DEFAULT_PORTS: dict[str, int] = {"dns": 53, "tftp": 69, "http": 80, "https": 443, "ftp": 21}

MacResolver = Callable[[str], "str | None"]
Subscriber = Callable[["RequestRecord"], None]


class Outcome(enum.StrEnum):
    """How a request ended, the same words for every protocol (the protocol's own code is
    ``RequestRecord.status``)."""

    SERVED = "served"  # the whole response went out (file, DNS answer, directory listing...)
    NOT_FOUND = "not-found"  # no such file / name (policy "not-found", TFTP error 1, NXDOMAIN)
    CUT = "cut"  # the transfer was cut on purpose after N bytes (policy "cut")
    DENIED = "denied"  # refused: failed login, no permission, read-only server
    ERROR = "error"  # malformed request, protocol error, timeout, client abort


def normalize_mac(mac: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` from any usual spelling (``AA-BB-..``, ``aabb.ccdd.eeff``, 12 hex).

    Raises ValueError naming the value when it is not a MAC address.
    """
    digits = "".join(c for c in mac if c not in ":-. ").lower()
    if len(digits) != 12 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"{mac!r} is not a MAC address (expected 12 hex digits)")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def build_url(protocol: str, host: str, port: int | None, path: str) -> str:
    """Rebuild the URL a client used from the wire evidence.

    The port appears only when it is not the protocol's default. A TFTP filename is
    appended after ``host/`` exactly as sent (curl maps ``tftp://h/a.img`` to the filename
    ``a.img``), so a phone sending ``/a.img`` shows as ``tftp://h//a.img``: evidence, not
    normalised away. HTTP(S)/FTP paths are absolute already.
    """
    netloc = host
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]"  # an IPv6 literal
    if port is not None and port != DEFAULT_PORTS.get(protocol):
        netloc = f"{netloc}:{port}"
    if protocol == "tftp":
        return f"tftp://{netloc}/{path}"
    if not path.startswith("/"):
        path = "/" + path
    return f"{protocol}://{netloc}{path}"


@dataclass(frozen=True)
class RequestRecord:
    """One request as seen on the wire, and how the service answered it.

    ``host`` is the server name as the phone named it: the HTTP Host header (without
    port), the TLS SNI when there is no Host, the DNS query name; for TFTP and FTP (which
    carry no host name) the name of the most recent DNS query by the same client that our
    DNS answered with this server's address, else the server IP. ``url`` is rebuilt from
    that evidence (``None`` for DNS and for requests too broken to have a path).
    ``details`` holds the protocol specifics (TFTP mode/blksize/tsize/timeout, HTTP Range,
    FTP user, DNS qtype/answer, SNI, error text); treat it as read-only.
    """

    time: float
    protocol: str
    client_ip: str
    host: str
    path: str
    url: str | None
    method: str
    outcome: str
    status: int | None = None
    bytes_sent: int = 0
    user_agent: str | None = None
    client_mac: str | None = None
    client_port: int | None = None
    server_ip: str | None = None
    server_port: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the JSONL line's object)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        """Read back a record written by ``to_dict`` (e.g. a JSONL line)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"not a RequestRecord: unknown keys {unknown}")
        return cls(**data)

    def summary(self) -> str:
        """One human line: time, protocol, client, what was asked, how it ended."""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time)) + f".{int(self.time * 1000) % 1000:03d}"
        who = self.client_ip + (f" ({self.client_mac})" if self.client_mac else "")
        what = self.url or f"{self.host} {self.path}".strip()
        status = f" {self.status}" if self.status is not None else ""
        return (f"{stamp} {self.protocol:<5} {who} {self.method} {what} -> "
                f"{self.outcome}{status}, {self.bytes_sent} B")


class RequestWaitTimeout(HilError, TimeoutError):
    """A ``RequestLog.wait_for`` timed out; the message names what was awaited."""


class RequestLog:
    """Thread-safe, append-only log shared by all provisioning services.

    ``mac_resolver`` (typically the DHCP server's ``mac_for_ip``) fills ``client_mac``
    for records that arrive without one; it may be set after construction. ``jsonl``
    names an optional live sink: one JSON object per record, flushed as written.
    """

    def __init__(self, *, jsonl: str | Path | None = None,
                 mac_resolver: MacResolver | None = None) -> None:
        self.mac_resolver = mac_resolver
        self._records: list[RequestRecord] = []
        self._cond = threading.Condition()  # an RLock: predicates may read the log
        self._subscribers: list[Subscriber] = []
        # (client IP, answered IP) -> (name as asked, answer time, TTL)
        self._named: dict[tuple[str, str], tuple[str, float, float | None]] = {}
        # client IP -> when its DNS cache was last emptied (a new DHCP cycle, a reboot)
        self._cache_start: dict[str, float] = {}
        self._sink: IO[str] | None = None
        self.jsonl_path = Path(jsonl) if jsonl is not None else None
        if self.jsonl_path is not None:
            try:
                self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
                self._sink = self.jsonl_path.open("a", encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot open request log sink {str(self.jsonl_path)!r}: "
                                 f"{exc.strerror}") from exc

    # --- writing ---------------------------------------------------------------------

    def append(self, record: RequestRecord) -> RequestRecord:
        """Add a record (filling ``client_mac`` through the resolver) and notify waiters,
        the JSONL sink and subscribers. Returns the record as stored."""
        if record.client_mac is None and self.mac_resolver is not None:
            record = self._with_mac(record)
        elif record.client_mac is not None:
            try:
                record = dataclasses.replace(record, client_mac=normalize_mac(record.client_mac))
            except ValueError:
                pass  # keep it exactly as given: it is evidence
        with self._cond:
            self._records.append(record)
            if record.protocol == "dns" and record.outcome == Outcome.SERVED and \
                    record.time >= self._cache_start.get(record.client_ip, 0.0):
                ttl = record.details.get("ttl")
                for address in record.details.get("answer", ()):
                    self._named[(record.client_ip, str(address))] = (
                        record.host, record.time, float(ttl) if ttl is not None else None)
            if self._sink is not None:
                try:
                    self._sink.write(json.dumps(record.to_dict(), default=str) + "\n")
                    self._sink.flush()
                except (OSError, ValueError) as exc:
                    logger.warning("request log sink %s: write failed (%s); sink closed",
                                   self.jsonl_path, exc)
                    self._close_sink()
            subscribers = list(self._subscribers)
            self._cond.notify_all()
        for callback in subscribers:
            try:
                callback(record)
            except Exception:
                logger.exception("request log subscriber %r failed on %s", callback,
                                 record.summary())
        return record

    def _with_mac(self, record: RequestRecord) -> RequestRecord:
        assert self.mac_resolver is not None
        try:
            mac = self.mac_resolver(record.client_ip)
        except Exception as exc:
            details = {**record.details, "mac_resolver_error": f"{type(exc).__name__}: {exc}"}
            return dataclasses.replace(record, details=details)
        if mac is None:
            return record
        try:
            mac = normalize_mac(mac)
        except ValueError:
            pass
        return dataclasses.replace(record, client_mac=mac)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(record)`` for every record appended from now on (in the
        appending service's thread; keep it quick). Returns a function that unsubscribes."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def close(self) -> None:
        """Close the JSONL sink (records stay readable in memory)."""
        with self._cond:
            self._close_sink()

    def _close_sink(self) -> None:
        if self._sink is not None:
            try:
                self._sink.close()
            except OSError:
                pass
            self._sink = None

    # --- reading ---------------------------------------------------------------------

    def records(self, *, protocol: str | Collection[str] | None = None,
                client_ip: str | None = None, client_mac: str | None = None,
                since: float | None = None) -> list[RequestRecord]:
        """A snapshot of the records matching all the filters given, oldest first.

        ``protocol`` is one name or several; ``client_mac`` may be spelled any usual way;
        ``since`` keeps records with ``time >= since`` (epoch seconds).
        """
        match = self._matcher(protocol=protocol, client_ip=client_ip, client_mac=client_mac,
                              since=since)
        with self._cond:
            return [r for r in self._records if match(r)]

    def __len__(self) -> int:
        with self._cond:
            return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records())

    def name_for(self, client_ip: str, server_ip: str, *, at: float | None = None) -> str | None:
        """The name (as the client spelled it) of ``client_ip``'s most recent query that
        our DNS answered with ``server_ip``, if that answer's TTL still ran at ``at``
        (default now): a client may use a cached answer only that long (RFC 1035 3.2.1).
        """
        with self._cond:
            entry = self._named.get((client_ip, server_ip))
        if entry is None:
            return None
        name, answered, ttl = entry
        when = time.time() if at is None else at
        if ttl is not None and when > answered + ttl:
            return None
        return name

    def host_for(self, client_ip: str, server_ip: str, *, at: float | None = None) -> str:
        """The host of a TFTP/FTP request (those protocols carry no name): ``name_for``,
        else ``server_ip``."""
        return self.name_for(client_ip, server_ip, at=at) or server_ip

    def forget_names(self, client_ip: str | None = None, *, before: float | None = None
                     ) -> None:
        """Drop what ``client_ip`` (or every client) resolved: call it when a phone
        reboots or starts a new DHCP cycle, whose DNS cache is then empty, so a later
        request by IP address is not attributed to a name it resolved in an earlier case.

        ``before`` (epoch seconds, e.g. the new cycle's DHCP ACK) drops only look-ups made
        before it, and also ignores such look-ups logged later (a query of the previous
        cycle whose record arrives after the new cycle began)."""
        with self._cond:
            if client_ip is not None and before is not None:
                self._cache_start[client_ip] = max(before,
                                                   self._cache_start.get(client_ip, 0.0))
            for key, (_, answered, _) in list(self._named.items()):
                if (client_ip is None or key[0] == client_ip) and \
                        (before is None or answered < before):
                    del self._named[key]

    def wait_for(self, predicate: Callable[[RequestRecord], bool], *, timeout: float,
                 what: str, since: float | None = None,
                 stop: threading.Event | None = None) -> RequestRecord:
        """Wait for the first record (already logged or still to come) matching
        ``predicate`` and return it.

        An event wait on a condition variable, no polling. ``since`` ignores older
        records. Raises ``RequestWaitTimeout`` naming ``what`` and showing the last
        records when none matches within ``timeout`` seconds, or as soon as ``stop`` is
        set (whoever sets it calls :meth:`wake`).
        """
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                while seen < len(self._records):
                    record = self._records[seen]
                    seen += 1
                    if (since is None or record.time >= since) and predicate(record):
                        return record
                if stop is not None and stop.is_set():
                    raise RequestWaitTimeout(f"{what}: stopped waiting (the awaited end "
                                             f"came first)")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestWaitTimeout(self._timeout_message(what, timeout, since))
                self._cond.wait(remaining)

    def wake(self) -> None:
        """Wake every ``wait_for`` to look at its ``stop`` event."""
        with self._cond:
            self._cond.notify_all()

    def wait_for_count(self, predicate: Callable[[RequestRecord], bool], count: int, *,
                       timeout: float, what: str,
                       since: float | None = None) -> list[RequestRecord]:
        """Wait until ``count`` records match ``predicate``; return the first ``count``.

        Like ``wait_for`` (an event wait), for "both the firmware and the configuration
        request" or "all 16 transfers". The timeout message says how many arrived.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        found: list[RequestRecord] = []
        with self._cond:
            while True:
                while seen < len(self._records) and len(found) < count:
                    record = self._records[seen]
                    seen += 1
                    if (since is None or record.time >= since) and predicate(record):
                        found.append(record)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestWaitTimeout(self._timeout_message(
                        f"{what} ({len(found)} of {count} arrived)", timeout, since))
                self._cond.wait(remaining)

    def _timeout_message(self, what: str, timeout: float, since: float | None) -> str:
        recent = [r for r in self._records if since is None or r.time >= since][-8:]
        lines = "\n  ".join(r.summary() for r in recent) or "(none)"
        scope = " since the wait began" if since is not None else ""
        return (f"timed out after {timeout:g} s waiting for {what}; "
                f"last requests{scope}:\n  {lines}")

    @staticmethod
    def _matcher(*, protocol: str | Collection[str] | None, client_ip: str | None,
                 client_mac: str | None, since: float | None) -> Callable[[RequestRecord], bool]:
        protocols: set[str] | None
        if protocol is None:
            protocols = None
        elif isinstance(protocol, str):
            protocols = {protocol}
        else:
            protocols = set(protocol)
        if protocols is not None and not protocols <= set(PROTOCOLS):
            raise ValueError(f"unknown protocol(s) {sorted(protocols - set(PROTOCOLS))}; "
                             f"expected some of {list(PROTOCOLS)}")
        mac = normalize_mac(client_mac) if client_mac is not None else None

        def match(r: RequestRecord) -> bool:
            return ((protocols is None or r.protocol in protocols)
                    and (client_ip is None or r.client_ip == client_ip)
                    and (mac is None or r.client_mac == mac)
                    and (since is None or r.time >= since))

        return match
