"""``PowerSwitch`` (the protocol), the backend registry and ``OutletSwitch`` (lock, retries)."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from framework.errors import HilError
from framework.rig.model import AnyPdu

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The registry: rig ``driver`` name -> backend module (imported on first use, so a bench
#: without SNMP PDUs never imports pysnmp). Adding a PDU kind is one module and one line.
BACKENDS: dict[str, str] = {
    "apc-snmp": "framework.power.apc",
    "poe-snmp": "framework.power.poe",
    "pdudaemon": "framework.power.pdudaemon",
    "command": "framework.power.command",
}


@runtime_checkable
class PowerSwitch(Protocol):
    """One switchable outlet feeding one phone."""

    def on(self) -> None:
        """Switch the outlet on."""

    def off(self) -> None:
        """Switch the outlet off."""

    def cycle(self, off_time: float = 3.0) -> None:
        """Off, hold ``off_time`` seconds, on."""

    def state(self) -> bool:
        """True if the outlet is on (``PowerStateUnreadable`` if the PDU cannot tell)."""


class PowerBackend(Protocol):
    """What a backend module provides (one attempt each; no retries, no locking)."""

    def power_set(self, pdu: Any, outlet: int, on: bool, timeout: float) -> None: ...

    def power_get(self, pdu: Any, outlet: int, timeout: float) -> bool | None: ...


class PowerBackendError(HilError):
    """One attempt failed. ``retryable`` is False when retrying cannot help
    (the PDU answered with an error: no such outlet, wrong community, refused)."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.retryable = retryable


class PowerError(HilError, RuntimeError):
    """A power operation failed: names the PDU, outlet, operation and attempts.
    ``unanswered`` is True when every attempt failed without a usable answer (timeouts,
    unreachable), False when the PDU answered with an error."""

    def __init__(self, pdu: str, outlet: int, operation: str, attempts: int, reason: str,
                 *, where: str = "", unanswered: bool = False) -> None:
        self.pdu, self.outlet, self.operation = pdu, outlet, operation
        self.attempts, self.reason, self.unanswered = attempts, reason, unanswered
        at = f" ({where})" if where else ""
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        super().__init__(f"PDU {pdu}{at} outlet {outlet}: {operation} failed{tries}: {reason}")


class PowerStateUnreadable(PowerError):
    """The PDU has no way to report an outlet's state (e.g. pdudaemon)."""


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def pdu_lock(key: str) -> threading.Lock:
    """The lock serialising commands to one PDU (one per host:port, process-wide)."""
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _backend(driver: str) -> PowerBackend:
    try:
        module = BACKENDS[driver]
    except KeyError:
        raise ValueError(f"no power backend for PDU driver {driver!r} "
                         f"(known: {', '.join(BACKENDS)})") from None
    return cast(PowerBackend, importlib.import_module(module))


@dataclass
class OutletSwitch:
    """A ``PowerSwitch`` for one outlet of a rig PDU, through its registered backend.

    Each command holds the PDU's lock for its attempts, so two phones on one PDU never
    talk to it at once; a cycle releases the lock while the outlet is held off.
    """

    pdu: AnyPdu
    outlet: int
    backend: PowerBackend = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.outlet <= self.pdu.outlets:
            raise ValueError(f"PDU {self.pdu.name} has outlets 1..{self.pdu.outlets}, "
                             f"not {self.outlet}")
        self.backend = _backend(self.pdu.driver)

    @property
    def where(self) -> str:
        host = getattr(self.pdu, "host", None)
        port = getattr(self.pdu, "port", None)
        at = f" {host}:{port}" if host and port else (f" {host}" if host else "")
        return f"{self.pdu.driver}{at}"

    def _attempt(self, operation: str, fn: Callable[[], T]) -> T:
        attempts = 1 + self.pdu.retries
        reason = ""
        with pdu_lock(self.pdu.lock_key):
            for attempt in range(1, attempts + 1):
                try:
                    return fn()
                except PowerBackendError as exc:
                    reason = str(exc)
                    if not exc.retryable:
                        raise PowerError(self.pdu.name, self.outlet, operation, attempt, reason,
                                         where=self.where) from None
                except (OSError, TimeoutError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                log.info("PDU %s outlet %d: %s attempt %d/%d failed: %s", self.pdu.name,
                         self.outlet, operation, attempt, attempts, reason)
        raise PowerError(self.pdu.name, self.outlet, operation, attempts,
                         f"{reason} (timeout {self.pdu.timeout_s:g} s per attempt)",
                         where=self.where, unanswered=True)

    def _set(self, on: bool) -> None:
        operation = "on" if on else "off"
        self._attempt(operation, lambda: self.backend.power_set(
            self.pdu, self.outlet, on, self.pdu.timeout_s))
        log.info("PDU %s outlet %d: %s", self.pdu.name, self.outlet, operation)

    def on(self) -> None:
        self._set(True)

    def off(self) -> None:
        self._set(False)

    def _read(self) -> bool | None:
        return self._attempt("state", lambda: self.backend.power_get(
            self.pdu, self.outlet, self.pdu.timeout_s))

    def state(self) -> bool:
        value = self._read()
        if value is None:
            raise PowerStateUnreadable(self.pdu.name, self.outlet, "state", 0,
                                       f"the {self.pdu.driver} driver cannot read outlet state",
                                       where=self.where)
        return value

    def cycle(self, off_time: float = 3.0) -> None:
        """Off, confirm off where the PDU can tell, hold ``off_time``, on, confirm on.

        The hold is the power-off duration the phone needs (its supply must drain), not a
        wait for an event; boot is detected by evidence in framework.phone.
        """
        self._set(False)
        self._confirm(False, "cycle")
        time.sleep(off_time)
        self._set(True)
        self._confirm(True, "cycle")

    def _confirm(self, expected: bool, operation: str) -> None:
        actual = self._read()
        if actual is not None and actual != expected:
            want, got = ("on", "off") if expected else ("off", "on")
            raise PowerError(self.pdu.name, self.outlet, operation, 1,
                             f"outlet reads {got} right after switching it {want}",
                             where=self.where)


def power_switch(pdu: AnyPdu, outlet: int) -> OutletSwitch:
    """The ``PowerSwitch`` for ``outlet`` of ``pdu`` (a rig PDU record)."""
    return OutletSwitch(pdu, outlet)
