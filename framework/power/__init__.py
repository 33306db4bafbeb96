"""Power switching of phones through PDUs: one small protocol, many small backends.

``PowerSwitch`` is what the phone driver sees: one outlet that can be switched on, off,
cycled and read. Backends are short modules picked by the rig's ``driver`` name from a
registry (STYLE.md, after labgrid's power backends): each exposes

    power_set(pdu, outlet, on, timeout) -> None
    power_get(pdu, outlet, timeout) -> bool | None      # None: this PDU cannot tell

and raises ``PowerBackendError`` (or OSError/TimeoutError) for one failed attempt.
``OutletSwitch`` adds what every backend needs: a lock per PDU (commands to one PDU
are serialised), explicit timeouts and retries, and a ``PowerError`` that names the PDU,
outlet, operation and attempts. All I/O happens in the calling thread, so in the calling
thread's network namespace (framework.netns).

Usage::

    switch = power_switch(rig.pdu("pdu1"), outlet=3)
    switch.cycle(off_time=2.0)
    assert switch.state() is True

Imports (layer 9 of pyproject.toml's contracts): the layers below it (services, dhcp,
rig, resolution, records, errors, netns); never framework.console, its independent
sibling, nor anything above (phone, bench, runner...).
"""

from framework.power.outlet import (
    BACKENDS,
    OutletSwitch,
    PowerBackend,
    PowerBackendError,
    PowerError,
    PowerStateUnreadable,
    PowerSwitch,
    power_switch,
)

__all__ = [
    "BACKENDS",
    "OutletSwitch",
    "PowerBackend",
    "PowerBackendError",
    "PowerError",
    "PowerStateUnreadable",
    "PowerSwitch",
    "power_switch",
]
