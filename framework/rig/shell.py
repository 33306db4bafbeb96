"""How a phone's shell looks, as a rig file may say it (per phone, or per firmware family).

Every field is optional: unset, the firmware family's dialect (framework.phone.dialect)
applies. A real bench writes what its phones print, e.g. for a C450HD on UC 3.4::

    shell:
      prompt: '\\[{user}@[^\\] ]+ [^\\]]*\\]# '      # {user}: the login name (credentials)
      login_prompt: '\\S+ login: '
      release_fields: {model: HW_TYPE, version: SWVERSION}
      mac_commands: ['cat /sys/class/net/eth0/address', 'ip link show eth0']
      provisioning_done: 'Provisioning done'   # optional console hint; off by default

A rig's top-level ``shell:`` maps a firmware family (``"3.4"``) to such a section; a
phone's own ``shell:`` overrides it field by field.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

__all__ = ["ReleaseFields", "ShellSpec"]

_FIELD = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _fail(reason: str) -> Any:
    raise PydanticCustomError("rig", "{reason}", {"reason": reason})


class ReleaseFields(BaseModel):
    """The ``/etc/release`` keys that name the model and the firmware version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "HW_TYPE"
    version: str = "SWVERSION"

    @field_validator("model", "version")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _FIELD.match(value):
            _fail(f"expected an /etc/release key like HW_TYPE (upper case, digits, _; got "
                  f"{value!r})")
        return value


class ShellSpec(BaseModel):
    """The shell dialect fields a rig may set; None: the firmware family's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = Field(default=None, description="regex of the shell prompt; {user} is the "
                               "login name (e.g. '\\[{user}@[^\\] ]+ [^\\]]*\\][$#] ')")
    login_prompt: str | None = Field(default=None, description="regex of the login prompt")
    release_fields: ReleaseFields | None = None
    mac_commands: list[str] | None = Field(
        default=None, min_length=1, description="commands tried in turn to read the MAC of the "
        "phone's interface (the first that prints one wins)")
    provisioning_done: str | None = Field(
        default=None, description="regex of a console line the firmware prints when a "
        "provisioning cycle is over: an optional hint that ends the wait for requests early "
        "(unset: the end of a cycle is judged from the wire alone)")

    @field_validator("prompt", "login_prompt", "provisioning_done")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value.replace("{user}", "admin"))
            except re.error as exc:
                _fail(f"not a regular expression: {exc} (got {value!r})")
        return value

    def under(self, own: ShellSpec | None) -> ShellSpec:
        """``own``'s fields where set, else this (family) section's."""
        if own is None:
            return self
        return self.model_copy(update={k: getattr(own, k)
                                       for k in own.model_dump(exclude_none=True)})
