"""Validated DHCP server settings, shared by the scapy and Kea backends.

Configuration is checked on construction (STYLE.md, labgrid habit): a bad address, MAC
or pool fails at once with :class:`DhcpConfigError` naming the setting and the value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from framework.dhcp.options import OptionSet
from framework.dhcp.packet import DhcpConfigError, normalise_mac, parse_ipv4

# Options the server owns in every reply; an option set may not override them.
SERVER_OWNED = frozenset({52, 53, 54})


@dataclass(frozen=True)
class ServerSettings:
    """Where a DHCP server listens and what it hands out (RFC 2131 4.3.1 address choice)."""

    interface: str
    server_ip: ipaddress.IPv4Address
    network: ipaddress.IPv4Network
    pool: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None
    fixed: Mapping[str, ipaddress.IPv4Address]
    allowlist: frozenset[str]
    router: ipaddress.IPv4Address | None
    dns: tuple[ipaddress.IPv4Address, ...]
    domain: str | None
    lease_time: int
    netns: str | None

    @classmethod
    def build(
        cls,
        interface: str,
        server_ip: str,
        *,
        netmask: str = "255.255.255.0",
        pool: tuple[str, str] | None = None,
        fixed: Mapping[str, str] | None = None,
        allowlist: Iterable[str] = (),
        router: str | None = None,
        dns: Iterable[str] = (),
        domain: str | None = None,
        lease_time: int = 600,
        netns: str | None = None,
    ) -> ServerSettings:
        if not isinstance(interface, str) or not interface or len(interface) > 15 or "/" in interface:
            raise DhcpConfigError(f"interface {interface!r}: not a Linux interface name")
        ip = parse_ipv4(server_ip, where="server_ip")
        try:
            network = ipaddress.IPv4Network(f"{ip}/{netmask}", strict=False)
        except ValueError:
            raise DhcpConfigError(f"netmask {netmask!r}: not an IPv4 netmask") from None

        def inside(value: str, where: str) -> ipaddress.IPv4Address:
            address = parse_ipv4(value, where=where)
            if address not in network:
                raise DhcpConfigError(f"{where} {value}: outside the server's subnet {network}")
            return address

        pool_range = None
        if pool is not None:
            if not isinstance(pool, tuple | list) or len(pool) != 2:
                raise DhcpConfigError(f"pool {pool!r}: expected (first, last) addresses")
            start, end = inside(pool[0], "pool start"), inside(pool[1], "pool end")
            if int(end) < int(start):
                raise DhcpConfigError(f"pool {pool[0]}..{pool[1]}: end is before start")
            if start <= ip <= end:
                raise DhcpConfigError(f"pool {pool[0]}..{pool[1]}: contains the server's own address {ip}")
            pool_range = (start, end)
        fixed_map: dict[str, ipaddress.IPv4Address] = {}
        owner: dict[ipaddress.IPv4Address, str] = {}
        for mac, value in (fixed or {}).items():
            key = normalise_mac(mac, where="fixed address MAC")
            address = inside(value, f"fixed address for {key}")
            if address == ip:
                raise DhcpConfigError(f"fixed address for {key} {value}: is the server's own address")
            if address in owner:
                raise DhcpConfigError(f"fixed address {address} given to both {owner[address]} and {key}")
            owner[address] = key
            fixed_map[key] = address
        if isinstance(allowlist, str):
            raise DhcpConfigError(f"allowlist {allowlist!r}: expected a list of MACs, not one string")
        allowed = frozenset(normalise_mac(m, where="allowlist MAC") for m in allowlist)
        if isinstance(dns, str):
            raise DhcpConfigError(f"dns {dns!r}: expected a list of addresses, not one string")
        if domain is not None and (not domain.isascii() or not domain or len(domain) > 255):
            raise DhcpConfigError(f"domain {domain!r}: expected 1..255 ASCII characters")
        if not isinstance(lease_time, int) or isinstance(lease_time, bool) or lease_time <= 0:
            raise DhcpConfigError(f"lease_time {lease_time!r}: expected a positive number of seconds")
        return cls(
            interface=interface,
            server_ip=ip,
            network=network,
            pool=pool_range,
            fixed=fixed_map,
            allowlist=allowed,
            router=inside(router, "router") if router is not None else None,
            dns=tuple(parse_ipv4(d, where="dns server") for d in dns),
            domain=domain,
            lease_time=lease_time,
            netns=netns,
        )

    def where(self) -> str:
        return f"{self.interface} (netns {self.netns})" if self.netns else self.interface

    def to_dict(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "netns": self.netns,
            "server_ip": str(self.server_ip),
            "network": str(self.network),
            "pool": [str(a) for a in self.pool] if self.pool else None,
            "fixed": {m: str(a) for m, a in sorted(self.fixed.items())},
            "router": str(self.router) if self.router else None,
            "dns": [str(d) for d in self.dns],
            "domain": self.domain,
            "lease_time": self.lease_time,
        }


def check_option_set(mac: str, options: Mapping[int, bytes]) -> tuple[str, OptionSet]:
    """(normalised MAC, option set) or :class:`DhcpConfigError` naming the MAC and the bad entry."""
    key = normalise_mac(mac)
    if not isinstance(options, Mapping):
        raise DhcpConfigError(f"option set for {key}: expected a mapping code -> bytes")
    checked: OptionSet = {}
    for code, value in options.items():
        if not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= 254:
            raise DhcpConfigError(f"option set for {key}: code {code!r} is not 1..254")
        if code in SERVER_OWNED:
            raise DhcpConfigError(f"option set for {key}: option {code} is the server's to set")
        if not isinstance(value, bytes | bytearray):
            raise DhcpConfigError(
                f"option set for {key}: option {code} must be bytes, got {type(value).__name__}"
            )
        checked[code] = bytes(value)
    return key, checked
