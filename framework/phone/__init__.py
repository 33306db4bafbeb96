"""The AudioCodes 400HD phone driver (power, boot evidence, console shell, web, SIP).

See framework.phone.driver for the usage (the 400HD's operations); framework.phone.shell
holds the console, login, boot evidence and broken latch they stand on; the shell
differences between firmware families are data in framework.phone.dialect; the web
interface client is framework.phone.web, SIP NOTIFY check-sync framework.phone.sip.

Imports (layer 8 of pyproject.toml's contracts): console, power and the layers below
them (services, dhcp, rig, resolution, records, errors, netns); never sim, bench, report,
runner or anything above: the runner adapts the driver (framework.runner.phones).
"""

from framework.phone.dialect import DIALECTS, ShellDialect, dialect_for
from framework.phone.driver import Phone400HD, PhoneRelease, TriggerEvidence, model_matches
from framework.phone.errors import IdentityMismatch, PhoneBroken, PhoneError
from framework.phone.shell import BootEvidence, ConsoleFactory, DhcpEvents
from framework.phone.sip import NotifyEvidence, send_check_sync
from framework.phone.web import PhoneWeb, WebAnswer

__all__ = [
    "DIALECTS",
    "BootEvidence",
    "ConsoleFactory",
    "DhcpEvents",
    "IdentityMismatch",
    "NotifyEvidence",
    "Phone400HD",
    "PhoneBroken",
    "PhoneError",
    "PhoneRelease",
    "PhoneWeb",
    "ShellDialect",
    "TriggerEvidence",
    "WebAnswer",
    "dialect_for",
    "model_matches",
    "send_check_sync",
]
