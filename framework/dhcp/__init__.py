"""The DHCP layer: option codecs, a controllable scapy server, a Kea backend, a rogue probe.

- :mod:`framework.dhcp.options`: the options area, RFC 3396 long options, option 43 TLVs.
- :mod:`framework.dhcp.packet`: DHCP messages on the wire (scapy).
- :mod:`framework.dhcp.settings`: :class:`ServerSettings`, the one validated settings
  object both backends take (``DhcpServer(ServerSettings.build(...))``).
- :mod:`framework.dhcp.server`: :class:`DhcpServer`, ours, with per-MAC options and faults
  (its address plan in :mod:`~framework.dhcp.leases`, its replies in :mod:`~framework.dhcp.reply`).
- :mod:`framework.dhcp.kea`: :class:`KeaDhcpServer`, the same contract on ISC Kea
  (its configuration in :mod:`~framework.dhcp.kea_config`).
- :mod:`framework.dhcp.core`: what both backends share (per-MAC state, transcript, evidence).
- :mod:`framework.dhcp.probe`: is another DHCP server answering on the lab network?
- :mod:`framework.dhcp.base`: the :class:`DhcpBackend` contract and :func:`create_backend`.

Importing this package is cheap; the scapy-based modules load when first used.

Imports (layer 10 of pyproject.toml's contracts): framework.rig, framework.resolution
and the bottom modules (records, errors, netns); never framework.services, its
independent sibling, nor anything above (console, power, phone, runner...).
"""

from framework.dhcp.base import BACKENDS, DhcpBackend, create_backend
from framework.dhcp.options import OptionSet

__all__ = ["BACKENDS", "DhcpBackend", "OptionSet", "create_backend"]
