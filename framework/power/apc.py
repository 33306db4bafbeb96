"""APC Switched Rack PDUs over SNMP (PowerNet-MIB), chosen by the rig's ``model``.

``ap79xx`` (the default): ``sPDUOutletCtl`` (1.3.6.1.4.1.318.1.1.4.4.2.1.3.N): SET 1
outletOn, 2 outletOff, 3 outletReboot; a GET reads 1 on / 2 off (the same OID labgrid's
``apc`` backend uses).

``ap89xx`` (rPDU, the AP86xx/AP88xx/AP89xx family): ``rPDUOutletControlOutletCommand``
(1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.N): SET 1 immediateOn, 2 immediateOff, 3 immediateReboot;
the state is read from ``rPDUOutletStatusOutletState`` (1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.N):
1 outletStatusOn, 2 outletStatusOff. (The rPDU2 branch, 1.3.6.1.4.1.318.1.1.26, numbers
its state the other way round, off(1) on(2); this module does not use it.)
"""

from __future__ import annotations

from framework.power.outlet import PowerBackendError
from framework.power.snmp import snmp_get, snmp_set
from framework.rig.model import ApcSnmpPdu

OUTLET_CTL = "1.3.6.1.4.1.318.1.1.4.4.2.1.3"
RPDU_OUTLET_COMMAND = "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4"
RPDU_OUTLET_STATE = "1.3.6.1.4.1.318.1.1.12.3.5.1.1.4"
ON, OFF = 1, 2
_STATES = {1: "outletOn", 2: "outletOff", 3: "outletReboot", 4: "outletUnknown",
           5: "outletOnWithDelay", 6: "outletOffWithDelay", 7: "outletRebootWithDelay"}


def power_set(pdu: ApcSnmpPdu, outlet: int, on: bool, timeout: float) -> None:
    base = RPDU_OUTLET_COMMAND if pdu.model == "ap89xx" else OUTLET_CTL
    snmp_set(pdu, f"{base}.{outlet}", ON if on else OFF, timeout)


def power_get(pdu: ApcSnmpPdu, outlet: int, timeout: float) -> bool:
    if pdu.model == "ap89xx":
        value = snmp_get(pdu, f"{RPDU_OUTLET_STATE}.{outlet}", timeout)
        if value not in (ON, OFF):
            raise PowerBackendError(f"rPDUOutletStatusOutletState.{outlet} reads {value}, "
                                    f"not outletStatusOn(1)/outletStatusOff(2)")
        return value == ON
    value = snmp_get(pdu, f"{OUTLET_CTL}.{outlet}", timeout)
    if value not in (ON, OFF):
        raise PowerBackendError(f"sPDUOutletCtl.{outlet} reads {value} "
                                f"({_STATES.get(value, 'not in PowerNet-MIB')}), not on/off")
    return value == ON
