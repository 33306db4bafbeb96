"""The AudioCodes 400HD phone driver (power, boot evidence, console shell, settings).

See framework.phone.driver for the usage; the shell differences between firmware
families are data in framework.phone.dialect.
"""

from framework.phone.dialect import DIALECTS, ShellDialect, dialect_for
from framework.phone.driver import (
    BootEvidence,
    ConsoleFactory,
    DhcpEvents,
    IdentityMismatch,
    Phone400HD,
    PhoneBroken,
    PhoneError,
    PhoneRelease,
    ProvisionEvidence,
    SettingError,
    model_matches,
)

__all__ = [
    "DIALECTS",
    "BootEvidence",
    "ConsoleFactory",
    "DhcpEvents",
    "IdentityMismatch",
    "Phone400HD",
    "PhoneBroken",
    "PhoneError",
    "PhoneRelease",
    "ProvisionEvidence",
    "SettingError",
    "ShellDialect",
    "dialect_for",
    "model_matches",
]
