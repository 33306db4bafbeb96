"""The phone's shell behind OpenSSH's ``ForceCommand``: the scripted 400HD, already logged in.

Run by sshd for the test user; stdin/stdout are the session's pty (set raw here: the
scripted phone does its own echo, like the phone's shell on a serial line).
"""

from __future__ import annotations

import os
import sys
import termios
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.phone.scripted_phone import ScriptedPhone


def main() -> None:
    if os.isatty(0):
        tty.setraw(0, termios.TCSANOW)
    model = os.environ.get("HILT_PHONE_MODEL", sys.argv[1] if len(sys.argv) > 1 else "440HD")
    version = os.environ.get("HILT_PHONE_VERSION", "2.2.8.61")  # UC_...: the `#` prompt
    phone = ScriptedPhone(0, fd_out=1, model=model, version=version)
    phone.attach_shell(os.environ.get("USER", "admin"))
    phone.ended.wait()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
