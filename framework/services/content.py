"""What the provisioning services answer for each path: serve, not-found, or cut.

One ``ContentStore`` backs TFTP, HTTP(S) and FTP. A policy is keyed by path and may be
narrowed to a host (as the phone named it) and/or a protocol; the most specific one
wins. Unknown paths are not found, so a test states exactly which files exist. Policies
can change while the servers run (e.g. make the firmware disappear between two boots).

Usage::

    content = ContentStore()
    content.serve("/440HD.img", image_bytes)
    content.serve("/00908f000001.cfg", file=Path("cfg/ph1.cfg"), protocol="http")
    content.cut("/420HD.img", after=4096, data=big_image)     # a transfer dies mid-way
    content.not_found("/440HD.img", host="backup.lab")         # only under that name
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from framework.errors import HilError
from framework.services.log import PROTOCOLS

PolicyKind = Literal["serve", "not-found", "cut", "silent"]


@dataclass(frozen=True)
class Serve:
    """Serve these bytes, or the current content of this file."""

    data: bytes | None = None
    file: Path | None = None


@dataclass(frozen=True)
class NotFound:
    """Answer "no such file" (TFTP error 1, HTTP 404, FTP 550). The default."""


@dataclass(frozen=True)
class Cut:
    """Start serving the content, then cut the transfer after ``after`` bytes.

    The client is told the full size (tsize, Content-Length, SIZE) and then the transfer
    breaks: HTTP closes the connection, FTP aborts the data connection (426), TFTP sends
    an error packet after the last whole block that fits in ``after`` bytes.
    """

    after: int
    data: bytes | None = None
    file: Path | None = None


@dataclass(frozen=True)
class Silent:
    """Take the request and never answer it (a server that has gone quiet): TFTP records
    the RRQ and sends nothing, HTTP(S) reads the request and holds the connection without
    a byte until the client gives up. FTP, which has no such path, answers not-found."""


Policy = Serve | NotFound | Cut | Silent


class ContentUnavailable(HilError, FileNotFoundError):
    """A path resolves to not-found (policy, default, or a served file that vanished)."""


@dataclass(frozen=True)
class Resolved:
    """The answer for one request: what to do, the full size, and where the bytes are."""

    kind: PolicyKind
    path: str
    size: int = 0
    cut_after: int | None = None
    data: bytes | None = None
    file: Path | None = None
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.kind in ("serve", "cut")

    @property
    def deliverable(self) -> int:
        """How many bytes the client will get before the cut (the size if not cut)."""
        if self.cut_after is None:
            return self.size
        return min(self.size, self.cut_after)

    def open(self) -> BinaryIO:
        """The content, readable from the start; raises ContentUnavailable if not found."""
        if not self.found:
            raise ContentUnavailable(self.reason or f"{self.path}: not found")
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.file is not None
        try:
            return self.file.open("rb")
        except OSError as exc:
            raise ContentUnavailable(f"{self.path}: served file {str(self.file)!r} cannot be "
                                     f"read: {exc.strerror}") from exc

    def read_all(self) -> bytes:
        """All the content bytes (whole size; the server applies the cut)."""
        with self.open() as stream:
            return stream.read()


def normalize_path(path: str) -> str:
    """The store's key for a requested path: absolute, ``/`` separated.

    A TFTP filename ``440HD.img`` and an HTTP path ``/440HD.img`` name the same file.
    """
    if not path.startswith("/"):
        path = "/" + path
    return path


def _normalize_host(host: str | None) -> str | None:
    if host is None:
        return None
    host = host.strip().rstrip(".").lower()
    if host.startswith("["):  # [v6]:port
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:  # name:port
        host = host.split(":", 1)[0]
    return host


def _check_protocol(protocol: str | None) -> str | None:
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
    return protocol


_Key = tuple[str | None, str | None, str]  # (protocol, host, path)


class ContentStore:
    """Thread-safe per-path response policies, changeable while servers run."""

    def __init__(self, client_filter: Callable[[str], bool] | None = None) -> None:
        self._lock = threading.Lock()
        self._policies: dict[_Key, Policy] = {}
        #: client IP -> whether it may be served at all (None: everyone)
        self.client_filter = client_filter

    # --- setting policies ------------------------------------------------------------

    def set(self, path: str, policy: Policy, *, host: str | None = None,
            protocol: str | None = None) -> None:
        """Set the policy for ``path`` (optionally only for ``host`` and/or ``protocol``)."""
        if not isinstance(path, str) or not path:
            raise ValueError(f"content path must be a non-empty string, got {path!r}")
        if isinstance(policy, Serve | Cut):
            if (policy.data is None) == (policy.file is None):
                raise ValueError(f"{path}: give exactly one of data= or file= to serve")
            if policy.file is not None and not Path(policy.file).is_file():
                raise ValueError(f"{path}: served file {str(policy.file)!r} does not exist "
                                 f"or is not a regular file")
        if isinstance(policy, Cut) and (not isinstance(policy.after, int) or policy.after < 0):
            raise ValueError(f"{path}: cut after must be a byte count >= 0, got {policy.after!r}")
        key = (_check_protocol(protocol), _normalize_host(host), normalize_path(path))
        with self._lock:
            self._policies[key] = policy

    def serve(self, path: str, data: bytes | str | None = None, *, file: str | Path | None = None,
              host: str | None = None, protocol: str | None = None) -> None:
        """Serve ``data`` (bytes, or text as UTF-8) or the content of ``file`` at ``path``."""
        if isinstance(data, str):
            data = data.encode()
        self.set(path, Serve(data=data, file=Path(file) if file is not None else None),
                 host=host, protocol=protocol)

    def not_found(self, path: str, *, host: str | None = None,
                  protocol: str | None = None) -> None:
        """Answer not-found for ``path`` (overrides a broader serve policy)."""
        self.set(path, NotFound(), host=host, protocol=protocol)

    def cut(self, path: str, after: int, data: bytes | str | None = None, *,
            file: str | Path | None = None, host: str | None = None,
            protocol: str | None = None) -> None:
        """Serve ``data``/``file`` at ``path`` but cut the transfer after ``after`` bytes."""
        if isinstance(data, str):
            data = data.encode()
        self.set(path, Cut(after=after, data=data, file=Path(file) if file is not None else None),
                 host=host, protocol=protocol)

    def silent(self, path: str, *, host: str | None = None,
               protocol: str | None = None) -> None:
        """Take requests for ``path`` and never answer them."""
        self.set(path, Silent(), host=host, protocol=protocol)

    def remove(self, path: str, *, host: str | None = None, protocol: str | None = None) -> None:
        """Forget the policy set for exactly this (path, host, protocol)."""
        key = (_check_protocol(protocol), _normalize_host(host), normalize_path(path))
        with self._lock:
            self._policies.pop(key, None)

    def clear(self) -> None:
        """Forget every policy: everything is not-found again."""
        with self._lock:
            self._policies.clear()

    # --- lookup ----------------------------------------------------------------------

    def policy_for(self, path: str, *, host: str | None = None,
                   protocol: str | None = None) -> Policy:
        """The policy that applies: (protocol, host) > host > protocol > any, else NotFound."""
        p = normalize_path(path)
        h = _normalize_host(host)
        with self._lock:
            for key in ((protocol, h, p), (None, h, p), (protocol, None, p), (None, None, p)):
                if key in self._policies:
                    return self._policies[key]
        return NotFound()

    def lookup(self, path: str, *, host: str | None = None,
               protocol: str | None = None, client: str | None = None) -> Resolved:
        """Resolve a request: what to do and the content's size. Never raises for a
        missing file: a served file that vanished resolves to not-found with a reason.

        With a ``client_filter`` set, a client it does not accept gets nothing (safety:
        only the rig's phones are served, ARCHITECTURE.md)."""
        key = normalize_path(path)
        accept = self.client_filter
        if accept is not None and (client is None or not accept(client)):
            return Resolved(kind="not-found", path=key,
                            reason=f"{key}: refused: client {client} is not a phone of the rig")
        policy = self.policy_for(path, host=host, protocol=protocol)
        if isinstance(policy, NotFound):
            return Resolved(kind="not-found", path=key, reason=f"{key}: not found")
        if isinstance(policy, Silent):
            return Resolved(kind="silent", path=key, reason=f"{key}: silent (no answer)")
        cut_after = policy.after if isinstance(policy, Cut) else None
        if policy.data is not None:
            size = len(policy.data)
        else:
            assert policy.file is not None
            try:
                size = os.stat(policy.file).st_size
            except OSError as exc:
                return Resolved(kind="not-found", path=key,
                                reason=f"{key}: served file {str(policy.file)!r} is gone "
                                       f"({exc.strerror})")
        kind: PolicyKind = "cut" if cut_after is not None and cut_after < size else "serve"
        return Resolved(kind=kind, path=key, size=size,
                        cut_after=cut_after if kind == "cut" else None,
                        data=policy.data, file=policy.file)

    def paths(self, *, host: str | None = None, protocol: str | None = None) -> list[str]:
        """The paths that resolve to content (serve or cut) for this host/protocol."""
        with self._lock:
            candidates = sorted({key[2] for key in self._policies})
        return [p for p in candidates
                if not isinstance(self.policy_for(p, host=host, protocol=protocol), NotFound)]
