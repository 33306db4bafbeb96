"""`hil sim`: start, inspect and stop the simulated bench (mounted by framework/cli.py).

``hil sim up`` validates the rig, fills in unset sim secrets, starts the lab process
(``python -m framework.sim serve``) in its own session and returns when the lab reports
readiness through a pipe; ``status`` reads the state file; ``down`` stops the process
and removes its namespaces even if it died. Problems are one line on stderr, exit 2.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from framework import resources
from framework.errors import HilError
from framework.netns import Netns, have_privileges
from framework.rig import RigError
from framework.sim.config import SimBench, SimConfigError, ensure_secrets, load_bench
from framework.sim.firmware import DEVIATIONS

DEFAULT_RIG = resources.default_rig()
RigOption = Annotated[Path, typer.Option("--rig", envvar="HIL_RIG",
                                                           help="rig file with a sim section")]
PrefixOption = Annotated[str | None, typer.Option(
    "--prefix", help="address the lab by namespace prefix instead of by rig file")]

app = typer.Typer(help="The simulated bench: virtual 400HD phones, PDU, terminal server.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _need_privileges(command: str) -> None:
    ok, why = have_privileges()
    if not ok:
        raise _fail(f"hil sim {command}: cannot create network namespaces: {why}")


def _bench(rig: Path) -> SimBench:
    try:
        return load_bench(rig)
    except (RigError, SimConfigError) as exc:
        raise _fail(str(exc)) from None


def _prefix(rig: Path, prefix: str | None) -> str:
    return prefix if prefix is not None else _bench(rig).prefix


@app.command()
def up(rig: RigOption = DEFAULT_RIG,
       timeout: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 60.0,
       ) -> None:
    """Start the simulated bench; returns once it is ready."""
    from framework.sim.state import log_path, pid_alive, read_state, run_dir, state_path

    _need_privileges("up")
    bench = _bench(rig)
    state = read_state(bench.prefix)
    if state and pid_alive(int(state.get("pid", 0))):
        if state.get("ready"):
            typer.echo(f"sim lab {bench.prefix} is already up (pid {state['pid']})")
            return
        raise _fail(f"hil sim up: sim lab {bench.prefix} is starting or stuck (pid "
                    f"{state['pid']}); see {log_path(bench.prefix)} or run `hil sim down`")
    try:
        generated = ensure_secrets(bench)
    except (SimConfigError, OSError) as exc:
        raise _fail(f"hil sim up: {exc}") from None
    if generated:
        typer.echo(f"generated random values for {', '.join(generated)} (not shown) in the "
                   "secrets file")
    began = time.monotonic()
    run_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    log_file = log_path(bench.prefix)
    read_end, write_end = os.pipe()
    with open(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "framework.sim", "serve", "--rig", str(rig.resolve()),
             "--ready-fd", str(write_end)],
            pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
    os.close(write_end)
    message = _await_line(read_end, timeout)
    os.close(read_end)
    if message != "ready":
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=10)
        why = message or f"the lab process exited with status {child.poll()}"
        if not message:
            why += f"; last log lines:\n{_tail(log_file)}"
        elif message == "timeout":
            why = f"not ready within {timeout} s; see {log_file}"
        raise _fail(f"hil sim up: {why.removeprefix('error: ')}", code=1)
    typer.echo(f"sim lab {bench.prefix} up in {time.monotonic() - began:.1f} s: "
               f"{len(bench.phones)} phones, PDU {', '.join(str(p.host) for p in bench.pdus)}, "
               f"terminal server {bench.sim.terminal_server_address} (pid {child.pid}, "
               f"state {state_path(bench.prefix)})")


def _await_line(fd: int, timeout: float) -> str:
    """The first line written to the readiness pipe; "" on EOF, "timeout" on timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@app.command()
def status(rig: RigOption = DEFAULT_RIG, prefix: PrefixOption = None,
           as_json: Annotated[bool, typer.Option("--json", help="the state file as JSON")]
           = False) -> None:
    """Show whether the lab runs, and each phone's power, address and firmware."""
    from framework.sim.state import lab_namespaces, pid_alive, read_state

    name = _prefix(rig, prefix)
    state = read_state(name)
    alive = bool(state) and pid_alive(int(state.get("pid", 0)))  # type: ignore[union-attr]
    if as_json:
        typer.echo(json.dumps({"running": alive, **(state or {})}, indent=2))
        return
    if not state or not alive:
        leftovers = lab_namespaces(name)
        note = f" (leftover namespaces: {', '.join(leftovers)}; run `hil sim down`)" \
            if leftovers else ""
        raise _fail(f"sim lab {name} is not running{note}", code=1)
    typer.echo(f"sim lab {name}: {'ready' if state.get('ready') else 'starting'}, "
               f"pid {state['pid']}, since {state.get('started')}, log {state.get('log')}")
    phones: dict[str, Any] = state.get("phones", {})
    for phone_name, phone in phones.items():
        typer.echo(f"  {phone_name:<8} {phone.get('model', ''):<6} {phone.get('mac', '')}  "
                   f"power {phone.get('power'):<3}  {phone.get('phase', ''):<12} "
                   f"{phone.get('address') or '-':<15} firmware {phone.get('firmware')}")


@app.command()
def down(rig: RigOption = DEFAULT_RIG, prefix: PrefixOption = None,
         timeout: Annotated[float, typer.Option(help="seconds to wait for a clean exit")] = 10.0,
         ) -> None:
    """Stop the lab and remove its namespaces (also after the lab process died)."""
    from framework.sim.state import (
        control_path,
        lab_namespaces,
        pid_alive,
        read_state,
        state_path,
    )

    _need_privileges("down")
    name = _prefix(rig, prefix)
    state = read_state(name)
    pid = int(state.get("pid", 0)) if state else 0
    stopped = ""
    if pid and pid_alive(pid):
        if not _terminate(pid, timeout):
            stopped = f" (pid {pid} ignored SIGTERM for {timeout} s: killed)"
    leftovers = lab_namespaces(name) + [n for n in (state or {}).get("namespaces", [])
                                        if Netns(n).exists()]
    for namespace in dict.fromkeys(leftovers):
        Netns(namespace).delete()
    state_path(name).unlink(missing_ok=True)
    control_path(name).unlink(missing_ok=True)
    if pid or leftovers:
        typer.echo(f"sim lab {name} down{stopped}")
    else:
        typer.echo(f"no sim lab {name} was running")


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM and wait for the exit (pidfd: an event, not a poll); SIGKILL after timeout."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        os.kill(pid, signal.SIGTERM)
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if ready:
            return True
        os.kill(pid, signal.SIGKILL)
        select.select([pidfd], [], [], 5.0)
        return False
    except ProcessLookupError:
        return True
    finally:
        os.close(pidfd)


@app.command()
def fault(name: Annotated[str, typer.Argument(
              help="pdu-unreachable, dead-outlet, console-dead or no-dhcp")],
          state: Annotated[str, typer.Argument(help="on or off")],
          outlet: Annotated[int | None, typer.Option(help="outlet number (dead-outlet)")] = None,
          pdu: Annotated[str | None, typer.Option(help="PDU name (default: the first)")] = None,
          phone: Annotated[str | None, typer.Option(
              help="phone name (console-dead, no-dhcp)")] = None,
          rig: RigOption = DEFAULT_RIG, prefix: PrefixOption = None) -> None:
    """Switch a fault of the simulated equipment on a running lab."""
    import socket

    from framework.sim.state import control_path

    if name not in ("pdu-unreachable", "dead-outlet", "console-dead", "no-dhcp") \
            or state not in ("on", "off"):
        raise _fail("hil sim fault: expected `pdu-unreachable on|off`, "
                    "`dead-outlet on|off --outlet N`, `console-dead on|off --phone NAME` or "
                    "`no-dhcp on|off --phone NAME`")
    if name == "dead-outlet" and outlet is None:
        raise _fail("hil sim fault: dead-outlet needs --outlet N")
    if name in ("console-dead", "no-dhcp") and phone is None:
        raise _fail(f"hil sim fault: {name} needs --phone NAME")
    request = {"fault": name, "on": state == "on", "outlet": outlet, "pdu": pdu, "phone": phone}
    path = control_path(_prefix(rig, prefix))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall((json.dumps(request) + "\n").encode())
            answer = json.loads(sock.makefile("r").readline())
    except (OSError, ValueError) as exc:
        raise _fail(f"hil sim fault: no running sim lab answers on {path} ({exc})") from None
    if not answer.get("ok"):
        raise _fail(f"hil sim fault: {answer.get('error')}")
    typer.echo(f"{name} {state}")


@app.command()
def deviations(rig: RigOption = DEFAULT_RIG,
               as_json: Annotated[bool, typer.Option(
                   "--json", help="one JSON list: firmware, name, changes, manual, "
                                  "in_requests")] = False) -> None:
    """List the deviations each firmware class of the rig declares (what
    sim.phones.<name>.deviations may name)."""
    try:
        bench = load_bench(rig)
    except (SimConfigError, HilError) as exc:
        raise _fail(f"hil sim deviations: {exc}") from None
    classes = {f"{c.__module__}:{c.__qualname__}": c
               for c in (p.firmware_class for p in bench.phones)}
    if as_json:
        typer.echo(json.dumps([{"firmware": name, "name": d.name, "changes": d.changes,
                                "manual": d.manual, "in_requests": d.in_requests}
                               for name, cls in sorted(classes.items())
                               for d in getattr(cls, "DEVIATIONS", DEVIATIONS).values()],
                              indent=2))
        return
    for name, cls in sorted(classes.items()):
        if len(classes) > 1:
            typer.echo(f"{name}:")
        for deviation in getattr(cls, "DEVIATIONS", DEVIATIONS).values():
            typer.echo(f"{deviation.name:<30} {deviation.changes}")


@app.command(hidden=True)
def serve(rig: RigOption = DEFAULT_RIG,
          ready_fd: Annotated[int | None, typer.Option(help="pipe for the readiness line")]
          = None) -> None:
    """Run the lab in the foreground until SIGTERM/SIGINT (what `hil sim up` starts)."""
    from framework.sim.bench import serve as serve_bench

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _need_privileges("serve")

    def ready(message: str) -> None:
        if ready_fd is None:
            typer.echo(message, err=message != "ready")
            return
        try:
            os.write(ready_fd, (message + "\n").encode())
            os.close(ready_fd)
        except OSError:
            pass

    try:
        bench = load_bench(rig)
    except (RigError, SimConfigError) as exc:
        ready(f"error: {exc}")
        raise typer.Exit(2) from None
    raise typer.Exit(serve_bench(bench, ready))
