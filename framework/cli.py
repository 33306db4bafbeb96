"""`hil`: the command-line entry point. A thin shell; each area owns its sub-commands.

Sub-command groups live next to the code they drive, each a module exposing a
``typer.Typer`` named ``app``: ``framework.sim.cli`` (``hil sim``), ``framework.rig.cli``
(``hil rig``), ``framework.runner.cli`` (``hil lab``), ``framework.report.cli`` (``hil report``).
Sub-commands are mounted here and only here: ``hil rig check`` (framework.bench.cli) and
``hil lab run|publish|janitor`` (framework.labgrid.cli) join their groups in
:func:`_mount_across_layers`, so no lower package imports a higher one to mount it.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Annotated

import click
import typer
import typer.core

from framework.resolution import (
    PhoneIdentity,
    PhoneSettings,
    ProvisioningMethod,
    ResolutionInputError,
    assertions,
    get_profile,
    identification_assertions,
    parse_switch,
    resolve,
)

# typer < 0.20 escapes the "[default: ...]" suffix of an option's help for rich markup
# whenever rich is importable (TyperOption.get_help_record), even when the markup mode is
# None and click's plain formatter prints the help: every `--help` showed "\[default: ...]".
# Our apps all use plain click help (rich_markup_mode=None: the mode of the root app is the
# one every mounted group gets), so typer's rich paths are off for the whole `hil` tree.
typer.core.HAS_RICH = False

app = typer.Typer(
    name="hil",
    help="Hardware-in-the-loop lab for AudioCodes 400HD DHCP provisioning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def version_text() -> str:
    """``hil <package version>`` and, run from a git checkout, its revision
    (``(git 1a2b3c4[-dirty])``); ``(installed)`` otherwise."""
    from importlib.metadata import PackageNotFoundError, version

    from framework.runner.session import framework_revision

    try:
        ver = version("hil400hd")
    except PackageNotFoundError:
        ver = "unknown"
    rev = framework_revision()
    return f"hil {ver} ({'git ' + rev if rev != 'unknown' else 'installed'})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version (and git revision in a checkout) and exit")] = False,
) -> None:
    """Hardware-in-the-loop lab for AudioCodes 400HD DHCP provisioning."""


def _parse_option(spec: str, *, hex_value: bool) -> tuple[int, bytes]:
    flag = "--option-hex" if hex_value else "--option"
    code_text, sep, value = spec.partition("=")
    if not sep:
        raise click.BadParameter(f"{spec!r}: expected CODE=VALUE", param_hint=flag)
    try:
        code = int(code_text)
    except ValueError:
        raise click.BadParameter(f"{spec!r}: option code {code_text!r} is not a number",
                                 param_hint=flag) from None
    if not 1 <= code <= 254:
        raise click.BadParameter(f"{spec!r}: option code {code} is not 1-254", param_hint=flag)
    if not hex_value:
        return code, value.encode("utf-8", "surrogateescape")
    cleaned = value.replace(":", "").replace(" ", "")
    try:
        return code, bytes.fromhex(cleaned)
    except ValueError:
        raise click.BadParameter(f"{spec!r}: {value!r} is not hex", param_hint=flag) from None


@app.command("resolve")
def resolve_command(
    model: Annotated[str, typer.Option(help="Phone model, e.g. 440HD")],
    mac: Annotated[str, typer.Option(help="Phone MAC, 12 hex digits (separators allowed)")],
    profile: Annotated[str, typer.Option(help="Firmware behaviour profile: 2.2 or 3.4")] = "2.2",
    url_option: Annotated[int, typer.Option(
        "--url-option", help="provisioning/url_option_value: option read instead of 160")] = 160,
    method: Annotated[str, typer.Option(help="provisioning/method: dynamic, static, disable")
                      ] = "dynamic",
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="CODE=TEXT (repeatable); '66=' is present but empty")] = None,
    option_hex: Annotated[list[str] | None, typer.Option(
        "--option-hex", help="CODE=HEX (repeatable) for binary values")] = None,
    switch: Annotated[list[str] | None, typer.Option(
        "--switch", help="NAME=VALUE: override one interpretation switch (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Say which firmware and configuration URLs a phone must request for DHCP options."""
    options: dict[int, bytes] = {}
    for spec in option or []:
        code, value = _parse_option(spec, hex_value=False)
        options[code] = value
    for spec in option_hex or []:
        code, value = _parse_option(spec, hex_value=True)
        options[code] = value
    try:
        phone = PhoneIdentity(model, mac)
        prof = get_profile(profile)
        if switch:
            prof = prof.with_switches(**dict(parse_switch(s) for s in switch))
        try:
            meth = ProvisioningMethod(method.lower())
        except ValueError:
            raise ResolutionInputError(
                f"method {method!r}: expected dynamic, static or disable") from None
        settings = PhoneSettings(method=meth, url_option=url_option)
        result = resolve(options, phone, prof, settings)
    except ResolutionInputError as exc:
        raise click.UsageError(str(exc)) from None
    checks = (*assertions(result, prof.interpretation, phone.mac),
              *identification_assertions(phone.model, url_option, prof.interpretation))
    if as_json:
        typer.echo(json.dumps({**result.to_dict(),
                               "assertions": [a.to_dict() for a in checks]}, indent=2))
    else:
        typer.echo(result.explanation)
        typer.echo("Assertions (judged ones give verdicts; the others are observed):")
        for a in checks:
            typer.echo(f"- {a.what}: {a.expected} [{'judged' if a.judged else 'observed'}; "
                       f"{a.ground.kind}: {a.ground.source}: \"{a.ground.quote}\"]")


_GROUPS = {
    "sim": "framework.sim.cli",
    "rig": "framework.rig.cli",
    "lab": "framework.runner.cli",
    "report": "framework.report.cli",
    "release": "framework.release.cli",
}
_COMMANDS = {
    "run": "framework.run",
    "explore": "framework.explore.cli",
}


def _mount() -> None:
    for name, module in _GROUPS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that area is not built yet
            raise
        app.add_typer(mod.app, name=name)
    for name, module in _COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        app.command(name)(mod.command)
    _mount_across_layers()


def _mount_across_layers() -> None:
    """Commands that sit under a lower area's group but belong to a higher layer.

    ``hil rig check`` drives consoles, PDUs and phones (framework.bench) and ``hil lab run``
    etc. reserve labgrid places (framework.labgrid); mounting them here keeps framework.rig
    and framework.runner from importing upward (the import contracts in pyproject.toml).
    """
    from framework.bench.cli import register as register_bench
    from framework.labgrid.cli import register as register_labgrid
    from framework.rig.cli import app as rig_app
    from framework.runner.cli import app as lab_app
    from framework.runner.survey_cli import register as register_survey

    register_bench(rig_app)
    register_survey(rig_app)
    register_labgrid(lab_app)


_mount()


_NO_ARGS_IS_HELP: type[Exception] = getattr(
    click.exceptions, "NoArgsIsHelpError", getattr(click.exceptions, "NoArgsIsHelp", click.UsageError)
)


def main(argv: list[str] | None = None) -> int:
    """Run `hil`; usage errors are one line on stderr and exit code 2."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        ctx = getattr(exc, "ctx", None)
        click.echo(ctx.get_help() if ctx else "", err=True)
        return 2
    except click.UsageError as exc:
        where = f"hil {exc.ctx.command_path.split(' ', 1)[1]}" if exc.ctx and " " in exc.ctx.command_path else "hil"
        click.echo(f"{where}: error: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("hil: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"hil: error: {exc.format_message()}", err=True)
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
