"""One SNMP GET or SET of an INTEGER, one attempt, through pysnmp 7.1's asyncio API.

Shared by the APC and PoE backends. Retries are left to ``OutletSwitch`` (pysnmp's own
are set to 0) so that a ``PowerError`` can say how many attempts were made. The UDP socket
is opened by a worker thread in the calling thread's network namespace (``_Worker``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    Integer,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    set_cmd,
    usmAesCfb128Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto.rfc1905 import NoSuchInstance, NoSuchObject

from framework.netns import setns
from framework.power.outlet import PowerBackendError

_AUTH = {"MD5": usmHMACMD5AuthProtocol, "SHA": usmHMACSHAAuthProtocol,
         "SHA224": usmHMAC128SHA224AuthProtocol, "SHA256": usmHMAC192SHA256AuthProtocol,
         "SHA384": usmHMAC256SHA384AuthProtocol, "SHA512": usmHMAC384SHA512AuthProtocol}
_PRIV = {"DES": usmDESPrivProtocol, "AES": usmAesCfb128Protocol}


def _auth(pdu: Any) -> CommunityData | UsmUserData:
    """The PDU's credentials: a community (v1/v2c) or a USM user (v3); every key and
    community is a secret reference, resolved here and nowhere else."""
    if pdu.snmp_version == "3":
        v3 = pdu.v3
        auth_key = v3.auth_key.resolve() if v3.auth_key is not None else None
        priv_key = v3.priv_key.resolve() if v3.priv_key is not None else None
        return UsmUserData(v3.user, authKey=auth_key, privKey=priv_key,
                           authProtocol=_AUTH[v3.auth_protocol] if auth_key else None,
                           privProtocol=_PRIV[v3.priv_protocol] if priv_key else None)
    # mpModel 0 is SNMPv1, 1 is SNMPv2c
    return CommunityData(pdu.community.resolve(), mpModel=0 if pdu.snmp_version == "1" else 1)


IDLE_STOP_S = 60.0


class _Worker:
    """One event loop thread with one SnmpEngine, for one network namespace.

    Every caller in that namespace (lanes, per-case checks) submits its request here, so no
    engine is built per thread (~0.13 s each) and no event loop with pysnmp's pending timer
    task is left to the garbage collector: a pending task destroyed by the collector logs
    from inside whatever thread triggered the collection, and with the TFTP server forking
    (the fork takes the logging lock, then the import lock) a thread that was importing when
    it collected deadlocked the lab. The worker enters the caller's namespace, so its UDP
    sockets live where the caller's would; idle for a minute, it stops itself cleanly (its
    tasks cancelled in its own thread), releasing the namespace.
    """

    def __init__(self, netns_fd: int, name: str, on_idle: Callable[[_Worker], bool]) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: SnmpEngine | None = None
        self.in_flight = 0
        self.last_used = time.monotonic()
        self._on_idle = on_idle
        self._error: BaseException | None = None
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(netns_fd, ready), daemon=True,
                         name=name).start()
        ready.wait()
        if self._error is not None:
            raise PowerBackendError(f"SNMP client cannot start: {self._error}")

    def _serve(self, netns_fd: int, ready: threading.Event) -> None:
        try:
            setns(netns_fd)
            asyncio.set_event_loop(self.loop)
            self.engine = SnmpEngine()
        except BaseException as exc:  # reported to the caller that started us
            self._error = exc
            ready.set()
            return
        finally:
            os.close(netns_fd)
        ready.set()
        self.loop.call_later(IDLE_STOP_S, self._check_idle)
        try:
            self.loop.run_forever()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            self.loop.close()

    def _check_idle(self) -> None:
        if self._on_idle(self):
            self.loop.stop()
        else:
            self.loop.call_later(IDLE_STOP_S, self._check_idle)

    def call(self, pdu: Any, oid: str, value: int | None, timeout: float) -> int:
        assert self.engine is not None
        future = asyncio.run_coroutine_threadsafe(
            _request(self.engine, pdu, oid, value, timeout), self.loop)
        try:
            return future.result(timeout + 5.0)  # pysnmp times out first; this is a backstop
        except concurrent.futures.TimeoutError:
            future.cancel()
            verb = "SET" if value is not None else "GET"
            raise PowerBackendError(f"SNMP {verb} {oid}: no result within {timeout + 5:g} s "
                                    f"(SNMP client stalled)") from None


class _Workers:
    """The SNMP worker of each network namespace (keyed by the inode of the calling
    thread's namespace; a worker in it keeps the namespace, so the inode is not reused)."""

    def __init__(self) -> None:
        self._by_netns: dict[int, _Worker] = {}
        self._lock = threading.Lock()

    def call(self, pdu: Any, oid: str, value: int | None, timeout: float) -> int:
        netns = os.stat("/proc/thread-self/ns/net").st_ino
        with self._lock:
            worker = self._by_netns.get(netns)
            if worker is None:
                fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
                worker = _Worker(fd, f"snmp-netns-{netns}", self._retire)
                self._by_netns[netns] = worker
            worker.in_flight += 1
        try:
            return worker.call(pdu, oid, value, timeout)
        finally:
            with self._lock:
                worker.in_flight -= 1
                worker.last_used = time.monotonic()

    def _retire(self, worker: _Worker) -> bool:
        """Whether ``worker`` may stop now (idle, nothing in flight); if so, forget it."""
        with self._lock:
            if worker.in_flight or time.monotonic() - worker.last_used < IDLE_STOP_S:
                return False
            for key, known in list(self._by_netns.items()):
                if known is worker:
                    del self._by_netns[key]
            return True


_workers = _Workers()


async def _request(engine: SnmpEngine, pdu: Any, oid: str, value: int | None,
                   timeout: float) -> int:
    target = await UdpTransportTarget.create((pdu.host, pdu.port), timeout=timeout, retries=0)
    var = ObjectType(ObjectIdentity(oid), Integer(value)) if value is not None \
        else ObjectType(ObjectIdentity(oid))
    command = set_cmd if value is not None else get_cmd
    indication, status, _index, binds = await command(engine, _auth(pdu), target,
                                                      ContextData(), var)
    verb = "SET" if value is not None else "GET"
    if indication:
        # no answer at all: timeout, unreachable, or a community the agent ignores
        hint = (" (agent down, unreachable, or wrong community)" if pdu.snmp_version != "3"
                else " (agent down, unreachable, or wrong SNMPv3 user or keys)") \
            if "timeout" in str(indication).lower() else ""
        raise PowerBackendError(f"SNMP {verb} {oid}: {indication}{hint}")
    if status:
        raise PowerBackendError(f"SNMP {verb} {oid}: agent answered {status.prettyPrint()}",
                                retryable=False)
    answer = binds[0][1]
    if isinstance(answer, NoSuchInstance | NoSuchObject):
        raise PowerBackendError(f"SNMP {verb} {oid}: no such outlet on this agent "
                                f"({answer.prettyPrint()})", retryable=False)
    try:
        return int(answer)
    except (TypeError, ValueError):
        raise PowerBackendError(f"SNMP {verb} {oid}: expected an INTEGER, got "
                                f"{answer.prettyPrint()!r}", retryable=False) from None


def _run(pdu: Any, oid: str, value: int | None, timeout: float) -> int:
    return _workers.call(pdu, oid, value, timeout)


def snmp_set(pdu: Any, oid: str, value: int, timeout: float) -> None:
    """SET ``oid`` to INTEGER ``value`` on the PDU's agent (one attempt)."""
    _run(pdu, oid, value, timeout)


def snmp_get(pdu: Any, oid: str, timeout: float) -> int:
    """GET the INTEGER at ``oid`` from the PDU's agent (one attempt)."""
    return _run(pdu, oid, None, timeout)
