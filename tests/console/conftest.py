"""Console test peers in namespaces: ser2net in front of scripted phones on ptys, sshd,
and a telnet server.

``hilt-rc-lab`` is the framework side (192.0.2.1); ``hilt-rc-c0`` the terminal server
(192.0.2.251: raw TCP 7001, RFC 2217 7102); ``hilt-rc-c1`` the phone's SSH (192.0.2.11:22)
and telnet (192.0.2.11:23).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import framework.console.ssh as console_ssh
from framework.netns import TestNetwork, have_privileges
from tests.console.serial_peer import Pty, Ser2netPort, open_pty, ser2net
from tests.console.ssh_peer import SshPeer, sshd
from tests.console.telnet_peer import TelnetPeer, telnet_server
from tests.phone.scripted_phone import ScriptedPhone

PASSWORD = "Phone-pw-5521"


@dataclass
class SerialBench:
    """Two scripted phones behind ser2net: ``raw`` on socket://, ``telnet`` on rfc2217://."""

    raw: ScriptedPhone
    telnet: ScriptedPhone
    raw_url: str
    telnet_url: str
    ptys: list[Pty]


@pytest.fixture(scope="module")
def console_net() -> Iterator[TestNetwork]:
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)
    with TestNetwork("hilt-rc", clients=2) as net:
        net.client(0).ip("addr", "add", "192.0.2.251/24", "dev", "eth0")
        net.client(1).ip("addr", "add", "192.0.2.11/24", "dev", "eth0")
        yield net


@pytest.fixture(scope="module")
def serial_bench(console_net: TestNetwork, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[SerialBench]:
    ptys = [open_pty(), open_pty()]
    raw = ScriptedPhone(ptys[0].master, model="440HD", password=PASSWORD)
    telnet = ScriptedPhone(ptys[1].master, model="405HD", mac="00908F000002",
                           password=PASSWORD)
    ports = [Ser2netPort(ptys[0].device, 7001), Ser2netPort(ptys[1].device, 7102, True)]
    with ser2net(console_net.client(0), "192.0.2.251", ports,
                 tmp_path_factory.mktemp("ser2net")):
        yield SerialBench(raw, telnet, "socket://192.0.2.251:7001",
                          "rfc2217://192.0.2.251:7102?ign_set_control", ptys)
    for phone in (raw, telnet):
        phone.close()
    for pty in ptys:
        pty.close()


@pytest.fixture(scope="module")
def ssh_peer(console_net: TestNetwork, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[SshPeer]:
    with sshd(console_net.client(1), "192.0.2.11", 22, "admin", PASSWORD,
              tmp_path_factory.mktemp("sshd")) as peer:
        yield peer


@pytest.fixture(scope="module")
def telnet_peer(console_net: TestNetwork) -> Iterator[TelnetPeer]:
    """Scripted 440HDs at their login prompt over telnet (admin / ``PASSWORD``)."""
    with telnet_server(console_net.client(1), "192.0.2.11", 23,
                       lambda fd: ScriptedPhone(fd, password=PASSWORD)) as peer:
        yield peer


@pytest.fixture
def in_lab(console_net: TestNetwork) -> Iterator[None]:
    """The test body runs in ``hilt-rc-lab``; host keys recorded by earlier tests are forgotten."""
    console_ssh._recorded.keys.clear()
    with console_net.lab.entered():
        yield


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "consoles"
