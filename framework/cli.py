"""`hil`: the command-line entry point. A thin shell; each area owns its sub-commands.

Sub-command groups live next to the code they drive, each a module exposing a
``typer.Typer`` named ``app``: ``framework.sim.cli`` (``hil sim``), ``framework.rig.cli``
(``hil rig``), ``framework.lab.cli`` (``hil lab``), ``framework.report.cli`` (``hil report``).
"""

from __future__ import annotations

import importlib
import sys

import click
import typer

from framework.resolution.cli import resolve_command

app = typer.Typer(
    name="hil",
    help="Hardware-in-the-loop lab for AudioCodes 400HD DHCP provisioning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("resolve")(resolve_command)

_GROUPS = {
    "sim": "framework.sim.cli",
    "rig": "framework.rig.cli",
    "lab": "framework.lab.cli",
    "report": "framework.report.cli",
}
_COMMANDS = {
    "run": "framework.lab.run_cli",
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


_mount()


def main(argv: list[str] | None = None) -> int:
    """Run `hil`; usage errors are one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except click.exceptions.NoArgsIsHelp as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
