"""The simulated APC Switched Rack PDU: a pysnmp agent whose outlets power virtual phones.

It answers SNMP v1/v2c (community from the rig) and, when the rig gives the PDU an SNMPv3
user, SNMPv3 as that user (USM, RFC 3414) on the PDU address in the infra namespace
with the APC PowerNet-MIB objects that labgrid's ``apc`` backend and net-snmp use:

* ``sPDUOutletCtl``     1.3.6.1.4.1.318.1.1.4.4.2.1.3.N  read-write: 1 on, 2 off, 3 reboot;
  a GET returns the outlet state (1 on, 2 off)
* ``sPDUOutletCtlName`` 1.3.6.1.4.1.318.1.1.4.4.2.1.4.N  read-only: the outlet's name
* ``sPDUOutletName``    1.3.6.1.4.1.318.1.1.4.5.2.1.3.N  read-only: the outlet's name

or, for a rig PDU with ``model: ap89xx``, the rPDU outlet group of an AP89xx:

* ``rPDUOutletControlOutletCommand`` 1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.N  read-write:
  1 immediateOn, 2 immediateOff, 3 immediateReboot; a GET returns 1 on / 2 off
* ``rPDUOutletStatusOutletName``     1.3.6.1.4.1.318.1.1.12.3.5.1.1.2.N  read-only
* ``rPDUOutletStatusOutletState``    1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.N  read-only:
  1 outletStatusOn, 2 outletStatusOff

A bad SET value gets ``wrongValue`` (LAB-NOTES: raise ``WrongValueError``). Fault knobs:
a dead outlet accepts SETs and never switches; an unreachable PDU is one whose address
is not on the wire at all (no ARP answer, so managers time out).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto.api import v2c
from pysnmp.smi import error as smi_error

from framework.netns import Netns
from framework.rig.model import SnmpV3

SPDU_OUTLET_CTL = (1, 3, 6, 1, 4, 1, 318, 1, 1, 4, 4, 2, 1, 3)
SPDU_OUTLET_CTL_NAME = (1, 3, 6, 1, 4, 1, 318, 1, 1, 4, 4, 2, 1, 4)
SPDU_OUTLET_NAME = (1, 3, 6, 1, 4, 1, 318, 1, 1, 4, 5, 2, 1, 3)
RPDU_OUTLET_COMMAND = (1, 3, 6, 1, 4, 1, 318, 1, 1, 12, 3, 3, 1, 1, 4)
RPDU_OUTLET_STATUS_NAME = (1, 3, 6, 1, 4, 1, 318, 1, 1, 12, 3, 5, 1, 1, 2)
RPDU_OUTLET_STATUS_STATE = (1, 3, 6, 1, 4, 1, 318, 1, 1, 12, 3, 5, 1, 1, 4)
OUTLET_ON, OUTLET_OFF, OUTLET_REBOOT = 1, 2, 3

log = logging.getLogger(__name__)
PowerSwitch = Callable[[int, bool], None]

_USM_AUTH = {"MD5": config.USM_AUTH_HMAC96_MD5, "SHA": config.USM_AUTH_HMAC96_SHA,
             "SHA224": config.USM_AUTH_HMAC128_SHA224, "SHA256": config.USM_AUTH_HMAC192_SHA256,
             "SHA384": config.USM_AUTH_HMAC256_SHA384, "SHA512": config.USM_AUTH_HMAC384_SHA512}
_USM_PRIV = {"DES": config.USM_PRIV_CBC56_DES, "AES": config.USM_PRIV_CFB128_AES}


@dataclass(frozen=True)
class UsmUser:
    """The SNMPv3 user the PDU accepts (the rig's ``v3``, keys resolved)."""

    name: str
    auth_protocol: str = "SHA"
    auth_key: str | None = None
    priv_protocol: str = "AES"
    priv_key: str | None = None

    @property
    def level(self) -> str:
        return "authPriv" if self.priv_key else "authNoPriv" if self.auth_key else "noAuthNoPriv"

    @classmethod
    def from_rig(cls, v3: SnmpV3 | None) -> UsmUser | None:
        """The rig PDU's ``v3`` with its keys resolved (``SecretError`` if one is unset)."""
        if v3 is None:
            return None
        return cls(v3.user, v3.auth_protocol, v3.auth_key.resolve() if v3.auth_key else None,
                   v3.priv_protocol, v3.priv_key.resolve() if v3.priv_key else None)


class OutletBoard:
    """The PDU's outlets: state per outlet, switching the phone plugged into it."""

    def __init__(self, outlets: int, names: dict[int, str], switch: PowerSwitch,
                 on_at_start: bool, dead: Iterable[int], reboot_delay_s: float) -> None:
        self.count = outlets
        self.names = {n: names.get(n, f"Outlet {n}") for n in range(1, outlets + 1)}
        self.state = {n: OUTLET_ON if on_at_start else OUTLET_OFF for n in self.names}
        self.dead = set(dead)
        self.switch = switch
        self.reboot_delay_s = reboot_delay_s
        self.lock = threading.Lock()

    def apply_initial(self) -> None:
        """Power what is plugged into outlets that start on."""
        for outlet, state in self.state.items():
            if state == OUTLET_ON:
                self.switch(outlet, True)

    def command(self, outlet: int, value: int, loop: asyncio.AbstractEventLoop) -> None:
        """An accepted SET of sPDUOutletCtl.N (already validated)."""
        if outlet in self.dead:
            log.info("outlet %d is dead: ignoring control %d", outlet, value)
            return
        if value == OUTLET_REBOOT:
            self._set(outlet, OUTLET_OFF)
            loop.call_later(self.reboot_delay_s, self._set, outlet, OUTLET_ON)
        else:
            self._set(outlet, value)

    def _set(self, outlet: int, value: int) -> None:
        with self.lock:
            changed = self.state[outlet] != value
            self.state[outlet] = value
        if changed:
            log.info("outlet %d %s", outlet, "on" if value == OUTLET_ON else "off")
            self.switch(outlet, value == OUTLET_ON)


class ApcPduAgent:
    """The SNMP agent thread (asyncio loop) in the infra namespace."""

    def __init__(self, netns: Netns, address: str, port: int, community: str | None,
                 board: OutletBoard, model: str = "ap79xx", usm: UsmUser | None = None) -> None:
        self.model, self.usm = model, usm
        self.netns = netns
        self.address = address
        self.port = port
        self.community = community
        self.board = board
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the agent; returns once it listens (raises what kept it from starting)."""
        self.thread = self.netns.thread(self._run, name=f"pdu-{self.address}")
        self.thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError(f"PDU agent on {self.address}:{self.port} did not start "
                               f"within {timeout} s")
        if self.failure is not None:
            raise RuntimeError(f"PDU agent on {self.address}:{self.port}: {self.failure}")

    def stop(self) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            snmp = self._engine()
        except BaseException as exc:  # report to start(), then end the thread
            self.failure = exc
            self.ready.set()
            return
        loop.call_soon(self.ready.set)
        try:
            loop.run_forever()
        finally:
            snmp.close_dispatcher()
            loop.close()

    def _engine(self) -> engine.SnmpEngine:
        snmp = engine.SnmpEngine()
        config.add_transport(snmp, udp.DOMAIN_NAME,
                             udp.UdpTransport(loop=self.loop).open_server_mode(
                                 (self.address, self.port)))
        if self.community is not None:
            config.add_v1_system(snmp, "pdu-area", self.community)
            for model in (1, 2):  # SNMPv1 and v2c
                config.add_vacm_user(snmp, model, "pdu-area", "noAuthNoPriv", (1, 3, 6),
                                     (1, 3, 6))
        if (usm := self.usm) is not None:
            config.add_v3_user(
                snmp, usm.name,
                _USM_AUTH[usm.auth_protocol] if usm.auth_key else config.USM_AUTH_NONE,
                usm.auth_key,
                _USM_PRIV[usm.priv_protocol] if usm.priv_key else config.USM_PRIV_NONE,
                usm.priv_key)
            config.add_vacm_user(snmp, 3, usm.name, usm.level, (1, 3, 6), (1, 3, 6))
        snmp_context = context.SnmpContext(snmp)
        builder = snmp_context.get_mib_instrum().get_mib_builder()
        self._export(builder)
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder,
                          cmdrsp.BulkCommandResponder, cmdrsp.SetCommandResponder):
            responder(snmp, snmp_context)
        snmp.transport_dispatcher.job_started(1)
        return snmp

    def _export(self, builder: Any) -> None:
        mib_scalar, mib_scalar_instance = builder.import_symbols(
            "SNMPv2-SMI", "MibScalar", "MibScalarInstance")
        board = self.board
        agent = self

        class OutletControl(mib_scalar_instance):  # type: ignore[misc, valid-type]
            """sPDUOutletCtl.N or rPDUOutletControlOutletCommand.N: GET = state,
            SET 1/2/3 = on/off/reboot."""

            def getValue(self, name: Any, **context: Any) -> Any:
                return self.getSyntax().clone(board.state[self.instId[0]])

            def setValue(self, value: Any, name: Any, **context: Any) -> Any:
                if value is None or int(value) not in (OUTLET_ON, OUTLET_OFF, OUTLET_REBOOT):
                    raise smi_error.WrongValueError(name=name, idx=context.get("idx"))
                return self.getSyntax().clone(value)

            def writeCommit(self, varBind: Any, **context: Any) -> None:
                _, value = varBind
                assert agent.loop is not None
                board.command(self.instId[0], int(value), agent.loop)

        class OutletState(mib_scalar_instance):  # type: ignore[misc, valid-type]
            """rPDUOutletStatusOutletState.N: 1 on, 2 off."""

            def getValue(self, name: Any, **context: Any) -> Any:
                return self.getSyntax().clone(board.state[self.instId[0]])

        control, names = (RPDU_OUTLET_COMMAND, (RPDU_OUTLET_STATUS_NAME,)) \
            if self.model == "ap89xx" else (SPDU_OUTLET_CTL, (SPDU_OUTLET_CTL_NAME,
                                                              SPDU_OUTLET_NAME))
        symbols = [mib_scalar(control, v2c.Integer()).setMaxAccess("read-write")]
        symbols += [mib_scalar(oid, v2c.OctetString()).setMaxAccess("read-only")
                    for oid in names]
        if self.model == "ap89xx":
            symbols.append(mib_scalar(RPDU_OUTLET_STATUS_STATE,
                                      v2c.Integer()).setMaxAccess("read-only"))
        for outlet, name in board.names.items():
            symbols.append(OutletControl(control, (outlet,), v2c.Integer(board.state[outlet])))
            symbols += [mib_scalar_instance(oid, (outlet,), v2c.OctetString(name))
                        for oid in names]
            if self.model == "ap89xx":
                symbols.append(OutletState(RPDU_OUTLET_STATUS_STATE, (outlet,),
                                           v2c.Integer(board.state[outlet])))
        builder.export_symbols("__APC-SIM-PDU", *symbols)
