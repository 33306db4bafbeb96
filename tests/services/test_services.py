"""ProvisioningServices: the five servers together, as a phone uses them."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from framework.services import (
    ContentStore,
    Outcome,
    ProvisioningServices,
    RequestLog,
    ServicePorts,
    ServiceStartError,
    Zone,
)
from tests.services.conftest import CLIENT_MACS, LAB_DNS_NAME, PREFIX, SERVER, Wire

pytestmark = pytest.mark.netns

IMAGE = b"AUDC" + bytes(range(256)) * 8


def test_a_phone_like_session_by_name_over_every_protocol(wire: Wire) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    wire.content.serve("/00908F000001.cfg", "system/type=440HD\n")
    ca = str(wire.services.ca_pem_path)

    fetches = [
        wire.curl(1, "-o", "/dev/null", f"tftp://{LAB_DNS_NAME}/440HD.img"),
        wire.curl(1, "-o", "/dev/null", f"http://{LAB_DNS_NAME}/00908F000001.cfg"),
        wire.curl(1, "--cacert", ca, "-o", "/dev/null", f"https://{LAB_DNS_NAME}/440HD.img"),
        wire.curl(1, "-o", "/dev/null", f"ftp://{LAB_DNS_NAME}/00908F000001.cfg"),
    ]

    assert [f.returncode for f in fetches] == [0, 0, 0, 0], [f.stderr for f in fetches]
    expected = [f"tftp://{LAB_DNS_NAME}/440HD.img", f"http://{LAB_DNS_NAME}/00908F000001.cfg",
                f"https://{LAB_DNS_NAME}/440HD.img", f"ftp://{LAB_DNS_NAME}/00908F000001.cfg"]
    fetched = [wire.wait(lambda r, u=u: r.url == u and r.method in ("RRQ", "GET", "RETR"),
                         f"the request for {u}") for u in expected]
    assert all(r.outcome == Outcome.SERVED and r.client_mac == CLIENT_MACS[1] for r in fetched)
    assert [r.bytes_sent for r in fetched] == [len(IMAGE), 18, len(IMAGE), 18]
    lookups = [r for r in wire.records(protocol="dns") if r.method == "A"]
    assert lookups and all(r.host == LAB_DNS_NAME and r.details["answer"] == [SERVER]
                           for r in lookups)
    # the JSONL sink holds exactly these records, one object per line
    logged = [json.loads(line) for line in wire.jsonl.read_text().splitlines()]
    mine = [obj for obj in logged if obj["time"] >= wire.since]
    assert [(o["protocol"], o["method"], o["url"]) for o in mine] == [
        (r.protocol, r.method, r.url) for r in wire.records()]


def test_non_default_ports_appear_in_the_rebuilt_urls(lab_wire: Wire, tmp_path: Path) -> None:
    log, content = RequestLog(), ContentStore()
    content.serve("/440HD.img", IMAGE)
    extra = ProvisioningServices(SERVER, netns=f"{PREFIX}-lab", state_dir=tmp_path, log=log,
                                 content=content, zone=Zone(),
                                 ports=ServicePorts(dns=None, tftp=0, http=0, https=None, ftp=0))
    with extra:
        tftp_url = extra.url("tftp", "/440HD.img")
        http_url = extra.url("http", "/440HD.img")
        ftp_url = extra.url("ftp", "/440HD.img")
        results = [lab_wire.curl(0, "-o", "/dev/null", url)
                   for url in (tftp_url, http_url, ftp_url)]
        assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
        ports = {p: port for p, (_, port) in extra.endpoints.items()}
        assert tftp_url == f"tftp://{SERVER}:{ports['tftp']}/440HD.img"
        urls = {log.wait_for(lambda r, p=p: r.protocol == p and r.bytes_sent > 0, timeout=10,
                             what=f"the {p} download").url for p in ("tftp", "http", "ftp")}
    assert urls == {tftp_url, http_url, ftp_url}


def test_a_port_conflict_names_the_service_and_stops_the_others(lab_wire: Wire,
                                                               tmp_path: Path) -> None:
    clash = ProvisioningServices(SERVER, netns=f"{PREFIX}-lab", state_dir=tmp_path,
                                 log=RequestLog(), content=ContentStore(), zone=Zone(),
                                 ports=ServicePorts(dns=0, tftp=69, http=None, https=None,
                                                    ftp=None))
    assert clash.dns is not None

    with pytest.raises(ServiceStartError, match=rf"TFTP cannot listen on {SERVER}:69: "
                                                "Address already in use"):
        clash.start()

    dns_port = clash.dns.port
    with lab_wire.net.lab.entered():
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with probe:
        probe.bind((SERVER, dns_port))  # the DNS server that did start was stopped again


def test_stop_releases_every_port_for_a_restart(lab_wire: Wire, tmp_path: Path) -> None:
    def services(ports: ServicePorts) -> ProvisioningServices:
        return ProvisioningServices(SERVER, netns=f"{PREFIX}-lab", state_dir=tmp_path,
                                    log=RequestLog(), content=ContentStore(), zone=Zone(),
                                    ports=ports)

    first = services(ServicePorts.ephemeral()).start()
    bound = {p: port for p, (_, port) in first.endpoints.items()}
    first.stop()

    again = services(ServicePorts(**bound)).start()
    assert {p: port for p, (_, port) in again.endpoints.items()} == bound
    again.stop()


@pytest.mark.parametrize(("address", "ports", "message"), [
    ("192.0.2.300", ServicePorts(), "'192.0.2.300' is not an IP address"),
    (SERVER, ServicePorts(tftp=70000), "TFTP: port 70000 is not in 0..65535"),
])
def test_bad_configuration_is_named(address: str, ports: ServicePorts, message: str,
                                    tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        ProvisioningServices(address, state_dir=tmp_path, log=RequestLog(),
                             content=ContentStore(), zone=Zone(), ports=ports)
