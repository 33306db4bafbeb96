"""The resolution core: which URLs a 400HD must request for given DHCP options.

Pure Python, no I/O, no imports from the rest of the project but framework.errors. Entry
point: :func:`resolve`.

Imports (layer 12 of pyproject.toml's contracts): only the bottom modules, in practice
framework.errors (``ResolutionInputError`` is an ``InputError``). framework.sim must never
import it (the virtual firmware is written independently of this core).
"""

from framework.resolution.core import resolve, urls_match
from framework.resolution.equivalence import forgiven, urls_equivalent
from framework.resolution.grounds import (
    GROUND_KINDS,
    GROUNDS,
    Assertion,
    Ground,
    assertions,
    identification_assertions,
    judged_kinds,
    late_assertion,
)
from framework.resolution.model import (
    ExpectedProvisioning,
    ExpectedRequest,
    OptionSet,
    PhoneIdentity,
    PhoneSettings,
    Promise,
    ProvisioningMethod,
    ResolutionInputError,
    SourceOutcome,
    normalise_mac,
)
from framework.resolution.profiles import (
    PROFILES,
    RULES,
    Interpretation,
    Profile,
    Rule,
    get_profile,
    parse_switch,
    profile_for_version,
)

__all__ = [
    "GROUNDS",
    "GROUND_KINDS",
    "PROFILES",
    "RULES",
    "Assertion",
    "ExpectedProvisioning",
    "ExpectedRequest",
    "Ground",
    "Interpretation",
    "OptionSet",
    "PhoneIdentity",
    "PhoneSettings",
    "Profile",
    "Promise",
    "ProvisioningMethod",
    "ResolutionInputError",
    "Rule",
    "SourceOutcome",
    "assertions",
    "forgiven",
    "get_profile",
    "identification_assertions",
    "judged_kinds",
    "late_assertion",
    "normalise_mac",
    "parse_switch",
    "profile_for_version",
    "resolve",
    "urls_equivalent",
    "urls_match",
]
