"""Where a service's sockets and threads live: a named network namespace or the caller's.

Every server here binds its sockets and starts its threads inside ``in_namespace(netns)``.
``setns(2)`` switches only the calling thread, and sockets, threads and forked children
created from it stay in that namespace (LAB-NOTES.md, "Network namespaces"), so a server
started this way keeps serving inside the namespace after the block ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator

from framework.errors import HilError
from framework.netns import Netns


@contextlib.contextmanager
def in_namespace(netns: str | None) -> Iterator[None]:
    """Run the block in network namespace ``netns``, or where the caller is if ``None``."""
    if netns is None:
        yield
        return
    with Netns(netns).entered():
        yield


class ServiceStartError(HilError, RuntimeError):
    """A provisioning service could not start; the message names service, address, why."""


def check_endpoint(service: str, address: str, port: int) -> None:
    """Raise ValueError naming the service when ``address``/``port`` cannot be bound."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{service}: {address!r} is not an IP address") from None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"{service}: port {port!r} is not in 0..65535")
