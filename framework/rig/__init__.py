"""The rig file: schema (framework.rig.model), loader with clear errors, `hil rig` commands.

Usage::

    from framework.rig import load_rig
    rig = load_rig("rigs/sim.yaml")
    phone = rig.phone("ph1")            # PhoneSpec: model, mac (12 upper hex), address, ...
    password = phone.credentials.password.resolve()   # only where a driver needs it

Imports (layer 11 of pyproject.toml's contracts): framework.resolution and the bottom
modules (records, errors, netns) only. Checking a bench is framework.bench, above the
drivers; framework/cli.py mounts it as ``hil rig check``.
"""

from framework.rig.loader import RigError, RigProblem, cross_check, key_path, load_rig, parse_rig
from framework.rig.model import (
    PDU_DRIVERS,
    AnyPdu,
    ApcSnmpPdu,
    CommandPdu,
    ConsoleSpec,
    Credentials,
    Lab,
    PdudaemonPdu,
    PhoneSpec,
    PoeSnmpPdu,
    Pool,
    PowerRef,
    Rig,
    SerialConsoleSpec,
    SshConsoleSpec,
    firmware_family,
)
from framework.rig.secrets import SecretError, SecretRef

__all__ = [
    "PDU_DRIVERS",
    "AnyPdu",
    "ApcSnmpPdu",
    "CommandPdu",
    "ConsoleSpec",
    "Credentials",
    "Lab",
    "PdudaemonPdu",
    "PhoneSpec",
    "PoeSnmpPdu",
    "Pool",
    "PowerRef",
    "Rig",
    "RigError",
    "RigProblem",
    "SecretError",
    "SecretRef",
    "SerialConsoleSpec",
    "SshConsoleSpec",
    "cross_check",
    "firmware_family",
    "key_path",
    "load_rig",
    "parse_rig",
]
