"""Where a service's sockets and threads live: a named network namespace or the caller's.

Every server here binds its sockets and starts its threads inside ``in_namespace(netns)``.
``setns(2)`` switches only the calling thread, and sockets, threads and forked children
created from it stay in that namespace (LAB-NOTES.md, "Network namespaces"), so a server
started this way keeps serving inside the namespace after the block ends.

``RecordingServer`` is what the DNS, TFTP, HTTP(S) and FTP servers share: one checked
address and port, the namespace they start in, the log their requests land in, and the
``with`` block that starts and stops them.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Self

from framework.errors import HilError
from framework.netns import Netns

if TYPE_CHECKING:
    from framework.services.log import RequestLog


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


class RecordingServer:
    """A recording server on one address: ``start`` binds it in ``netns`` (port 0 picks a
    free port) and returns it, ``stop`` releases the port; a ``with`` block does both.

    ``protocol`` names it (``"tftp"``...), in its records and in its errors.
    """

    protocol: ClassVar[str]

    def __init__(self, address: str, port: int, *, log: RequestLog, netns: str | None) -> None:
        check_endpoint(self.protocol.upper(), address, port)
        self.address = address
        self.requested_port = port
        self.log = log
        self.netns = netns

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
