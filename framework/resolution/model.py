"""Inputs and outputs of the resolution core: plain, immutable values (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from framework.errors import InputError

#: The options the phone received: DHCP option code -> raw value. A code that is not in
#: the mapping is absent; ``b""`` is present but empty.
OptionSet = Mapping[int, bytes]

KNOWN_MODELS = ("405HD", "420HD", "430HD", "440HD", "445HD", "450HD")
_MODEL_RE = re.compile(r"^C?4[0-9]{2}HD[A-Z0-9-]*$")
_MAC_RE = re.compile(r"^[0-9A-Fa-f]{12}$")


class ResolutionInputError(InputError):
    """An input to the core is not acceptable; the message names the input and why."""


class ProvisioningMethod(StrEnum):
    """``provisioning/method`` on the phone (Admin Manual 10.2)."""

    DYNAMIC = "dynamic"
    STATIC = "static"
    DISABLE = "disable"


class Promise(StrEnum):
    """How firmly the manual (as read by a behaviour profile) fixes an outcome.

    ``promised``: a manual sentence fixes it, so a difference is a firmware failure.
    ``pending``: the manual lists it as "[Support pending]" for that release.
    ``unspecified``: no manual sentence fixes it; the expectation comes from a named switch.
    Only ``promised`` outcomes give verdicts; the others are recorded as observations.
    """

    PROMISED = "promised"
    PENDING = "pending"
    UNSPECIFIED = "unspecified"

    @staticmethod
    def weakest(*promises: Promise) -> Promise:
        order = [Promise.PROMISED, Promise.UNSPECIFIED, Promise.PENDING]
        return max(promises, key=order.index, default=Promise.PROMISED)


def normalise_mac(mac: str) -> str:
    """``00:90:8f:00:00:01`` / ``00-90-8F-00-00-01`` / ``00908f000001`` -> ``00908F000001``."""
    compact = mac.strip().replace(":", "").replace("-", "").replace(".", "")
    if not _MAC_RE.match(compact):
        raise ResolutionInputError(f"MAC {mac!r}: expected 12 hex digits (separators : - . allowed)")
    return compact.upper()


@dataclass(frozen=True)
class PhoneIdentity:
    """The phone as the firmware names itself: model (``<hardware type>``) and MAC."""

    model: str
    mac: str

    def __post_init__(self) -> None:
        if not _MODEL_RE.match(self.model):
            raise ResolutionInputError(
                f"model {self.model!r}: expected a 400HD series model such as "
                f"{', '.join(KNOWN_MODELS)} (or C4xxHD)"
            )
        object.__setattr__(self, "mac", normalise_mac(self.mac))


@dataclass(frozen=True)
class PhoneSettings:
    """Phone settings that change how DHCP options are read (Admin Manual 10.2).

    ``url_option`` is ``provisioning/url_option_value``: the option number the phone reads
    instead of 160 (default 160).
    """

    method: ProvisioningMethod = ProvisioningMethod.DYNAMIC
    url_option: int = 160
    static_firmware_url: str | None = None
    static_config_url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.url_option, int) or not 1 <= self.url_option <= 254:
            raise ResolutionInputError(
                f"url_option {self.url_option!r}: expected an option number from 1 to 254"
            )
        if self.url_option in (43, 66, 67):
            raise ResolutionInputError(
                f"url_option {self.url_option}: 43, 66 and 67 have their own meaning and "
                "cannot be the URL option"
            )
        object.__setattr__(self, "method", ProvisioningMethod(self.method))


@dataclass(frozen=True)
class ExpectedRequest:
    """One file the phone must request, in order."""

    purpose: str  # "firmware" | "configuration"
    url: str


@dataclass(frozen=True)
class SourceOutcome:
    """What one provisioning source (URL option, 66/67, 43) yields on its own."""

    source: str
    present: bool
    rule: str
    promise: Promise
    note: str
    firmware_url: str | None = None
    config_url: str | None = None

    @property
    def yields_url(self) -> bool:
        return self.firmware_url is not None or self.config_url is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "present": self.present,
            "rule": self.rule,
            "promise": self.promise.value,
            "note": self.note,
            "firmware_url": self.firmware_url,
            "config_url": self.config_url,
        }


@dataclass(frozen=True)
class ExpectedProvisioning:
    """What the phone must request for one set of DHCP options, and why.

    ``source`` is the winning source (the URL option number as a string, ``"66/67"``,
    ``"43"``) or None; ``rule`` is a stable id of the table row or syntax form that
    matched; ``promise`` says whether the profile's manual fixes this outcome.
    """

    source: str | None
    firmware_url: str | None
    config_url: str | None
    rule: str
    promise: Promise
    explanation: str
    profile: str
    considered: tuple[SourceOutcome, ...] = ()
    switches: tuple[tuple[str, Any], ...] = field(default=())
    #: Each rule on the path that is not promised, with the switch or '[Support pending]'
    #: mark that made it so (empty when promised): what an observed case's reason names.
    unpromised_by: tuple[str, ...] = ()

    @property
    def promised(self) -> bool:
        return self.promise is Promise.PROMISED

    @property
    def requests(self) -> tuple[ExpectedRequest, ...]:
        """The ordered requests: firmware first, then configuration (Admin Manual 10.1)."""
        out = []
        if self.firmware_url is not None:
            out.append(ExpectedRequest("firmware", self.firmware_url))
        if self.config_url is not None:
            out.append(ExpectedRequest("configuration", self.config_url))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "firmware_url": self.firmware_url,
            "config_url": self.config_url,
            "rule": self.rule,
            "promise": self.promise.value,
            "explanation": self.explanation,
            "profile": self.profile,
            "considered": [c.to_dict() for c in self.considered],
            "switches": dict(self.switches),
            "unpromised_by": list(self.unpromised_by),
        }
