"""What a run is asked to do, declared once: :class:`RunOptions`.

Each field of :class:`RunOptions` carries its type and default and, when a person sets it on
the command line, a :class:`Flag` (flag name and help text) in its ``Annotated`` metadata.
Everything else is derived from that one declaration, so a new option (or a changed help
text or default) is one edit here:

- ``hil run`` (framework.run) generates its typer options from :func:`run_flags`;
- the pytest plugin (framework.pytest_plugin) generates its ``pytest_addoption`` calls from
  :func:`run_flags` and turns pytest's parsed values into options with
  :meth:`RunOptions.from_flags`, as ``hil run`` does with its own;
- benchmarks and tests build ``RunOptions(...)`` directly (fields without a flag, such as
  ``boot_timeout_s`` or ``capture``, are for them).

Flags about how one process behaves rather than what the run does stay with their command:
``-k`` and ``--hold-place``/``--hold-owner`` with ``hil run``, ``--hil-progress`` with the
plugin.

Runner layer: imports only framework.errors (and the rig's types), so both entry points
above and the runner itself can import it.
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from framework import resources
from framework.errors import InputError
from framework.resolution import ResolutionInputError, get_profile, parse_switch
from framework.rig.interfaces import Trigger

if TYPE_CHECKING:
    from framework.rig import Rig

ROOT = Path(__file__).resolve().parents[2]



@dataclass(frozen=True)
class Flag:
    """A field's command-line flag: its name (``--rig``) and its help text.

    ``inverted``: the flag, when given, sets the field to False (``--no-manage-sim``).
    ``metavar``: the value's name in pytest's help (default: the flag's own name).
    ``split``: a list field given as one comma-separated value (``--phones a,b``); a list
    field without it is a repeatable flag (``--firmware A --firmware B``).
    ``envvar``: the environment variable that gives the value when the flag is not given
    (``HIL_RIG`` for ``--rig``, as every `hil` command taking ``--rig`` honours it).
    """

    name: str
    help: str
    inverted: bool = False
    metavar: str | None = None
    split: bool = False
    envvar: str | None = None


class OptionError(InputError):
    """A run option has a value the run cannot use; names the flag (``--phones``...) so
    ``hil run`` reports it as a bad parameter and pytest as a usage error."""

    def __init__(self, flag: str, reason: str) -> None:
        super().__init__(f"{flag}: {reason}")
        self.flag = flag
        self.reason = reason


class RunOptions(BaseModel):
    """What a run is asked to do. Fields with a :class:`Flag` are ``hil run``'s and
    ``pytest testcases``'s options; the others are for code that builds a run itself."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    rig_path: Annotated[Path, Flag(
        "--rig", "rig file (default: $HIL_RIG, else rigs/sim.yaml, the simulated rig)",
        envvar="HIL_RIG")
    ] = resources.default_rig()
    profile: Annotated[str | None, Flag(
        "--profile", "firmware behaviour profile (2.2, 3.4); default: from each phone's "
        "version")] = None
    switches: Annotated[Sequence[str], Flag(
        "--switch", "NAME=VALUE: override one interpretation switch of every phone's profile "
        "(repeatable), e.g. url_compare=byte-exact; `hil resolve --help` and docs/GROUNDS.md "
        "name them", metavar="NAME=VALUE")] = ()
    phones: Annotated[Sequence[str] | None, Flag(
        "--phones", "comma-separated subset of the rig's phones (default: all)", split=True)
    ] = None
    settle_s: Annotated[float | None, Flag(
        "--settle", "seconds to keep listening after the last request (default: 0.6 sim, "
        "3 real)")] = None
    trigger: Annotated[Trigger | None, Flag(
        "--trigger", "how a case starts: check-sync (SIP NOTIFY, no reboot), web-reboot "
        "(the phone's web interface), shell-reboot (`reboot` in its shell) or power-cycle "
        "(its PDU outlet); default: the rig's bench.trigger, else check-sync")] = None
    #: A release to install on every phone before the cases (framework.release.install).
    firmware: Annotated[Sequence[Path], Flag(
        "--firmware", "install this release first: a directory of images or image files "
        "(repeatable)", metavar="PATH")] = ()
    restore: Annotated[bool, Flag(
        "--restore", "first put back what each phone ran before the last --firmware")
    ] = False
    reports_dir: Annotated[Path, Flag(
        "--reports", "where runs write their records, one directory per run (default: "
        "reports/)")] = resources.default_reports()
    run_id: Annotated[str | None, Flag(
        "--run-id", "run directory name under --reports (default: <UTC time>-<rig>)")
    ] = None
    #: An earlier run's directory: its finished cases are kept, only the missing ones run.
    resume: Annotated[Path | None, Flag(
        "--resume", "an earlier run directory (reports/<run-id>): keep its finished cases, "
        "run only the missing ones")] = None
    #: Start even when another DHCP server answers on the lab interface.
    allow_other_dhcp: Annotated[bool, Flag(
        "--allow-other-dhcp", "start even if another DHCP server answers on the lab "
        "interface")] = False
    #: Sign the run's MANIFEST.json with this Ed25519 key (a reference, never copied).
    sign: Annotated[Path | None, Flag(
        "--sign", "sign the run's MANIFEST.json with this Ed25519 private key: a PEM file "
        "or env:NAME (never copied into the run)", metavar="KEY")] = None
    manage_sim: Annotated[bool, Flag(
        "--no-manage-sim", "the simulated rig is already up: neither start nor stop it",
        inverted=True)] = True
    boot_timeout_s: Annotated[float | None, Flag(
        "--boot-timeout", "seconds from a trigger to the phone's DHCP lease and login "
        "prompt (default: the rig's bench.timings, else 90 sim, 240 real)")] = None
    request_timeout_s: Annotated[float | None, Flag(
        "--request-timeout", "seconds from the lease to a missing expected request "
        "(default: the rig's bench.timings, else 4 sim; real: 30 plus the phone's random "
        "provisioning time)")] = None
    random_provisioning_time: Annotated[int | None, Field(ge=0, le=65535), Flag(
        "--random-provisioning-time", "serve every phone this "
        "provisioning/random_provisioning_time (0-65535 s) in its configuration file before "
        "its cases (default: the rig's bench.timings; unset: the phone keeps its own, a real "
        "phone's is 120)")] = None
    #: After a lane's last case, how long to listen for its late requests when the phone
    #: has not said its cycle is over (default: the request timeout).
    tail_s: float | None = None
    capture: bool = True

    @field_validator("switches")
    @classmethod
    def _check_switches(cls, value: Sequence[str]) -> Sequence[str]:
        """Each ``NAME=VALUE`` names a known switch with an allowed value (checked on the
        2.2 profile: both profiles have the same switches)."""
        try:
            get_profile("2.2").with_switches(**dict(parse_switch(s) for s in value))
        except ResolutionInputError as exc:
            raise ValueError(str(exc)) from None
        return tuple(value)

    def switch_values(self) -> dict[str, object]:
        """The ``--switch`` overrides as a profile takes them (name -> value)."""
        return dict(parse_switch(s) for s in self.switches)

    @field_validator("phones", mode="before")
    @classmethod
    def _split_phones(cls, value: Any) -> Any:
        """``"a, b"`` (a flag's value) is ``["a", "b"]``; nothing named is every phone."""
        if isinstance(value, str):
            return [n.strip() for n in value.split(",") if n.strip()] or None
        return value

    @classmethod
    def from_flags(cls, values: Mapping[str, Any]) -> RunOptions:
        """Options from parsed flag values keyed by :attr:`FlagSpec.dest` (``hil run``'s
        parameters, pytest's ``config.option``). A missing or None value leaves the
        field's default. :class:`OptionError` naming the flag when a value does not fit."""
        fields: dict[str, Any] = {}
        for spec in run_flags():
            value = values.get(spec.dest)
            if value is None and spec.envvar and os.environ.get(spec.envvar):
                value = os.environ[spec.envvar]  # pytest's flags: typer reads it itself
            if spec.inverted:
                fields[spec.field] = not value
            elif value is not None and value != []:
                if spec.choices and value not in spec.choices:
                    raise OptionError(spec.name, f"expected {' or '.join(spec.choices)}")
                fields[spec.field] = value
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else ""
            flag = next((s.name for s in run_flags() if s.field == field), field)
            raise OptionError(flag, err["msg"].removeprefix("Value error, ")) from None

    def phone_names(self, rig: Rig) -> list[str]:
        """The phones this run drives: ``phones`` (in that order) or every phone of the
        rig. :class:`OptionError` naming the first one the rig does not have."""
        names = [p.name for p in rig.phones]
        if not self.phones:
            return names
        missing = [n for n in self.phones if n not in names]
        if missing:
            raise OptionError("--phones", f"no phone {missing[0]!r} in the rig "
                                          f"(phones: {', '.join(names)})")
        return list(self.phones)


@dataclass(frozen=True)
class FlagSpec:
    """One flag as a command-line parser needs it, derived from a :class:`RunOptions` field.

    ``dest`` is the flag's name as an identifier (``--run-id`` -> ``run_id``, the name
    pytest and typer give it); ``type`` is what one value on the command line is (``str``,
    ``float``, ``Path``; ``bool`` for a switch); ``default`` is the field's default as the
    command line shows it (None for a switch).
    """

    field: str
    name: str
    dest: str
    help: str
    type: type
    default: Any
    choices: tuple[str, ...] = ()
    repeatable: bool = False
    inverted: bool = False
    metavar: str | None = None
    envvar: str | None = None

    @property
    def switch(self) -> bool:
        return self.type is bool


def run_flags() -> list[FlagSpec]:
    """Every flag of :class:`RunOptions`, in declaration order."""
    out = []
    for name, info in RunOptions.model_fields.items():
        flag = next((m for m in info.metadata if isinstance(m, Flag)), None)
        if flag is None:
            continue
        kind, choices, many = _command_line_type(info.annotation, split=flag.split)
        default = None if kind is bool or many else info.default
        out.append(FlagSpec(field=name, name=flag.name,
                            dest=flag.name.lstrip("-").replace("-", "_"), help=flag.help,
                            type=kind, default=default, choices=choices, repeatable=many,
                            inverted=flag.inverted, metavar=flag.metavar,
                            envvar=flag.envvar))
    return out


def _command_line_type(annotation: Any, *, split: bool) -> tuple[type, tuple[str, ...], bool]:
    """(type of one value on the command line, its choices, repeatable) of a field type."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin is Literal:
        return str, tuple(str(a) for a in get_args(annotation)), False
    if origin in (Sequence, list, tuple):
        if split:
            return str, (), False
        return get_args(annotation)[0], (), True
    if annotation in (bool, str, float, int, Path):
        return annotation, (), False
    raise TypeError(f"no command-line form for {annotation!r}")
