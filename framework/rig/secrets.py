"""Secret references in rig files: ``{env: NAME}``, resolved only when a driver needs the value.

Rig files are committed and attached to reports, so they hold references, never values
(docs/CONTRACTS.md, "Secrets"). A reference resolves from the environment, else from the
secrets file named by ``HIL_SECRETS_FILE`` (default ``/run/hil/secrets.env``, KEY=VALUE
lines). Neither ``repr`` nor ``str`` of a reference ever shows the value: the value is
not even stored on the object.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from framework.errors import InputError

DEFAULT_SECRETS_FILE = "/run/hil/secrets.env"
SECRETS_FILE_VARIABLE = "HIL_SECRETS_FILE"

log = logging.getLogger(__name__)


class SecretError(InputError, LookupError):
    """A secret reference could not be resolved; the message names the reference, never a value."""


def secrets_file() -> Path:
    """The secrets file in effect: ``$HIL_SECRETS_FILE`` or ``/run/hil/secrets.env``."""
    return Path(os.environ.get(SECRETS_FILE_VARIABLE) or DEFAULT_SECRETS_FILE)


def read_secrets_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines (blank lines and ``#`` comments ignored; optional quotes stripped).

    A line that is not KEY=VALUE is reported by line number only, never by content, since
    it may hold a value.
    """
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except FileNotFoundError:
        return values
    except OSError as exc:
        raise SecretError(f"cannot read secrets file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secrets file %s is readable by group or others (mode %o); use 0600",
                    path, stat.S_IMODE(mode))
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not key:
            raise SecretError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


class SecretRef(BaseModel):
    """A reference to a secret (``{env: NAME}``); ``.resolve()`` returns the value.

    Written in a rig file as ``password: {env: HIL_SIM_PHONE_PASSWORD}``. An inline string
    is rejected at load time so that no value ever lands in a committed file.
    """

    model_config = ConfigDict(frozen=True, extra="forbid",
                              json_schema_extra={"description": "secret reference: {env: NAME}"})

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                     description="environment variable (or secrets-file key) holding the value")

    @model_validator(mode="before")
    @classmethod
    def _reject_inline(cls, data: Any) -> Any:
        if isinstance(data, str | int | float | bytes):
            raise PydanticCustomError("inline_secret", "{reason}", {"reason": (
                "an inline secret is not allowed: write {env: NAME} and put the value in "
                "the environment or the secrets file")})
        return data

    def resolve(self) -> str:
        """The secret's value: from the environment, else from the secrets file."""
        if self.env in os.environ:
            return os.environ[self.env]
        path = secrets_file()
        values = read_secrets_file(path)
        if self.env in values:
            return values[self.env]
        raise SecretError(
            f"secret {self.env} is not set: not in the environment and not in {path} "
            f"(the secrets file is named by {SECRETS_FILE_VARIABLE})")

    def __repr__(self) -> str:
        return f"SecretRef(env={self.env!r})"

    def __str__(self) -> str:
        return f"{{env: {self.env}}}"
