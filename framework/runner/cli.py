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
    watch_foreign_dhcp,
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
    from framework.dhcp.probe import RogueDhcpServerError, refuse_rogue_servers
    from framework.dhcp.server import DhcpServer
    from framework.dhcp.watch import DhcpWatchError
    from framework.netns import NamespaceError, Netns
    from framework.services import ContentStore, ProvisioningServices, RequestLog, Zone

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
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        if netns:
            try:
                stack.enter_context(Netns(netns).entered())
            except NamespaceError as exc:
                raise typer.BadParameter(str(exc), param_hint="--netns") from None
        if not allow_other_dhcp:
            try:
                refuse_rogue_servers(interface)
            except RogueDhcpServerError as exc:
                typer.echo(f"hil lab serve: refusing to start: {exc} "
                           "(--allow-other-dhcp to override)", err=True)
                raise typer.Exit(3) from None
            except OSError as exc:
                raise typer.BadParameter(f"{interface}: {exc.strerror or exc}",
                                         param_hint="--interface") from None
        sink = stack.enter_context(open(log, "a")) if log else None
        live = LiveLog(sink, typer.echo)
        server_ip = str(iface.ip)
        dhcp = DhcpServer(interface, server_ip, netmask=str(iface.network.netmask),
                          pool=(start, end), allowlist=[p.mac for p in phones], router=None,
                          dns=[server_ip], domain=None, lease_time=600)
        dhcp.subscribe(live.dhcp)
        for p in phones:
            dhcp.set_options(p.mac, p.options)
        macs = {p.mac for p in phones}
        content = ContentStore(client_filter=lambda ip: dhcp.mac_for_ip(ip) in macs)
        if files:
            for f in sorted(files.rglob("*")):
                if f.is_file():
                    content.serve("/" + str(f.relative_to(files)), file=f)
        request_log = RequestLog(mac_resolver=dhcp.mac_for_ip)
        request_log.subscribe(live.request)
        zone = Zone({})
        services = ProvisioningServices(server_ip, state_dir=state_dir, log=request_log,
                                        content=content, zone=zone)
        try:
            dhcp.start()
            stack.callback(dhcp.stop)
            services.start()
            stack.callback(services.stop)
        except OSError as exc:
            typer.echo(f"hil lab serve: cannot start on {interface} {server_ip}: {exc}", err=True)
            raise typer.Exit(3) from None
        try:  # another DHCP server appearing mid-run: a warning line, live
            stack.callback(watch_foreign_dhcp(interface, server_ip, live, netns=netns).stop)
        except DhcpWatchError as exc:
            typer.echo(f"hil lab serve: cannot watch for other DHCP servers: {exc}", err=True)
            raise typer.Exit(3) from None
        typer.echo(f"serving {len(phones)} phone(s) on {interface} {iface}: DHCP pool "
                   f"{start}-{end}, DNS/TFTP/HTTP/HTTPS/FTP on {server_ip}; lab CA "
                   f"{services.ca_pem_path}. Ctrl-C stops.")
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        typer.echo("stopping")


if __name__ == "__main__":
    sys.exit(app())
