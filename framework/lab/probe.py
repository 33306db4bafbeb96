"""Health probes of the lab's own provisioning services (DNS, TFTP, HTTP(S), FTP).

A firmware verdict is given only when the rig worked: before each verdict the runner asks
whether the services the case needed still answer. A probe must never mistake a loaded
lab for a dead one (that marks good cases *broken*).
"""

from __future__ import annotations

from typing import Any

from framework.lab.catalogue import LAB_NAME


class ServiceProbe:
    """Probes the lab services on ``lab_ip`` on the wire."""

    def __init__(self, lab_ip: str) -> None:
        self.lab_ip = lab_ip

    def fault(self, needed: set[str] | None = None,
              alive: set[str] | frozenset[str] = frozenset()) -> str | None:
        """A one-line fault of the first ``needed`` service (default: all) that does not
        answer, else None. Protocols in ``alive`` are not probed: a service that answered
        a phone within the case is alive."""
        needed = (needed if needed is not None else {"dns", "tftp", "http", "https", "ftp"})
        return self._fault(set(needed) - set(alive))

    def _fault(self, needed: set[str]) -> str | None:
        import socket

        if "dns" in needed:
            fault = self._dns_fault()
            if fault:
                return fault
        for name, port in (("http", 80), ("https", 443), ("ftp", 21)):
            if name not in needed:
                continue
            try:
                socket.create_connection((self.lab_ip, port), timeout=1.0).close()
            except OSError as exc:
                return (f"lab {name.upper()} on {self.lab_ip}:{port} refuses connections "
                        f"({exc.strerror})")
        if "tftp" in needed:
            return self._tftp_fault()
        return None

    def _dns_fault(self, attempts: int = 3) -> str | None:
        """A fault only when the lab DNS fails several probes (a loaded host is slow, not
        broken)."""
        from dnslib import DNSRecord

        fault = None
        for _ in range(attempts):
            fault = self._dns_probe(DNSRecord)
            if fault is None:
                return None
        return fault

    def _dns_probe(self, DNSRecord: Any) -> str | None:
        try:
            q = DNSRecord.question(LAB_NAME)
            reply = DNSRecord.parse(q.send(self.lab_ip, 53, timeout=1.0))
            if not reply.rr:
                return f"lab DNS on {self.lab_ip} does not resolve {LAB_NAME}"
        except (OSError, Exception) as exc:  # dnslib raises plain exceptions on garbage
            return f"lab DNS on {self.lab_ip}:53 does not answer ({exc.__class__.__name__})"
        return None

    def _tftp_fault(self, attempts: int = 3) -> str | None:
        fault = None
        for _ in range(attempts):
            fault = self._tftp_probe()
            if fault is None:
                return None
        return fault

    def _tftp_probe(self) -> str | None:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(1.0)
            try:  # an RRQ for a name nobody serves: any TFTP reply proves the server is up
                udp.sendto(b"\x00\x01.hil-health-check\x00octet\x00", (self.lab_ip, 69))
                data, _ = udp.recvfrom(1024)
                if data[:2] not in (b"\x00\x05", b"\x00\x03", b"\x00\x06"):
                    return f"lab TFTP on {self.lab_ip}:69 answers garbage"
            except OSError:
                return f"lab TFTP on {self.lab_ip}:69 does not answer"
        return None
