"""`hil lab ...`: the lab side at a bench (`serve`).

framework/cli.py mounts this group and adds labgrid's lab-scale commands to it
(``hil lab run|publish|janitor``); this module does not import framework.labgrid.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from framework.runner.serve import (
    LiveLog,
    OptionsFileError,
    default_pool,
    load_options_file,
)

app = typer.Typer(help="The lab side: serve DHCP and provisioning on a bench interface.",
                  no_args_is_help=True)


@app.command("serve")
def serve_command(
    interface: Annotated[str, typer.Option(help="the bench's lab interface (only this one)")],
    addr: Annotated[str, typer.Option(help="our address on it, CIDR (e.g. 192.0.2.1/24)")],
    options: Annotated[Path, typer.Option(help="YAML: MAC -> DHCP options")],
    log: Annotated[Path | None, typer.Option(help="append JSON lines here")] = None,
    files: Annotated[Path | None, typer.Option(help="serve the files under this directory")
                     ] = None,
    pool: Annotated[str | None, typer.Option(help="START-END (default .100-.199)")] = None,
    netns: Annotated[str | None, typer.Option(help="run inside this network namespace")] = None,
    state_dir: Annotated[Path, typer.Option(help="where the lab CA is kept")] = Path("/run/hil"),
    allow_other_dhcp: Annotated[bool, typer.Option(
        "--allow-other-dhcp", help="start even if another DHCP server answers")] = False,
) -> None:
    """Run the DHCP server and all provisioning services in the foreground, with a live log."""
    from framework.errors import RigFault
    from framework.netns import NamespaceError, Netns
    from framework.runner.stack import LabStack, StackConfig

    try:
        iface = ipaddress.IPv4Interface(addr)
    except ValueError:
        raise typer.BadParameter(f"{addr!r} is not an IPv4 address with prefix",
                                 param_hint="--addr") from None
    if iface.network.prefixlen == 32:
        raise typer.BadParameter(f"{addr!r}: give the prefix length, e.g. /24",
                                 param_hint="--addr")
    try:
        phones = load_options_file(options)
        start, end = pool.split("-", 1) if pool else default_pool(iface)
        for a in (start, end):
            if ipaddress.IPv4Address(a) not in iface.network:
                raise OptionsFileError(f"--pool {a} is outside {iface.network}")
    except (OptionsFileError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if netns:  # a namespace that is not there is a bad argument, not a rig fault
        try:
            with Netns(netns).entered():
                pass
        except NamespaceError as exc:
            raise typer.BadParameter(str(exc), param_hint="--netns") from None
    elif not Path(f"/sys/class/net/{interface}").exists():
        raise typer.BadParameter(f"{interface}: no such interface on this host",
                                 param_hint="--interface")
    config = StackConfig(interface=interface, address=iface, pool=(start, end),
                         macs=tuple(p.mac for p in phones), netns=netns, state_dir=state_dir,
                         refuse_other_dhcp=not allow_other_dhcp)
    stop = threading.Event()
    with contextlib.ExitStack() as exits:
        sink = exits.enter_context(open(log, "a")) if log else None
        live = LiveLog(sink, typer.echo)
        lab = LabStack(config, on_dhcp=live.dhcp)
        try:
            exits.enter_context(lab)
        except RigFault as exc:
            typer.echo(f"hil lab serve: {exc}", err=True)
            raise typer.Exit(3) from None
        for p in phones:
            lab.dhcp.set_options(p.mac, p.options)
        if files:
            for f in sorted(files.rglob("*")):
                if f.is_file():
                    lab.services.content.serve("/" + str(f.relative_to(files)), file=f)
        lab.services.log.subscribe(live.request)
        lab.foreign_dhcp.subscribe(live.foreign_dhcp)  # a warning line, live
        typer.echo(f"serving {len(phones)} phone(s) on {interface} {iface}: DHCP pool "
                   f"{start}-{end}, DNS/TFTP/HTTP/HTTPS/FTP on {iface.ip}; lab CA "
                   f"{lab.services.ca_pem_path}. Ctrl-C stops.")
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        typer.echo("stopping")


if __name__ == "__main__":
    sys.exit(app())
