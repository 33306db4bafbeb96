"""A PoE switch port as a power outlet, through POWER-ETHERNET-MIB (RFC 3621).

``pethPsePortAdminEnable`` (1.3.6.1.2.1.105.1.1.1.3.<group>.<port>) is a TruthValue:
true(1) lets the port deliver power, false(2) cuts it. Outlet N is port N of the rig's
``group`` (pethPsePortGroupIndex, the module or stack unit). The state read back is the
administrative one: whether a phone actually draws power is pethPsePortDetectionStatus.
"""

from __future__ import annotations

from framework.power.outlet import PowerBackendError
from framework.power.snmp import snmp_get, snmp_set
from framework.rig.model import PoeSnmpPdu

ADMIN_ENABLE = "1.3.6.1.2.1.105.1.1.1.3"
TRUE, FALSE = 1, 2


def power_set(pdu: PoeSnmpPdu, outlet: int, on: bool, timeout: float) -> None:
    snmp_set(pdu, f"{ADMIN_ENABLE}.{pdu.group}.{outlet}", TRUE if on else FALSE, timeout)


def power_get(pdu: PoeSnmpPdu, outlet: int, timeout: float) -> bool:
    value = snmp_get(pdu, f"{ADMIN_ENABLE}.{pdu.group}.{outlet}", timeout)
    if value not in (TRUE, FALSE):
        raise PowerBackendError(f"pethPsePortAdminEnable.{pdu.group}.{outlet} reads {value}, "
                                f"not a TruthValue", retryable=False)
    return value == TRUE
