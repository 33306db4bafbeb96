"""The real phone's own interfaces and the bench's timings, as a rig file says them.

A 400HD is driven only through what it has (design/REAL-PHONE.md, "Control paths"): its
PDU outlet, its Linux shell (serial, SSH, or telnet once ``management/telnet/enabled=1``),
its web interface (``/login.cgi``, ``/mainform.cgi/reboot.htm``), SIP NOTIFY
``check-sync`` on UDP 5060, and the configuration files it fetches. Per phone::

    console:
      telnet: {port: 23}                 # host: the phone's address unless given
    web: {scheme: http}                  # port 80/443; credentials: the shell's
    sip: {port: 5060}

and per bench (``bench:``), how a case starts and how long a real phone takes::

    bench:
      trigger: check-sync                # check-sync | web-reboot | shell-reboot | power-cycle
      timings:
        boot_timeout_s: 240              # power-on to DHCP DISCOVER and login prompt
        request_timeout_s: 60            # ACK to the last expected request
        settle_s: 10                     # quiet time after it, for stray requests
        random_provisioning_time: 0      # served to the phones in the lab's cfg file

Unset timings take the run's defaults (framework.runner.options), which allow a real
phone's ~60 s boot plus its random provisioning delay on a non-sim rig.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from framework.rig.secrets import SecretRef

__all__ = ["TRIGGERS", "BenchSpec", "SipSpec", "TelnetConsoleSpec", "Timings", "Trigger",
           "WebSpec"]

#: How a case starts the phone's provisioning: SIP NOTIFY check-sync (no reboot), a reboot from
#: its web interface or its shell, or a cold boot through the PDU.
Trigger = Literal["check-sync", "web-reboot", "shell-reboot", "power-cycle"]
TRIGGERS: tuple[str, ...] = ("check-sync", "web-reboot", "shell-reboot", "power-cycle")

_Port = Annotated[int, Field(ge=1, le=65535)]
_Seconds = Annotated[float, Field(gt=0, le=86400)]


def _fail(reason: str) -> None:
    raise PydanticCustomError("rig", "{reason}", {"reason": reason})


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TelnetConsoleSpec(_Record):
    """The phone's telnet shell (the phone serves it once ``management/telnet/enabled=1``);
    ``host`` defaults to the phone's address."""

    host: str | None = Field(default=None, min_length=1)
    port: _Port = 23


class WebSpec(_Record):
    """The phone's web interface: login, reboot, factory defaults. ``username`` and
    ``password`` default to the phone's shell credentials (both or neither)."""

    scheme: Literal["http", "https"] = "http"
    port: _Port | None = None
    #: a phone's certificate is self-signed unless the lab installed one
    verify_tls: bool = False
    username: str | None = Field(default=None, min_length=1)
    password: SecretRef | None = None

    @model_validator(mode="after")
    def _both(self) -> WebSpec:
        if (self.username is None) != (self.password is None):
            _fail("web: give both username and password, or neither (then the phone's "
                  "credentials apply)")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (443 if self.scheme == "https" else 80)


class SipSpec(_Record):
    """Where the phone's SIP user agent listens for NOTIFY check-sync (UDP)."""

    port: _Port = 5060


class Timings(_Record):
    """How long a real phone takes; unset: the run's defaults (or its flags)."""

    boot_timeout_s: _Seconds | None = None
    request_timeout_s: _Seconds | None = None
    settle_s: Annotated[float, Field(ge=0, le=3600)] | None = None
    #: ``provisioning/random_provisioning_time`` served to every phone in the lab's cfg
    #: file when its lane starts (0-65535 s; a real phone's default is 120). None: the
    #: lab leaves the phone's own value, and the request timeout must allow for it.
    random_provisioning_time: Annotated[int, Field(ge=0, le=65535)] | None = None


class BenchSpec(_Record):
    """How this bench's cases start, and its phones' timings."""

    trigger: Trigger | None = None
    timings: Timings = Field(default_factory=Timings)
