"""Any PDU through a command: argv templates, no shell.

The rig gives ``on``, ``off`` and optionally ``state`` as argv lists whose items may use
``{outlet}``, ``{name}`` and ``{host}``. Exit status 0 is success; ``state`` prints
``on``/``off`` (also ``1``/``0``, ``true``/``false``). Secrets reach the command only as
environment variables (``env``), never in argv where ``ps`` shows them, and are masked in
any output quoted in errors.
"""

from __future__ import annotations

import os
import subprocess

from framework.power.outlet import PowerBackendError
from framework.rig.model import CommandPdu

_ON = {"on", "1", "true"}
_OFF = {"off", "0", "false"}


def _run(pdu: CommandPdu, template: list[str], outlet: int, timeout: float) -> str:
    fields = {"outlet": outlet, "name": pdu.name, "host": pdu.host or ""}
    try:
        argv = [item.format(**fields) for item in template]
    except (KeyError, IndexError, ValueError) as exc:
        raise PowerBackendError(f"bad argv template {template!r}: {exc} (use {{outlet}}, "
                                f"{{name}}, {{host}})", retryable=False) from None
    secrets = {key: ref.resolve() for key, ref in pdu.env.items()}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **secrets}, check=False)
    except FileNotFoundError:
        raise PowerBackendError(f"command not found: {argv[0]}", retryable=False) from None
    except subprocess.TimeoutExpired:
        raise PowerBackendError(f"{argv[0]} did not finish within {timeout:g} s") from None

    def masked(text: str) -> str:
        for value in secrets.values():
            if value:
                text = text.replace(value, "***")
        return text

    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise PowerBackendError(f"{' '.join(argv)} exited {proc.returncode}: "
                                f"{masked(tail[0])}")
    return masked(proc.stdout)


def power_set(pdu: CommandPdu, outlet: int, on: bool, timeout: float) -> None:
    _run(pdu, pdu.on if on else pdu.off, outlet, timeout)


def power_get(pdu: CommandPdu, outlet: int, timeout: float) -> bool | None:
    if pdu.state is None:
        return None
    out = _run(pdu, pdu.state, outlet, timeout).strip()
    word = out.split()[0].lower() if out else ""
    if word in _ON:
        return True
    if word in _OFF:
        return False
    raise PowerBackendError(f"state command printed {out[:40]!r}, expected on or off",
                            retryable=False)
