"""The phone driver's test bench: a scripted 400HD on a pty behind ser2net, in namespaces,
with its web interface and SIP agent when a test asks for them (``phone_services``).

``hilt-rd-lab`` is the framework side (192.0.2.1); ``hilt-rd-c0`` the terminal server
(192.0.2.251, raw TCP 7001) and the phone's own address (192.0.2.11: web on 80, SIP on
UDP 5060, telnet on 23). Each test gets a fresh pty, scripted phone and ser2net, so no
byte of one test reaches the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from framework.console import console_for
from framework.netns import TestNetwork, have_privileges
from framework.phone import Phone400HD
from framework.rig.model import PhoneSpec
from tests.console.serial_peer import Ser2netPort, open_pty, ser2net
from tests.phone.scripted_phone import ScriptedPhone
from tests.phone.sip_peer import SipPhone, sip_phone
from tests.phone.web_peer import WebPhone, web_phone

PASSWORD = "Desk-phone-31"
PASSWORD_VAR = "HILT_R_PHONE_PASSWORD"


def phone_spec(**over: Any) -> PhoneSpec:
    spec: dict[str, Any] = {
        "name": "ph1", "model": "440HD", "mac": "00:90:8F:00:00:01", "address": "192.0.2.11",
        "firmware": "2.2.8.61", "power": {"pdu": "pdu1", "outlet": 1},
        "console": {"serial": {"url": "socket://192.0.2.251:7001"}},
        "credentials": {"username": "admin", "password": {"env": PASSWORD_VAR}}}
    spec.update(over)
    return PhoneSpec.model_validate(spec)


@pytest.fixture(scope="module")
def phone_net() -> Iterator[TestNetwork]:
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)
    with TestNetwork("hilt-rd", clients=1) as net:
        net.client(0).ip("addr", "add", "192.0.2.251/24", "dev", "eth0")
        net.client(0).ip("addr", "add", "192.0.2.11/24", "dev", "eth0")
        yield net


PhoneMaker = Callable[..., tuple[ScriptedPhone, Phone400HD]]


@pytest.fixture
def scripted(phone_net: TestNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[PhoneMaker]:
    """Make (scripted phone, driver) pairs; the test body runs in ``hilt-rd-lab``."""
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    made: list[tuple[ScriptedPhone, Phone400HD]] = []
    pty = open_pty()
    server = ser2net(phone_net.client(0), "192.0.2.251", [Ser2netPort(pty.device, 7001)],
                     tmp_path / "ser2net")
    server.__enter__()

    def make(spec: PhoneSpec | None = None, *, dhcp: bool = True,
             peer: ScriptedPhone | None = None, boot_timeout_s: float = 1.5, **phone: Any
             ) -> tuple[ScriptedPhone, Phone400HD]:
        """A driver for a new scripted phone (or for ``peer``, already on the line)."""
        spec = spec or phone_spec()
        peer = peer or ScriptedPhone(pty.master, password=PASSWORD, **phone)
        driver = Phone400HD(spec, peer.outlet,
                            lambda kind: console_for(spec, kind, tmp_path / "consoles"),
                            peer.dhcp if dhcp else None, boot_timeout_s=boot_timeout_s,
                            command_timeout_s=1.5, off_time_s=0.0)
        made.append((peer, driver))
        return peer, driver

    try:
        with phone_net.lab.entered():
            yield make
    finally:
        for peer, driver in made:
            driver.close()
            peer.close()
        server.__exit__(None, None, None)
        pty.close()


@contextmanager
def phone_services(net: TestNetwork, peer: ScriptedPhone, *, web: WebPhone | None = None,
                   sip_port: int | None = 5060) -> Iterator[tuple[WebPhone, SipPhone | None]]:
    """The web interface (port 80) and SIP agent (``sip_port``; None: no agent) of the
    scripted phone ``peer``, at its address 192.0.2.11: reboot.htm restarts it, reset.htm
    restores its defaults and restarts it, check-sync makes it send a DISCOVER."""
    web = web or WebPhone(password=PASSWORD)
    web.port, web.on_reboot, web.on_reset = 80, peer.restart, peer.reset_to_defaults
    with ExitStack() as stack:
        with net.client(0).entered():  # their sockets live in the phone's namespace
            stack.enter_context(web_phone(web, "192.0.2.11"))
            sip = (stack.enter_context(sip_phone("192.0.2.11", sip_port, peer.check_sync))
                   if sip_port is not None else None)
        yield web, sip
