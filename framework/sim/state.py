"""The sim lab's files under ``/run/hil`` (``$HIL_RUN_DIR``): state, log, control socket.

Kept apart from framework.sim.bench so that ``hil sim status/down/fault`` read them without
importing the lab's heavy dependencies (scapy, paramiko, pysnmp).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from framework.netns import list_namespaces


def run_dir() -> Path:
    """Where state, log and control files live (``$HIL_RUN_DIR`` or ``/run/hil``)."""
    return Path(os.environ.get("HIL_RUN_DIR") or "/run/hil")


def state_path(prefix: str) -> Path:
    return run_dir() / f"sim-{prefix}.json"


def log_path(prefix: str) -> Path:
    return run_dir() / f"sim-{prefix}.log"


def control_path(prefix: str) -> Path:
    return run_dir() / f"sim-{prefix}.sock"


def read_state(prefix: str) -> dict[str, Any] | None:
    try:
        data = json.loads(state_path(prefix).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running sim lab process (not a zombie, not a reused pid)."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and b"framework.sim" in cmdline


def lab_namespaces(prefix: str) -> list[str]:
    """Existing namespaces that belong to a sim lab with this prefix."""
    return [n for n in list_namespaces()
            if n in (f"{prefix}-lab", f"{prefix}-infra") or n.startswith(f"{prefix}-ph-")]
