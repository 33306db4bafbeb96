"""One SNMP GET or SET of an INTEGER, one attempt, through pysnmp 7.1's asyncio API.

Shared by the APC and PoE backends. Retries are left to ``OutletSwitch`` (pysnmp's own
are set to 0) so that a ``PowerError`` can say how many attempts were made. The UDP socket
is opened in the calling thread's event loop, hence in its network namespace.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    Integer,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
    set_cmd,
)
from pysnmp.proto.rfc1905 import NoSuchInstance, NoSuchObject

from framework.power.outlet import PowerBackendError


def _auth(pdu: Any) -> CommunityData:
    # mpModel 0 is SNMPv1, 1 is SNMPv2c; the community name is a secret reference.
    return CommunityData(pdu.community.resolve(), mpModel=0 if pdu.snmp_version == "1" else 1)


class _Engine:
    """An event loop and its SnmpEngine; closed with its thread (pending pysnmp timer tasks
    are cancelled, not left for asyncio to report as destroyed while pending)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = SnmpEngine()

    def close(self) -> None:
        loop = self.loop
        if loop.is_closed() or loop.is_running():
            return
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except Exception:  # best effort at thread exit
            pass
        finally:
            loop.close()

    def __del__(self) -> None:
        self.close()


class _ThreadEngines(threading.local):
    """Per thread and network namespace: one event loop and one SnmpEngine.

    Creating an SnmpEngine costs ~0.13 s, too much per outlet command. Its UDP socket
    lives in the namespace of the thread that first used it, so the cache is keyed by the
    thread's current namespace (inode of /proc/thread-self/ns/net).
    """

    def __init__(self) -> None:
        self.by_netns: dict[int, _Engine] = {}

    def get(self) -> tuple[asyncio.AbstractEventLoop, SnmpEngine]:
        netns = os.stat("/proc/thread-self/ns/net").st_ino
        if netns not in self.by_netns:
            self.by_netns[netns] = _Engine()
        engine = self.by_netns[netns]
        return engine.loop, engine.engine


_engines = _ThreadEngines()


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
        hint = " (agent down, unreachable, or wrong community)" \
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
    loop, engine = _engines.get()
    return loop.run_until_complete(_request(engine, pdu, oid, value, timeout))


def snmp_set(pdu: Any, oid: str, value: int, timeout: float) -> None:
    """SET ``oid`` to INTEGER ``value`` on the PDU's agent (one attempt)."""
    _run(pdu, oid, value, timeout)


def snmp_get(pdu: Any, oid: str, timeout: float) -> int:
    """GET the INTEGER at ``oid`` from the PDU's agent (one attempt)."""
    return _run(pdu, oid, None, timeout)
