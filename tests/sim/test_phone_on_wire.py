"""A virtual phone on the wire: DHCP against Kea and a scapy-free server, renewal, and
provisioning fetches from servers we did not write (fbtftp, busybox httpd, stdlib
http.server over TLS, pyftpdlib), with the firmware image decision seen from outside.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest
import trustme

from framework.netns import Netns
from framework.sim.image import build_image
from tests.sim.conftest import needs_netns
from tests.sim.harness import (
    LAB_IP,
    LAB_NS,
    ConsoleTap,
    DhcpWatch,
    Kea,
    PhoneEntry,
    Reservation,
    SimLabRun,
    Witnesses,
    lab_run,
    minimal_dhcp_server,
    phones,
    power,
)

pytestmark = [pytest.mark.netns, needs_netns]
IP_TTL, IP_RECVTTL = 2, 12   # <linux/in.h>; the socket module does not export IP_RECVTTL

NEW = "2.2.8.70"
PHONES = [PhoneEntry("ph1", "440HD", "00:90:8F:00:00:01", "192.0.2.11"),
          PhoneEntry("ph2", "405HD", "00:90:8F:00:00:02", "192.0.2.12"),
          PhoneEntry("ph3", "420HD", "00:90:8F:00:00:03", "192.0.2.13"),
          PhoneEntry("ph4", "450HD", "00:90:8F:00:00:04", "192.0.2.14",
                     settings={"provisioning/url_option_value": "150"})]
assert [p.model for p in phones(4, ("440HD", "405HD", "420HD", "450HD"))] == \
    [p.model for p in PHONES]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A lab CA (what the phones trust) and a server certificate for the HTTPS witness."""
    where = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("prov.lab.example", LAB_IP)
    paths = {"ca": where / "ca.pem", "cert": where / "cert.pem", "key": where / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


@pytest.fixture(scope="module")
def lab(start_lab: Callable[..., SimLabRun], tls: dict[str, Path]) -> SimLabRun:
    return start_lab(PHONES, outlets_on_at_start=False, ca_file=str(tls["ca"]))


@pytest.fixture(scope="module")
def kea(start_kea: Callable[..., Kea], lab: SimLabRun) -> Kea:
    return start_kea([])


@pytest.fixture(scope="module")
def servers(witnesses: Witnesses, tls: dict[str, Path], lab: SimLabRun) -> Witnesses:
    witnesses.dns().tftp().http().https(tls["cert"], tls["key"]).busybox_http(8080)
    witnesses.ftp().ftp(user="hilt", password="ftp-pass", port=2121)
    return witnesses


@pytest.fixture(scope="module")
def dhcp_watch(lab: SimLabRun) -> Iterator[DhcpWatch]:
    watch = DhcpWatch()
    yield watch
    watch.stop()


RESERVATIONS: dict[str, Reservation] = {}


def provision_with(kea: Kea, phone: PhoneEntry, options: dict[int, bytes], **kea_args: object
                   ) -> None:
    RESERVATIONS[phone.name] = Reservation(phone.mac, phone.address, options)
    kea.configure(RESERVATIONS.values(), **kea_args)  # type: ignore[arg-type]


def cold_boot(lab: SimLabRun, phone: PhoneEntry) -> ConsoleTap:
    """Power the phone off and on through the PDU, with its serial console attached."""
    tap = ConsoleTap(7000 + lab.index(phone.name), phone.name)
    power(lab, phone.name, False)
    power(lab, phone.name, True)
    return tap


def colour(lab: SimLabRun, phone: PhoneEntry) -> str | None:
    """The setting a served file changed, as the sim's state file records it (the phone
    has no console command to read settings)."""
    value = lab.status()["phones"][phone.name]["settings"].get("test/colour")
    return None if value is None else str(value)


def release(tap: ConsoleTap, lab: SimLabRun) -> dict[str, str]:
    tap.login(lab.password)
    text = tap.run("cat /etc/release")
    return dict(line.split("=", 1) for line in text.split("\r\n") if "=" in line)


# -- DHCP ------------------------------------------------------------------------------------

def test_discover_carries_model_parameters_and_client_id_read_without_scapy(
        lab: SimLabRun) -> None:
    ph4 = PHONES[3]
    tap = ConsoleTap(7000 + lab.index(ph4.name), ph4.name)
    power(lab, ph4.name, True)
    seen = minimal_dhcp_server(ph4.address, timeout=10, mac=ph4.mac)
    tap.wait_text(f"eth0: address {ph4.address}/24")
    tap.close()
    discover = seen["discover"]
    assert discover[60] == b"450HD" and discover[77] == b"450HD"
    assert set(discover[55]) >= {1, 3, 6, 12, 15, 28, 42, 43, 60, 66, 67, 160, 150}
    assert discover[61] == b"\x01" + bytes.fromhex(ph4.mac.replace(":", ""))
    assert seen["request"][50] == socket.inet_aton(ph4.address)
    # The phone took the lease: its kernel answers ping on that address.
    assert lab_run(["busybox", "ping", "-c", "1", "-w", "3", ph4.address]).returncode == 0


def test_lease_from_kea_answers_ping_and_ssh(lab: SimLabRun, kea: Kea) -> None:
    ph1 = PHONES[0]
    provision_with(kea, ph1, {})
    mark = kea.log.mark()
    power(lab, ph1.name, True)
    kea.log.wait_for(lambda lines: any("DHCP4_LEASE_ALLOC" in x and "00:90:8f:00:00:01" in x
                                       and "cid=[01:00:90:8f:00:00:01]" in x
                                       and ph1.address in x for x in lines),
                     10, "Kea to allocate the reserved lease to ph1", since=mark)
    assert lab_run(["busybox", "ping", "-c", "1", "-w", "3", ph1.address]).returncode == 0
    with Netns(LAB_NS).entered():
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(ph1.address, username="admin", password=lab.password,
                       look_for_keys=False, allow_agent=False, timeout=10)
    try:
        _, out, _ = client.exec_command("cat /etc/release", timeout=10)
        assert out.read().decode() == "HW_TYPE=440HD\nBUILD_PROFILE=release\nSWVERSION=2.2.8.61\n"
    finally:
        client.close()


def test_lease_is_renewed_by_unicast_request(lab: SimLabRun, kea: Kea,
                                             dhcp_watch: DhcpWatch) -> None:
    ph1 = PHONES[0]
    provision_with(kea, ph1, {}, valid_lifetime=4, renew_timer=1)
    mark = dhcp_watch.lines.mark()
    tap = cold_boot(lab, ph1)
    try:
        dhcp_watch.wait_discover(ph1.mac, since=mark)
        dhcp_watch.lines.wait_for(
            lambda lines: any(f"IP {ph1.address}.68 > {LAB_IP}.67" in x for x in lines), 10,
            "a unicast renewal REQUEST from ph1", since=mark)
    finally:
        tap.close()
        provision_with(kea, ph1, {})


# -- provisioning fetches ----------------------------------------------------------------------

def serve(www: Path, path: str, data: bytes) -> None:
    target = www / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def upgrade_and_configure(lab: SimLabRun, kea: Kea, phone: PhoneEntry,
                          options: dict[int, bytes]) -> dict[str, str | None]:
    """Boot with these options; wait for install + reboot + provisioning; return /etc/release."""
    provision_with(kea, phone, options)
    tap = cold_boot(lab, phone)
    try:
        tap.wait_text(f"firmware {NEW} installed, rebooting", timeout=15)
        mark = tap.mark()
        tap.wait_text("Provisioning done", timeout=15, since=mark)
        tap.wait_text("login: ", timeout=5, since=mark)
        return release(tap, lab) | {"colour": colour(lab, phone)}
    finally:
        tap.close()


def test_tftp_directory_url_upgrades_firmware_then_applies_config(
        lab: SimLabRun, kea: Kea, servers: Witnesses, www: Path) -> None:
    ph1 = PHONES[0]
    serve(www, "fw/440HD.img", build_image("440HD", NEW, b"\x5a" * 3000))
    serve(www, "fw/00908F000001.cfg",
          b"system/type=440HD\ntest/colour=blue\nvoip/line/0/auth_password=hunter2\n")
    mark = servers.seen.mark()
    after = upgrade_and_configure(lab, kea, ph1, {160: b"tftp://192.0.2.1/fw/"})
    assert after["SWVERSION"] == NEW and after["colour"] == "blue"
    status = lab.status()["phones"]["ph1"]
    assert status["firmware"] == NEW  # the installed version is the sim's persistent state
    assert status["settings"]["voip/line/0/auth_password"] == "***"
    assert servers.names(ph1.address, mark) == [
        ("tftp", "fw/440HD.img"),                   # full download, installed, reboot
        ("tftp", "fw/440HD.img"),                   # header only: same version now
        ("tftp", "fw/00908F000001.cfg")]


def test_http_66_67_from_busybox_httpd(lab: SimLabRun, kea: Kea, servers: Witnesses,
                                        www: Path) -> None:
    ph2 = PHONES[1]
    serve(www, "bb/405.img", build_image("405HD", NEW, b"405" * 500))
    serve(www, "bb/405.cfg", b"system/type=405HD\ntest/colour=green\n")
    mark = servers.seen.mark()
    after = upgrade_and_configure(lab, kea, ph2, {66: b"http://192.0.2.1:8080",
                                                  67: b"bb/405.img;405.cfg"})
    assert after["SWVERSION"] == NEW and after["colour"] == "green"
    assert servers.names(ph2.address, mark) == [
        ("http", "/bb/405.img"), ("http", "/bb/405.img"), ("http", "/bb/405.cfg")]


def test_https_with_host_name_sends_lowercase_name_sni_and_user_agent(
        lab: SimLabRun, kea: Kea, servers: Witnesses, www: Path) -> None:
    ph3 = PHONES[2]
    serve(www, "420HD/420HD.img", build_image("420HD", NEW, b"420" * 500))
    serve(www, "420HD/00908F000003.cfg", b"system/type=420HD\ntest/colour=red\n")
    mark = servers.seen.mark()
    after = upgrade_and_configure(lab, kea, ph3,
                                  {160: b"https://Prov.Lab.Example/<MODEL>/;<MAC>.cfg\x00"})
    assert after["SWVERSION"] == NEW and after["colour"] == "red"
    requests = servers.requests(ph3.address, mark)
    assert [(r.protocol, r.name) for r in requests] == [
        ("https", "/420HD/420HD.img"), ("https", "/420HD/420HD.img"),
        ("https", "/420HD/00908F000003.cfg")]
    assert {(r.host, r.sni) for r in requests} == {("prov.lab.example", "prov.lab.example")}
    assert requests[0].user_agent == "AUDC-IPPhone/2.2.8.61 (420HDG-Rev0; 00908F000003)"
    assert requests[-1].user_agent == f"AUDC-IPPhone/{NEW} (420HDG-Rev0; 00908F000003)"
    dns = [s.name for s in servers.seen.since(mark) if s.protocol == "dns"
           and s.client == ph3.address]
    assert dns and set(dns) == {"prov.lab.example"}


def test_ftp_anonymous_from_option_43_vendor_suboption(
        lab: SimLabRun, kea: Kea, servers: Witnesses, www: Path) -> None:
    ph4 = PHONES[3]
    serve(www, "ftp43/fw.img", build_image("450HD", NEW, b"450" * 500))
    serve(www, "ftp43/cfg.cfg", b"system/type=450HD\ntest/colour=cyan\n")
    url = b"ftp://192.0.2.1/ftp43/fw.img;cfg.cfg"
    mark = servers.seen.mark()
    after = upgrade_and_configure(lab, kea, ph4, {43: bytes([1, len(url)]) + url})
    assert after["SWVERSION"] == NEW and after["colour"] == "cyan"
    assert servers.names(ph4.address, mark) == [
        ("ftp", "ftp43/fw.img"), ("ftp", "ftp43/fw.img"), ("ftp", "ftp43/cfg.cfg")]


def test_ftp_with_user_info_logs_in_as_that_user(lab: SimLabRun, kea: Kea, servers: Witnesses,
                                                  www: Path) -> None:
    ph4 = PHONES[3]
    serve(www, "auth/cfg.cfg", b"system/type=450HD\ntest/colour=magenta\n")
    mark = servers.seen.mark()
    provision_with(kea, ph4, {150: b"ftp://hilt:ftp-pass@192.0.2.1:2121/auth/;cfg.cfg"})
    tap = cold_boot(lab, ph4)
    try:
        tap.wait_text("Provisioning done", timeout=15)
        assert "ftp-pass" not in "".join(tap.output.since())  # the password is never shown
        assert release(tap, lab)["SWVERSION"] == NEW and colour(lab, ph4) == "magenta"
    finally:
        tap.close()
    seen = [(s.protocol, s.name) for s in servers.seen.since(mark) if s.client == ph4.address]
    assert ("ftp-user", "hilt") in seen and ("ftp", "auth/cfg.cfg") in seen
    assert ("ftp", "auth/450HD.img") in seen   # the default firmware name, header checked


def test_wrong_model_image_is_not_installed(lab: SimLabRun, kea: Kea, servers: Witnesses,
                                            www: Path) -> None:
    ph1 = PHONES[0]
    serve(www, "wrong/fw.img", build_image("450HD", "9.9.9.9", b"x" * 100))
    serve(www, "wrong/cfg.cfg", b"system/type=440HD\ntest/colour=white\n")
    provision_with(kea, ph1, {160: b"http://192.0.2.1/wrong/fw.img;cfg.cfg"})
    tap = cold_boot(lab, ph1)
    try:
        tap.wait_text("Provisioning done", timeout=15)
        assert release(tap, lab)["SWVERSION"] == NEW  # what the TFTP test installed
        assert colour(lab, ph1) == "white"
    finally:
        tap.close()


# -- no provisioning source: SIP PnP and the redirect server ----------------------------------

def test_without_options_tries_sip_pnp_on_the_link_and_the_redirect_server(
        lab: SimLabRun, kea: Kea, servers: Witnesses) -> None:
    ph2 = PHONES[1]
    provision_with(kea, ph2, {})
    with Netns(LAB_NS).entered():
        sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sip.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sip.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        sip.bind(("224.0.1.75", 5060))
        sip.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                       socket.inet_aton("224.0.1.75") + socket.inet_aton(LAB_IP))
        sip.settimeout(15)
        mark = servers.seen.mark()
        tap = cold_boot(lab, ph2)
        try:
            message, ancillary, _, sender = sip.recvmsg(4096, socket.CMSG_SPACE(4))
            tap.wait_text("Provisioning done", timeout=15)
        finally:
            tap.close()
    finally:
        sip.close()
    assert sender[0] == ph2.address
    text = message.decode()
    assert text.startswith("SUBSCRIBE sip:00908F000002@224.0.1.75 SIP/2.0\r\n")
    assert 'Event: ua-profile;profile-type="device";vendor="AudioCodes";model="405HD"' in text
    ttl = next(struct.unpack("i", data)[0] for level, kind, data in ancillary
               if kind == IP_TTL)
    assert ttl == 1  # never routed off the lab link
    assert ("dns", "redirect.audiocodes.com") in [
        (s.protocol, s.name) for s in servers.seen.since(mark) if s.client == ph2.address]
