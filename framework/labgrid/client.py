"""labgrid through its own command line (`labgrid-client`), never imported.

labgrid ships a pyserial fork (pyserial-labgrid) that would replace the core's pyserial, so
it lives in its own virtual environment (``.venv-labgrid``, ``make labgrid``) and we drive
it as a program: create places, set tags, reserve, wait, lock, show, unlock. Its text output
is parsed here, in one place. Every run of ours acts under its own labgrid user name,
``<login>.hil-<pid>``: the coordinator records it as the owner of reservations and locks, so
the janitor can tell a lock whose run has died (the pid is gone) from a live one.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import HilError

ROOT = Path(__file__).resolve().parents[2]
#: Where ``make labgrid`` installs labgrid (its own venv: it replaces pyserial).
DEFAULT_VENV = ROOT / ".venv-labgrid"
OWNER_RE = re.compile(r"^(?P<host>[^/]+)/(?P<user>.+?)\.hil-(?P<pid>\d+)$")


class LabgridError(HilError, RuntimeError):
    """labgrid could not do what was asked; the message names the command and the place."""


class LabgridMissing(LabgridError):
    """labgrid-client is not installed where we look for it."""


def find_tool(name: str) -> str:
    """Path of a labgrid program: ``$HIL_LABGRID_BIN``, then ``.venv-labgrid/bin``, then PATH."""
    for directory in (os.environ.get("HIL_LABGRID_BIN"), str(DEFAULT_VENV / "bin")):
        if directory and os.access(Path(directory) / name, os.X_OK):
            return str(Path(directory) / name)
    found = shutil.which(name)
    if found:
        return found
    raise LabgridMissing(f"{name} not found (install labgrid into its own venv: `make labgrid`, "
                         "or point HIL_LABGRID_BIN at its bin directory)")


def run_owner(pid: int | None = None) -> str:
    """The labgrid user name a run of ours acts under: ``<login>.hil-<pid>``."""
    try:
        login = os.getlogin()
    except OSError:
        import getpass

        login = getpass.getuser()
    return f"{login}.hil-{pid or os.getpid()}"


def owner_pid(acquired: str | None, host: str | None = None) -> int | None:
    """The pid of our run that holds a lock or reservation (``host/user.hil-PID``), or None
    when the owner is not one of our runs on ``host`` (default: this host)."""
    m = OWNER_RE.match(acquired or "")
    if not m or m["host"] != (host or os.environ.get("LG_HOSTNAME") or socket.gethostname()):
        return None
    return int(m["pid"])


@dataclass(frozen=True)
class Resource:
    """One resource a place holds: where it is exported and its parameters."""

    exporter: str
    group: str
    cls: str
    name: str
    params: Mapping[str, Any]
    available: bool = True


@dataclass(frozen=True)
class Place:
    """A place as ``labgrid-client show`` prints it."""

    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    comment: str = ""
    matches: tuple[str, ...] = ()
    acquired: str | None = None
    reservation: str | None = None
    resources: tuple[Resource, ...] = ()

    def matches_tags(self, wanted: Mapping[str, str]) -> bool:
        """The coordinator's rule: every filter key equals the tag (``name`` is the name)."""
        return all((self.name if k == "name" else self.tags.get(k)) == v
                   for k, v in wanted.items())


@dataclass(frozen=True)
class Reservation:
    token: str
    owner: str
    state: str
    filters: Mapping[str, str]
    allocations: tuple[str, ...]


_RESOURCE_HEAD = re.compile(r"^(?:Acquired resource|Resource) '(?P<name>[^']+)' "
                            r"\((?P<path>[^)]+)\):\s*$")


def _parse_dict_block(lines: list[str]) -> dict[str, Any]:
    try:
        value = ast.literal_eval("\n".join(line.strip() for line in lines))
    except (ValueError, SyntaxError) as exc:
        raise LabgridError(f"labgrid-client printed resource parameters we cannot read: "
                           f"{lines[:1]} ({exc})") from None
    if not isinstance(value, dict):
        raise LabgridError(f"labgrid-client printed resource parameters we cannot read: {value!r}")
    return value


def parse_show(text: str) -> list[Place]:
    """Places (with their acquired resources and parameters) from ``labgrid-client -v show``
    or ``show`` output."""
    places: list[Place] = []
    cur: dict[str, Any] | None = None
    lines = text.splitlines()
    i = 0

    def flush() -> None:
        if cur is not None:
            places.append(Place(name=cur["name"], tags=cur["tags"], comment=cur["comment"],
                                matches=tuple(cur["matches"]), acquired=cur["acquired"],
                                reservation=cur["reservation"],
                                resources=tuple(cur["resources"])))

    section = ""
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^Place '(?P<name>[^']+)':\s*$", line)
        if m:
            flush()
            cur = {"name": m["name"], "tags": {}, "comment": "", "matches": [], "acquired": None,
                   "reservation": None, "resources": []}
            section = ""
            i += 1
            continue
        rm = _RESOURCE_HEAD.match(line)
        if rm and cur is not None:
            block = []
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and not _RESOURCE_HEAD.match(
                    lines[i]):
                block.append(lines[i])
                i += 1
            info = _parse_dict_block(block)
            parts = rm["path"].split("/")
            if len(parts) != 4:
                raise LabgridError(f"unexpected resource path {rm['path']!r} in labgrid output")
            cur["resources"].append(Resource(parts[0], parts[1], parts[2], parts[3],
                                             dict(info.get("params") or {}),
                                             bool(info.get("avail", False))))
            continue
        if cur is not None and line.startswith("  "):
            stripped = line.strip()
            key, _, value = stripped.partition(": ")
            if line.startswith("    ") and section == "matches":
                cur["matches"].append(stripped)
            elif stripped == "matches:":
                section = "matches"
            elif stripped == "acquired resources:":
                section = "acquired resources"
            elif key == "tags" or stripped == "tags:":
                section = ""
                for pair in value.split(", ") if value else ():
                    k, _, v = pair.partition("=")
                    cur["tags"][k] = v
            elif key == "comment":
                section, cur["comment"] = "", value
            elif key == "acquired" or stripped == "acquired:":
                section = ""
                cur["acquired"] = None if value in ("", "None") else value
            elif key == "reservation":
                section, cur["reservation"] = "", value or None
            elif not line.startswith("    "):
                section = ""
        i += 1
    flush()
    return places


def parse_reservations(text: str) -> list[Reservation]:
    """Reservations from ``labgrid-client reservations`` output."""
    out: list[Reservation] = []
    cur: dict[str, Any] | None = None
    section = ""
    for line in text.splitlines():
        m = re.match(r"^Reservation '(?P<token>[^']+)':\s*$", line)
        if m:
            if cur:
                out.append(Reservation(**cur))
            cur = {"token": m["token"], "owner": "", "state": "", "filters": {},
                   "allocations": ()}
            section = ""
            continue
        if cur is None:
            continue
        stripped = line.strip()
        key, _, value = stripped.partition(": ")
        if stripped in ("filters:", "allocations:"):
            section = stripped[:-1]
        elif line.startswith("    ") and section == "filters" and key == "main":
            cur["filters"] = dict(p.partition("=")[::2] for p in value.split())
        elif line.startswith("    ") and section == "allocations" and key == "main":
            cur["allocations"] = tuple(v.strip() for v in value.split(",") if v.strip())
        elif key in ("owner", "state"):
            section = ""
            cur[key] = value
        else:
            section = section if line.startswith("    ") else ""
    if cur:
        out.append(Reservation(**cur))
    return out


class LabgridClient:
    """``labgrid-client`` against one coordinator, acting as one owner.

    ``register`` (if given) is told about every child process so an interrupted run can
    stop a blocked ``wait`` at once (it receives the Popen; the call returns when it ends).
    """

    def __init__(self, coordinator: str | None = None, *, owner: str | None = None,
                 timeout_s: float = 30.0,
                 register: Callable[[subprocess.Popen[str] | None], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.coordinator = coordinator or os.environ.get("LG_COORDINATOR")
        if not self.coordinator:
            raise LabgridError("no labgrid coordinator: give --coordinator HOST:PORT or set "
                               "LG_COORDINATOR")
        self.owner = owner or run_owner()
        self.timeout_s = timeout_s
        self.tool = find_tool("labgrid-client")
        self._register = register
        self._stop = stop

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
        env["LG_COORDINATOR"] = str(self.coordinator)
        env["LG_USERNAME"] = self.owner
        if os.environ.get("LG_HOSTNAME"):
            env["LG_HOSTNAME"] = os.environ["LG_HOSTNAME"]
        return env

    def run(self, *args: str, place: str | None = None, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        argv = [self.tool, *(["-p", place] if place else []), *args]
        what = f"labgrid-client {' '.join(argv[1:])}"
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self._env(), start_new_session=True)
        if self._register:
            self._register(proc)
        try:
            out, err = proc.communicate(timeout=timeout or self.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise LabgridError(f"{what}: no answer from coordinator {self.coordinator} within "
                               f"{timeout or self.timeout_s:.0f} s") from None
        finally:
            if self._register:
                self._register(None)
        result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if check and proc.returncode != 0:
            lines = [ln for ln in (err or out).strip().splitlines() if ln.strip()]
            raise LabgridError(f"{what}: {lines[-1] if lines else f'exit {proc.returncode}'}")
        return result

    # --- places ---------------------------------------------------------------------------
    def places(self) -> list[Place]:
        """Every place with its tags, lock and reservation (``show`` of all places)."""
        names = [ln.split()[0] for ln in self.run("places").stdout.splitlines() if ln.strip()]
        return [self.show(n) for n in names]

    def show(self, place: str) -> Place:
        found = parse_show(self.run("show", place=place).stdout)
        if not found:
            raise LabgridError(f"place {place}: labgrid-client show printed no place")
        return found[0]

    def create_place(self, place: str) -> None:
        self.run("create", place=place)

    def add_match(self, place: str, pattern: str) -> None:
        self.run("add-match", pattern, place=place)

    def set_tags(self, place: str, tags: Mapping[str, str]) -> None:
        self.run("set-tags", *(f"{k}={v}" for k, v in sorted(tags.items())), place=place)

    def set_comment(self, place: str, comment: str) -> None:
        self.run("set-comment", comment, place=place)

    # --- reservations and locks ----------------------------------------------------------
    def _check_stop(self, what: str) -> None:
        if self._stop is not None and self._stop.is_set():
            raise LabgridError(f"{what}: interrupted")

    def reserve(self, filters: Mapping[str, str]) -> str:
        """A new reservation for a place matching ``filters``; returns its token."""
        self._check_stop("reserve")
        out = self.run("reserve", "--shell", *(f"{k}={v}" for k, v in filters.items())).stdout
        m = re.search(r"LG_TOKEN=(\S+)", out)
        if not m:
            raise LabgridError(f"labgrid-client reserve printed no token: {out.strip()!r}")
        return m.group(1)

    def wait(self, token: str, timeout_s: float) -> Reservation:
        """Block until the reservation is allocated (labgrid's own ``wait``)."""
        self._check_stop(f"wait for reservation {token}")
        try:
            self.run("wait", token, timeout=timeout_s)
        except LabgridError as exc:
            if "no answer" in str(exc):
                raise LabgridError(f"reservation {token}: no place was allocated within "
                                   f"{timeout_s:.0f} s") from None
            raise
        res = self.reservation(token)
        if res is None or res.state not in ("allocated", "acquired") or not res.allocations:
            raise LabgridError(f"reservation {token} ended {res.state if res else 'removed'} "
                               "without a place")
        return res

    def reservations(self) -> list[Reservation]:
        return parse_reservations(self.run("reservations").stdout)

    def reservation(self, token: str) -> Reservation | None:
        return next((r for r in self.reservations() if r.token == token), None)

    def cancel_reservation(self, token: str) -> None:
        self.run("cancel-reservation", token)

    def lock(self, place: str, *, token: str | None = None) -> None:
        self.run("lock", place=f"+{token}" if token else place)

    def unlock(self, place: str, *, kick: bool = False) -> None:
        self.run("unlock", *(["--kick"] if kick else []), place=place)

    def acquired_resources(self, place: str) -> list[Resource]:
        """The resources of a place we hold, with their parameters (``show`` prints them)."""
        return list(self.show(place).resources)


def split_filters(pairs: Sequence[str]) -> dict[str, str]:
    """``["model=440HD", ...]`` -> dict; ValueError naming the bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.match(r"^[a-z][a-z0-9_]+$", key) or not value or \
                not re.match(r"^[A-Za-z0-9_.-]+$", value):
            raise ValueError(f"{pair!r} is not TAG=VALUE (tag: lower-case letters, digits, '_'; "
                             "value: letters, digits, '_', '.', '-')")
        out[key] = value
    return out
