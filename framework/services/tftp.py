"""Recording TFTP server (RFC 1350 reads, RFC 2347-2349 options) built on fbtftp.

TFTP is the phone's default: an Option 66 host without a protocol yields
``tftp://<host>/<hardware type>.img`` and ``tftp://<host>/<mac>.cfg`` ("When protocol is
not specified, tftp is added as the default protocol", Admin Manual 2.2.8, 10.2.2,
Table 10-2). Each record rebuilds that URL from the RRQ filename and the host the phone
resolved through our DNS.

fbtftp forks one process per transfer (LAB-NOTES.md, "Provisioning services"). How the
records still reach the parent's ``RequestLog``:

- The parent (the server thread) parses and validates every datagram on port 69 itself,
  resolves the content policy, and forks the transfer process with the bytes to send.
  Malformed datagrams and write requests never fork: they are answered with a TFTP
  error and logged at once.
- The child first closes every inherited descriptor except one shared report pipe (so
  it cannot hold other services' sockets open), turns logging off (a fork of a threaded
  process must not take locks another thread may hold), runs fbtftp's transfer loop,
  and writes one JSON line (< PIPE_BUF, so atomic) with the outcome to the pipe before
  ``os._exit``.
- The parent's selector watches the listening socket, the report pipe, a wake-up pipe
  (for ``stop``) and a pidfd per child. A report becomes one ``RequestRecord`` at once;
  a child that exits without a report still yields an ``error`` record.
- An RRQ the client re-sent while its first one was being served (same address, port
  and file, arrived before that transfer ended, by the kernel's receive timestamp) is
  counted in that transfer's ``details["duplicate_rrqs"]``, not served twice.

So there is exactly one record per request, timed when the RRQ arrived, written when the
transfer ends. The fork start method is pinned (fbtftp handlers are
``multiprocessing.Process``).

This module is the server loop (port 69, the selector, the children's reports); what one
transfer is (option negotiation, the forked handler, the record it becomes) is
framework.services.tftp_transfer.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import selectors
import socket
import struct
import threading
import time
from typing import Self

from fbtftp.base_server import BaseServer

from framework.services.content import ContentStore, ContentUnavailable, Resolved
from framework.services.log import Outcome, RequestLog, RequestRecord, build_url
from framework.services.namespace import RecordingServer, ServiceStartError, in_namespace
from framework.services.tftp_transfer import (
    ERR_ACCESS,
    ERR_ILLEGAL,
    MODES,
    OPCODE_ERROR,
    OPCODE_RRQ,
    OPCODE_WRQ,
    Transfer,
    TransferHandler,
    host_source,
    negotiate,
    transfer_record,
)

logger = logging.getLogger(__name__)

SO_TIMESTAMP = 29  # Linux <asm-generic/socket.h>; not exported by Python's socket module
_TIMESTAMP_SPACE = socket.CMSG_SPACE(16)  # struct timeval on 64-bit Linux


class _LabTftpServer(BaseServer):
    """fbtftp's server loop, with validated request parsing and an event-driven stop."""

    def __init__(self, owner: TftpServer) -> None:
        super().__init__(owner.address, owner.requested_port, owner.retries, owner.timeout)
        self._owner = owner
        self._ids = itertools.count(1)
        self._pending: dict[int, Transfer] = {}
        self._by_peer: dict[tuple[str, int], Transfer] = {}  # latest transfer per client
        self._report_buffer = b""
        self._report_r, self._report_w = os.pipe()
        os.set_blocking(self._report_r, False)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        # When the datagram arrived, not when this thread got to it: the record's time,
        # and what tells a retransmitted RRQ read late from a new request.
        self._listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        self._selector.modify(self._listener, selectors.EVENT_READ, "request")
        self._selector.register(self._report_r, selectors.EVENT_READ, "report")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def restart_stats_timer(self, run_once: bool = False) -> None:
        """No statistics thread: each transfer is recorded in the RequestLog instead."""

    def close(self) -> None:
        """Ask the loop to stop (from any thread); wakes the selector at once."""
        self._should_stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def run_once(self) -> None:
        for key, _mask in self._selector.select():
            if key.data == "request":
                self.on_new_data()
            elif key.data == "report":
                self._read_reports()
            elif key.data == "wake":
                try:
                    os.read(self._wake_r, 64)
                except BlockingIOError:
                    pass
            elif isinstance(key.data, Transfer):
                self._on_child_exit(key.data)

    def run(self, run_once: bool = False) -> None:
        try:
            while not self._should_stop:
                self.run_once()
        finally:
            self._abort_pending()
            self._selector.close()
            self._listener.close()
            for fd in (self._report_r, self._report_w, self._wake_r, self._wake_w):
                os.close(fd)

    # --- requests --------------------------------------------------------------------

    def on_new_data(self) -> None:
        try:
            data, ancillary, _flags, peer = self._listener.recvmsg(65536, _TIMESTAMP_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        received = _kernel_timestamp(ancillary) or time.time()
        peer = (str(peer[0]), int(peer[1]))
        try:
            self._handle_datagram(data, peer, received)
        except Exception as exc:  # a bug must not kill the server: log it as evidence
            logger.exception("TFTP request from %s:%d could not be handled", *peer)
            self._record_bad(peer, received, data, f"internal error: {type(exc).__name__}: "
                             f"{exc}", method="RRQ")

    def _handle_datagram(self, data: bytes, peer: tuple[str, int], received: float) -> None:
        if len(data) < 2:
            self._reject(peer, received, data, f"{len(data)}-byte datagram is too short for "
                         "a TFTP opcode", ERR_ILLEGAL, method="?")
            return
        opcode = struct.unpack("!H", data[:2])[0]
        if opcode == OPCODE_WRQ:
            filename = data[2:].split(b"\x00", 1)[0].decode("latin-1")
            self._reject(peer, received, data, "write request (WRQ): this server only serves "
                         "reads", ERR_ACCESS, method="WRQ", filename=filename,
                         outcome=Outcome.DENIED)
            return
        if opcode != OPCODE_RRQ:
            self._reject(peer, received, data, f"opcode {opcode} on the request port "
                         "(expected RRQ=1)", ERR_ILLEGAL, method=f"opcode-{opcode}",
                         reply=opcode != OPCODE_ERROR)
            return
        fields = data[2:].split(b"\x00")
        if fields[-1] != b"":
            self._reject(peer, received, data, "RRQ is not NUL-terminated", ERR_ILLEGAL,
                         method="RRQ")
            return
        tokens = [f.decode("latin-1") for f in fields[:-1]]
        if len(tokens) < 2 or len(tokens) % 2:
            self._reject(peer, received, data, f"RRQ has {len(tokens)} fields; expected "
                         "filename, mode and option/value pairs", ERR_ILLEGAL, method="RRQ",
                         filename=tokens[0] if tokens else None)
            return
        filename, mode = tokens[0], tokens[1].lower()
        if not filename:
            self._reject(peer, received, data, "RRQ with an empty filename", ERR_ILLEGAL,
                         method="RRQ")
            return
        if mode not in MODES:
            self._reject(peer, received, data, f"unknown transfer mode {tokens[1]!r}",
                         ERR_ILLEGAL, method="RRQ", filename=filename)
            return
        sent = {tokens[i].lower(): tokens[i + 1] for i in range(2, len(tokens), 2)}
        earlier = self._by_peer.get(peer)
        if (earlier is not None and earlier.filename == filename
                and (earlier.finished_at is None or received < earlier.finished_at)):
            # The client re-sent its RRQ before our first answer reached it (RFC 1350:
            # the requester retransmits on timeout); it arrived while that transfer ran.
            # One request, one transfer, one record.
            if not earlier.recorded:
                earlier.extra["duplicate_rrqs"] = earlier.extra.get("duplicate_rrqs", 0) + 1
            else:
                logger.debug("TFTP: ignored %s:%d's retransmitted RRQ for %r", *peer, filename)
            return
        self._start_transfer(peer, received, filename, mode, sent)

    def _start_transfer(self, peer: tuple[str, int], received: float, filename: str,
                        mode: str, sent: dict[str, str]) -> None:
        owner = self._owner
        handler_options, ignored = negotiate(mode, sent, timeout=self._timeout,
                                             retries=self._retries)
        host = owner.log.host_for(peer[0], owner.address)
        resolved = owner.content.lookup(filename, host=host, protocol="tftp", client=peer[0])
        if resolved.kind == "silent":  # each RRQ (retransmissions too) recorded, none answered
            self._record_bad(peer, received, b"", resolved.reason, method="RRQ",
                             filename=filename)
            return
        content: bytes | None = None
        if resolved.found:
            try:
                content = resolved.read_all()
            except ContentUnavailable as exc:
                resolved = Resolved(kind="not-found", path=resolved.path, reason=str(exc))
        transfer = Transfer(id=next(self._ids), received=received, peer=peer,
                             filename=filename, mode=mode, options=sent, ignored=ignored,
                             resolved=resolved, host=host)
        handler = TransferHandler((self._address, self._port), peer, filename,
                                   handler_options, transfer, content, self._report_w)
        handler.daemon = True
        handler.start()
        transfer.process = handler
        # Exit is watched through a pidfd, not multiprocessing's sentinel: the child
        # closes its inherited descriptors, the sentinel's pipe end among them.
        assert handler.pid is not None
        transfer.pidfd = os.pidfd_open(handler.pid)
        self._pending[transfer.id] = transfer
        self._forget_finished(received)
        self._by_peer[peer] = transfer
        self._selector.register(transfer.pidfd, selectors.EVENT_READ, transfer)

    def _forget_finished(self, now: float) -> None:
        stale = [peer for peer, t in self._by_peer.items()
                 if t.finished_at is not None and t.finished_at < now - 60]
        for peer in stale:
            del self._by_peer[peer]

    def _reject(self, peer: tuple[str, int], received: float, data: bytes, problem: str,
                code: int, *, method: str, filename: str | None = None,
                outcome: Outcome = Outcome.ERROR, reply: bool = True) -> None:
        if reply:
            message = problem.encode("latin-1", "replace")[:200]
            try:
                self._listener.sendto(struct.pack("!HH", OPCODE_ERROR, code) + message + b"\x00",
                                      peer)
            except OSError as exc:
                problem += f" (error reply failed: {exc.strerror})"
        self._record_bad(peer, received, data, problem, method=method, filename=filename,
                         outcome=outcome, status=code if reply else None)

    def _record_bad(self, peer: tuple[str, int], received: float, data: bytes, problem: str,
                    *, method: str, filename: str | None = None,
                    outcome: Outcome = Outcome.ERROR, status: int | None = None) -> None:
        owner = self._owner
        host = owner.log.host_for(peer[0], owner.address)
        owner.log.append(RequestRecord(
            time=received, protocol="tftp", client_ip=peer[0], client_port=peer[1],
            server_ip=owner.address, server_port=self.port, host=host,
            path=filename or "", url=build_url("tftp", host, self.port, filename)
            if filename else None, method=method, outcome=outcome, status=status,
            details={"error": problem, "datagram_length": len(data),
                     "datagram_head": data[:48].hex(),
                     "host_from": host_source(host, owner.address)}))

    # --- completion ------------------------------------------------------------------

    def _read_reports(self) -> None:
        while True:
            try:
                chunk = os.read(self._report_r, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._report_buffer += chunk
        *lines, self._report_buffer = self._report_buffer.split(b"\n")
        for line in lines:
            try:
                report = json.loads(line)
                transfer = self._pending[int(report["id"])]
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("TFTP: unreadable transfer report %r (%r)", line[:200], exc)
                continue
            transfer.report = report
            self._record(transfer)

    def _on_child_exit(self, transfer: Transfer) -> None:
        assert transfer.process is not None
        if transfer.pidfd is not None:
            self._selector.unregister(transfer.pidfd)
            os.close(transfer.pidfd)
            transfer.pidfd = None
        self._read_reports()
        transfer.process.join(timeout=5)
        exitcode = transfer.process.exitcode
        if not transfer.recorded:
            transfer.extra["error"] = (f"transfer process exited (code {exitcode}) "
                                       "without reporting")
            self._record(transfer)
        try:
            transfer.process.close()
        except ValueError:
            pass
        self._pending.pop(transfer.id, None)

    def _abort_pending(self) -> None:
        for transfer in list(self._pending.values()):
            process = transfer.process
            if process is not None and process.is_alive():
                process.terminate()
                process.join(timeout=2)
            self._read_reports()
            if not transfer.recorded:
                transfer.extra["error"] = "server stopped during the transfer"
                self._record(transfer)
            if transfer.pidfd is not None:
                os.close(transfer.pidfd)
        self._pending.clear()

    def _record(self, transfer: Transfer) -> None:
        if transfer.recorded:
            return
        transfer.recorded = True
        transfer.finished_at = time.time()
        self._owner.log.append(transfer_record(transfer, self._owner.address, self.port))


def _kernel_timestamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The SO_TIMESTAMP arrival time (struct timeval) from recvmsg's ancillary data."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(data) >= 16:
            seconds, micros = struct.unpack("@qq", data[:16])
            return float(seconds + micros / 1e6)
    return None


class TftpServer(RecordingServer):
    """A recording TFTP server on one address: serves reads from a ContentStore.

    ``retries`` and ``timeout`` (seconds) govern retransmission to a silent client.
    Runs in network namespace ``netns`` (or the caller's); port 0 picks a free port.
    """

    protocol = "tftp"

    def __init__(self, address: str, port: int = 69, *, log: RequestLog, content: ContentStore,
                 netns: str | None = None, retries: int = 3, timeout: int = 2) -> None:
        super().__init__(address, port, log=log, netns=netns)
        self.content = content
        self.retries = retries
        self.timeout = timeout
        self._server: _LabTftpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after ``start``), else the requested one."""
        return self._server.port if self._server is not None else self.requested_port

    def start(self) -> Self:
        if self._server is not None:
            return self
        with in_namespace(self.netns):
            try:
                self._server = _LabTftpServer(self)
            except OSError as exc:
                raise ServiceStartError(f"TFTP cannot listen on {self.address}:"
                                        f"{self.requested_port}: {exc.strerror}") from exc
            self._thread = threading.Thread(target=self._server.run, daemon=True,
                                            name=f"tftp-{self.address}:{self.port}")
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; transfers still running are ended and recorded as errors."""
        if self._server is None:
            return
        self._server.close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"TFTP server on {self.address}:{self.port} did not stop "
                                   f"within {timeout:g} s")
        self._server = None
        self._thread = None


__all__ = ["TftpServer"]
