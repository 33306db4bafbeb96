"""What a virtual firmware tells the phone to do in one provisioning cycle, in time order.

A firmware class (framework.sim.firmware) turns the DHCP options it received into a
``ProvisioningPlan``: the source the URLs came from (a ``Source``, not free text) and a
sequence of typed events the phone (framework.sim.phone) carries out one after the other:

* ``PlannedRequest`` (alias ``Request``): fetch one URL (firmware, configuration, redirect
  server, SIP PnP SUBSCRIBE);
* ``Wait``: a delay, fixed or uniformly random in ``[0, seconds]`` (the phone's
  ``provisioning/random_provisioning_time`` after DHCP, a retry timer); interrupted at
  once by power loss or a reboot;
* ``Retry``: one request made once more after a delay (the phone's
  ``sim.phones.<name>.late_request_s`` unless the firmware gives one), inside the cycle;
* ``RestartAfterConfiguration``: if this cycle applied a configuration file, the phone
  prints ``Restarting system.``, boots and provisions again; that second cycle does not
  restart (Admin Manual: after a configuration change "the phone might reboot").

Every delay a firmware gives is multiplied by the rig's ``sim.time_scale``, so a benchmark
can run a real phone's timings (boot 60 s, random delay up to 120 s) scaled down. Events
keep the URL choice apart from timing: ``plan.requests`` is what a planner that ignores
time sees (explore's offline oracle, the e2e references). Like the firmware, this module
never imports ``framework.resolution``. Example, a firmware that waits, asks, and asks again::

    ProvisioningPlan(Source.URL_OPTION, (
        Wait(30, "random provisioning time", random=True),
        cfg := PlannedRequest("configuration", "http", "192.0.2.1", "/a.cfg"),
        Retry(cfg, after_s=5, why="retry timer"),
        RestartAfterConfiguration()), url_option=160)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Literal

Purpose = Literal["firmware", "configuration", "redirect", "sip-pnp"]
DEFAULT_PORTS = {"tftp": 69, "http": 80, "https": 443, "ftp": 21, "sip": 5060}


class Source(enum.Enum):
    """Where a cycle's URLs came from (Admin Manual 2.2.8, 10.2.2-10.2.3 precedence)."""

    #: Option 160, or the option ``provisioning/url_option_value`` names (Table 10-1)
    URL_OPTION = "url-option"
    #: Option 66 server with Option 67 names (Table 10-2)
    OPTION_66_67 = "option-66-67"
    #: Option 43, a plain URL or a vendor sub-option (10.2.3)
    OPTION_43 = "option-43"
    #: ``provisioning/method = static``: the configured firmware and configuration URLs
    STATIC_URL = "static-url"
    #: no DHCP provisioning source: SIP PnP SUBSCRIBE, then the redirect server
    SIP_PNP_AND_REDIRECT = "sip-pnp-and-redirect"
    #: ``provisioning/method = disable``: no request at all
    DISABLED = "disabled"

    def describe(self, url_option: int = 160) -> str:
        """The words the console prints after ``Provisioning: ``."""
        if self is Source.URL_OPTION:
            return f"option {url_option}"
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Source.OPTION_66_67: "option 66/67",
    Source.OPTION_43: "option 43",
    Source.STATIC_URL: "static URLs",
    Source.SIP_PNP_AND_REDIRECT: "no provisioning option",
    Source.DISABLED: "provisioning disabled",
}


@dataclass(frozen=True)
class PlannedRequest:
    """One request the phone will make: what for, and the URL it built (parts kept apart)."""

    purpose: Purpose
    scheme: str
    host: str
    path: str = ""
    port: int | None = None
    userinfo: str = ""
    #: made once more, late in the cycle (set on ``plan.requests`` for a ``Retry``)
    late: bool = False

    @property
    def url(self) -> str:
        auth = f"{self.userinfo}@" if self.userinfo else ""
        port = f":{self.port}" if self.port is not None else ""
        sep = "" if self.scheme == "sip" else "//"
        return f"{self.scheme}:{sep}{auth}{self.host}{port}{self.path}"

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.scheme]


#: The event that makes a request (the name a user's firmware reads best).
Request = PlannedRequest


@dataclass(frozen=True)
class Wait:
    """A pause in the cycle: ``seconds``, or uniformly random in ``[0, seconds]``
    (drawn by the phone at each cycle) when ``random``; times ``sim.time_scale``."""

    seconds: float
    why: str
    random: bool = False

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError(f"Wait({self.seconds!r}): seconds must be >= 0")


@dataclass(frozen=True)
class Retry:
    """``request`` once more, ``after_s`` seconds (times ``sim.time_scale``) after the
    events before it; ``None``: the phone's ``sim.phones.<name>.late_request_s``."""

    request: PlannedRequest
    after_s: float | None = None
    why: str = "late request"

    def __post_init__(self) -> None:
        if self.after_s is not None and not self.after_s >= 0:
            raise ValueError(f"Retry(after_s={self.after_s!r}): must be >= 0")


@dataclass(frozen=True)
class RestartAfterConfiguration:
    """If this cycle applied a configuration file: restart, then a second cycle (once)."""


Event = PlannedRequest | Wait | Retry | RestartAfterConfiguration


@dataclass(frozen=True)
class ProvisioningPlan:
    """One cycle: where its URLs came from, and the events in the order the phone runs them."""

    source: Source
    events: tuple[Event, ...] = field(default_factory=tuple)
    #: the DHCP option read as the URL option (for ``Source.URL_OPTION``'s console text)
    url_option: int = 160
    #: said after the source on the console, e.g. "without a usable URL (no fall-through)"
    note: str = ""

    @property
    def requests(self) -> tuple[PlannedRequest, ...]:
        """Every request in order, a ``Retry``'s marked ``late``: what a planner that
        ignores time (explore's offline oracle) sees of the cycle."""
        return tuple(replace(e.request, late=True) if isinstance(e, Retry) else e
                     for e in self.events if isinstance(e, PlannedRequest | Retry))

    @property
    def restart_after_configuration(self) -> bool:
        return any(isinstance(e, RestartAfterConfiguration) for e in self.events)

    @property
    def waits(self) -> tuple[Wait, ...]:
        return tuple(e for e in self.events if isinstance(e, Wait))

    @property
    def summary(self) -> str:
        """The console's ``Provisioning: <summary>`` (today's readable words)."""
        text = self.source.describe(self.url_option)
        return f"{text} {self.note}" if self.note else text


__all__ = ["DEFAULT_PORTS", "Event", "PlannedRequest", "ProvisioningPlan", "Purpose",
           "Request", "RestartAfterConfiguration", "Retry", "Source", "Wait"]
