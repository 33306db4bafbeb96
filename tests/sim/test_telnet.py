"""The virtual phone's telnet server (framework/sim/telnet.py) on loopback, driven by
busybox telnet (a client we did not write): login prompt, password not echoed, the
PhoneShell, ``exit`` closing the connection, a ``reboot`` stopping the server, and
``stop`` ending sessions and freeing the port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from framework.sim.telnet import PhoneTelnetServer, telnet_enabled
from tests.sim.harness import BusyboxTelnet, stop_process

pytestmark = pytest.mark.skipif(shutil.which("busybox") is None, reason="needs busybox")
PASSWORD = "s3cret"


@dataclass
class FakePhone:
    model: str = "440HD"
    mac: str = "00908F000001"
    version: str = "2.2.8.61"
    server: PhoneTelnetServer | None = None
    rebooted: threading.Event = field(default_factory=threading.Event)

    def reboot(self) -> None:   # as the phone does: the reboot stops the telnet server
        if self.server is not None:
            self.server.stop()
        self.rebooted.set()


class Client(BusyboxTelnet):
    """busybox telnet on loopback to the server under test."""

    def __init__(self, port: int) -> None:
        super().__init__(subprocess.Popen(self.argv("127.0.0.1", port), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))

    def login(self) -> None:
        self.expect("440HD login: ")
        self.expect("Password: ", self.type("admin"))
        self.expect("[admin@440HD ~]$ ", self.type(PASSWORD))


@pytest.fixture
def telnet() -> Iterator[tuple[PhoneTelnetServer, FakePhone]]:
    phone = FakePhone()
    server = PhoneTelnetServer(phone, "admin", lambda: PASSWORD)
    phone.server = server
    server.start("127.0.0.1", 0)
    yield server, phone
    server.stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    started: list[Client] = []
    yield started
    for client in started:
        stop_process(client.proc)


def test_login_shell_and_exit_closes_the_connection(
        telnet: tuple[PhoneTelnetServer, FakePhone], clients: list[Client]) -> None:
    server, _ = telnet
    assert server.port is not None
    client = Client(server.port)
    clients.append(client)
    client.login()
    text = client.expect("[admin@440HD ~]$ ", client.type("cat /etc/release"))
    assert "HW_TYPE=440HD\r\nBUILD_PROFILE=release\r\nSWVERSION=2.2.8.61\r\n" in text
    client.type("exit")
    assert client.proc.wait(timeout=10) is not None
    assert PASSWORD not in "".join(client.output.since())


def test_wrong_password_is_refused(telnet: tuple[PhoneTelnetServer, FakePhone],
                                   clients: list[Client]) -> None:
    server, _ = telnet
    assert server.port is not None
    client = Client(server.port)
    clients.append(client)
    client.expect("440HD login: ")
    client.expect("Password: ", client.type("admin"))
    text = client.expect("440HD login: ", client.type("nope"))
    assert "Login incorrect" in text and "~]$" not in text


def test_reboot_in_a_session_stops_the_server_and_frees_the_port(
        telnet: tuple[PhoneTelnetServer, FakePhone], clients: list[Client]) -> None:
    server, phone = telnet
    port = server.port
    assert port is not None
    client = Client(port)
    clients.append(client)
    client.login()
    client.expect("Restarting system.", client.type("reboot"))
    assert phone.rebooted.wait(10)
    assert client.proc.wait(timeout=10) is not None   # the connection ended with the server
    assert not server.running and server.port is None
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_the_setting_that_turns_telnet_on() -> None:
    assert telnet_enabled({"management/telnet/enabled": "1"})
    assert not telnet_enabled({"management/telnet/enabled": "0"})
    assert not telnet_enabled({})
