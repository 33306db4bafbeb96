"""Serial test peers: a pty pair, and ser2net 4 (an independent terminal server) in front of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tty
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from framework.netns import Netns
from tests.rig.waiting import wait_until


@dataclass
class Pty:
    """A pseudo-terminal: the peer (the "phone") holds ``master``; ``device`` is the tty."""

    master: int
    slave: int
    device: str

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def open_pty() -> Pty:
    """A raw pty pair. The slave stays open here so the line survives the client closing."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return Pty(master, slave, os.ttyname(slave))


@dataclass(frozen=True)
class Ser2netPort:
    """One ser2net connection: a TCP port in front of a tty, raw or RFC 2217 (telnet)."""

    device: str
    port: int
    rfc2217: bool = False


def _config(address: str, ports: Sequence[Ser2netPort]) -> str:
    out = ["%YAML 1.1", "---"]
    for i, p in enumerate(ports):
        accepter = f"telnet(rfc2217),tcp,{address},{p.port}" if p.rfc2217 \
            else f"tcp,{address},{p.port}"
        out += [f"connection: &con{i}",
                f"  accepter: {accepter}",
                "  enable: on",
                "  options:",
                "    kickolduser: true",
                f"  connector: serialdev,{p.device},115200n81,local", ""]
    return "\n".join(out)


@contextmanager
def ser2net(netns: Netns, address: str, ports: Sequence[Ser2netPort], workdir: Path
            ) -> Iterator[subprocess.Popen[bytes]]:
    """Run ser2net in ``netns`` listening on ``address``; stop it on exit."""
    if shutil.which("ser2net") is None:
        raise RuntimeError("ser2net is not installed (Debian package ser2net)")
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "ser2net.yaml"
    conf.write_text(_config(address, ports))
    log = (workdir / "ser2net.out").open("wb")
    proc = netns.popen(["ser2net", "-n", "-u", "-c", str(conf), "-P", str(workdir / "pid")],
                       stdout=log, stderr=subprocess.STDOUT)

    def listening() -> bool:
        if proc.poll() is not None:
            return True
        out = netns.run(["ss", "-Hltn"], timeout=5).stdout
        return all(f"{address}:{p.port} " in out for p in ports)

    try:
        wait_until(listening, 5, f"ser2net listening on {address} ports "
                   f"{[p.port for p in ports]}")
        if proc.poll() is not None:
            raise RuntimeError(f"ser2net exited {proc.returncode}: "
                               f"{(workdir / 'ser2net.out').read_text()}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
