"""OpenSSH ``sshd`` as an independent SSH peer, in a namespace, with a throwaway test user.

The user exists only inside sshd's private mount namespace: ``/etc/passwd`` and
``/etc/shadow`` are bind-mounted copies with one extra line, so the host's accounts are
never touched. Its session runs ``phone_shell.py`` (ForceCommand): the scripted 400HD shell.
The user has uid 0 (like the phone's admin) because the project's interpreter lives under
``/root``; only that user may log in (AllowUsers), and only with the test password.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from framework.netns import Netns
from tests.rig.waiting import wait_until

PHONE_SHELL = Path(__file__).with_name("phone_shell.py")


@dataclass
class SshPeer:
    """A running sshd: where it listens, who may log in, its host key fingerprint."""

    host: str
    port: int
    username: str
    host_key: Path
    log: Path

    def fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-l", "-f", str(self.host_key)], check=True,
                             capture_output=True, text=True).stdout.split()
        return out[1]  # SHA256:...


def _hash(password: str) -> str:
    return subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, check=True,
                          capture_output=True, text=True).stdout.strip()


def make_host_key(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, path.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path


@contextmanager
def sshd(netns: Netns, host: str, port: int, username: str, password: str, workdir: Path,
         *, model: str = "440HD", version: str = "2.2.8.61", host_key: Path | None = None
         ) -> Iterator[SshPeer]:
    """Run sshd in ``netns`` on ``host:port``; ``username``/``password`` logs in."""
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        raise RuntimeError("sshd is not installed (Debian package openssh-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    key = host_key or make_host_key(workdir / "ssh_host_ed25519_key")
    etc = {name: Path(f"/etc/{name}").read_text() for name in ("passwd", "shadow")}
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    (workdir / "passwd").write_text(
        etc["passwd"] + f"{username}:x:0:0:HIL test phone:{home}:/bin/sh\n")
    (workdir / "shadow").write_text(etc["shadow"] + f"{username}:{_hash(password)}:19000:0:"
                                    f"99999:7:::\n")
    (workdir / "shadow").chmod(0o600)
    config = workdir / "sshd_config"
    config.write_text(
        f"ListenAddress {host}:{port}\nHostKey {key}\nPidFile {workdir / 'sshd.pid'}\n"
        "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication no\nPermitRootLogin yes\nStrictModes no\nUseDNS no\n"
        f"AllowUsers {username}\nAuthorizedKeysFile none\nLogLevel VERBOSE\n"
        f"SetEnv HILT_PHONE_MODEL={model} HILT_PHONE_VERSION={version}\n"
        f"ForceCommand {sys.executable} {PHONE_SHELL}\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    binds = " && ".join(f"mount --bind {shlex.quote(str(workdir / n))} /etc/{n}"
                        for n in ("passwd", "shadow"))
    script = f"{binds} && exec /usr/sbin/sshd -D -e -f {shlex.quote(str(config))}"
    log_path = workdir / "sshd.log"
    log = log_path.open("wb")
    proc = netns.popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       stdout=log, stderr=subprocess.STDOUT)

    def listening() -> bool:
        if proc.poll() is not None:
            return True
        return f"{host}:{port} " in netns.run(["ss", "-Hltn"], timeout=5).stdout

    try:
        wait_until(listening, 5, f"sshd listening on {host}:{port}")
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}: {log_path.read_text()}")
        yield SshPeer(host, port, username, key, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
