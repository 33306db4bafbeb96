"""APC Switched Rack PDU over SNMP (PowerNet-MIB).

``sPDUOutletCtl`` (1.3.6.1.4.1.318.1.1.4.4.2.1.3.N): SET 1 outletOn, 2 outletOff,
3 outletReboot; a GET reads 1 on / 2 off (the same OID labgrid's ``apc`` backend uses).
"""

from __future__ import annotations

from framework.power.outlet import PowerBackendError
from framework.power.snmp import snmp_get, snmp_set
from framework.rig.model import ApcSnmpPdu

OUTLET_CTL = "1.3.6.1.4.1.318.1.1.4.4.2.1.3"
ON, OFF = 1, 2
_STATES = {1: "outletOn", 2: "outletOff", 3: "outletReboot", 4: "outletUnknown",
           5: "outletOnWithDelay", 6: "outletOffWithDelay", 7: "outletRebootWithDelay"}


def power_set(pdu: ApcSnmpPdu, outlet: int, on: bool, timeout: float) -> None:
    snmp_set(pdu, f"{OUTLET_CTL}.{outlet}", ON if on else OFF, timeout)


def power_get(pdu: ApcSnmpPdu, outlet: int, timeout: float) -> bool:
    value = snmp_get(pdu, f"{OUTLET_CTL}.{outlet}", timeout)
    if value not in (ON, OFF):
        raise PowerBackendError(f"sPDUOutletCtl.{outlet} reads {value} "
                                f"({_STATES.get(value, 'not in PowerNet-MIB')}), not on/off")
    return value == ON
