"""One TFTP transfer: option negotiation (RFC 2347-2349), the forked child that sends
the file through fbtftp, and the record the transfer becomes.

framework.services.tftp is the server loop that parses each RRQ on port 69, forks a
``TransferHandler`` per request and gathers the reports; this module is what a
transfer is, on both sides of the fork: the parent's ``Transfer`` bookkeeping, the
child's handler writing one JSON report line to the shared pipe, and
``transfer_record``, which turns a finished transfer into its ``RequestRecord``.
"""

from __future__ import annotations

import collections
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any

from fbtftp.base_handler import BaseHandler, ResponseData, SessionStats

from framework.errors import HilError
from framework.services.content import Resolved
from framework.services.log import Outcome, RequestRecord, build_url

OPCODE_RRQ, OPCODE_WRQ, OPCODE_ERROR = 1, 2, 5
ERR_NOT_FOUND, ERR_ACCESS, ERR_ILLEGAL = 1, 2, 4
MODES = ("netascii", "octet")  # "mail" (RFC 1350) is for writes only
BLKSIZE_RANGE = (8, 65464)  # RFC 2348
TIMEOUT_RANGE = (1, 255)  # RFC 2349
_REPORT_LIMIT = 3500  # stays below PIPE_BUF (4096): one atomic write
_NEGOTIATED = ("blksize", "timeout", "tsize")


@dataclass
class Transfer:
    """Parent-side bookkeeping for one forked transfer."""

    id: int
    received: float
    peer: tuple[str, int]
    filename: str
    mode: str
    options: dict[str, str]
    ignored: dict[str, str]
    resolved: Resolved
    host: str
    process: BaseHandler | None = None
    pidfd: int | None = None
    finished_at: float | None = None
    report: dict[str, Any] | None = None
    recorded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _TransferCut(HilError):
    """Raised by the content reader where the cut policy stops the transfer."""


class _Content(ResponseData):
    """fbtftp's view of the bytes to send; raises at the block that crosses a cut."""

    def __init__(self, data: bytes, cut_after: int | None) -> None:
        self._data = data
        self._pos = 0
        self._cut_after = cut_after
        self.cut = False

    def read(self, n: int) -> bytes:
        if self._cut_after is not None and self._pos + n > self._cut_after:
            self.cut = True
            raise _TransferCut(f"transfer cut by policy after {self._cut_after} bytes")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    def size(self) -> int:
        return len(self._data)

    def close(self) -> None:
        pass


def _fork_popen(process_obj: Any) -> Any:
    return multiprocessing.get_context("fork").Process._Popen(process_obj)


class TransferHandler(BaseHandler):
    """One transfer, run by fbtftp in a forked child; reports through the pipe."""

    _Popen = staticmethod(_fork_popen)  # fbtftp relies on fork; never spawn/forkserver

    def __init__(self, server_addr: tuple[str, int], peer: tuple[str, int], path: str,
                 options: collections.OrderedDict[str, Any], transfer: Transfer,
                 content: bytes | None, report_fd: int) -> None:
        self._transfer_id = transfer.id
        self._not_found_reason = transfer.resolved.reason
        self._content = (_Content(content, transfer.resolved.cut_after)
                         if content is not None else None)
        self._report_fd = report_fd
        self._payload_bytes = 0
        self._read_failed = False
        self._reported = False
        super().__init__(server_addr, peer, path, options, self._report)

    def get_response_data(self) -> ResponseData:
        if self._content is None:
            raise FileNotFoundError(self._not_found_reason or "file not found")
        return self._content

    def _next_block(self) -> None:
        stopped = self._should_stop
        super()._next_block()
        if self._should_stop and not stopped:
            self._read_failed = True  # cut or I/O error: fbtftp sent the error packet
            return
        if self._current_block:
            self._payload_bytes += len(self._current_block)

    def _transmit_data(self) -> None:
        # After a failed read fbtftp would still send the previous block (or an empty
        # OACK) behind its error packet; after the error nothing more goes out.
        if not self._read_failed:
            super()._transmit_data()

    def _write_report(self, report: dict[str, Any]) -> None:
        line = json.dumps(report, default=str)
        if len(line) > _REPORT_LIMIT:
            report["error_message"] = str(report.get("error_message", ""))[:200]
            report.pop("options_acked", None)
            line = json.dumps(report, default=str)[:_REPORT_LIMIT]
        os.write(self._report_fd, line.encode() + b"\n")
        self._reported = True

    def _report(self, stats: SessionStats) -> None:
        error = stats.error or {}
        self._write_report({
            "id": self._transfer_id,
            "payload_bytes": self._payload_bytes,
            "wire_bytes": stats.bytes_sent,
            "packets_sent": stats.packets_sent,
            "packets_acked": stats.packets_acked,
            "retransmits": stats.retransmits,
            "blksize": stats.blksize,
            "options_acked": dict(getattr(stats, "options_acked", {}) or {}),
            "error_code": error.get("error_code"),
            "error_message": str(error.get("error_message", ""))[:300],
            "cut": bool(self._content is not None and self._content.cut),
            "duration": round(stats.duration(), 6),
        })

    def run(self) -> None:  # in the forked child
        try:
            os.closerange(3, self._report_fd)
            os.closerange(self._report_fd + 1, 1 << 20)
            logging.disable(logging.CRITICAL)
            super().run()
        except SystemExit:
            pass
        except BaseException as exc:
            if not self._reported:
                try:
                    self._write_report({"id": self._transfer_id, "crash":
                                        f"{type(exc).__name__}: {exc}"[:300],
                                        "payload_bytes": self._payload_bytes})
                except OSError:
                    pass
        finally:
            os._exit(0)


def negotiate(mode: str, sent: dict[str, str], *, timeout: int, retries: int
              ) -> tuple[collections.OrderedDict[str, Any], dict[str, str]]:
    """fbtftp's handler options for an RRQ's ``sent`` options, and the ones ignored (an
    unknown option, or a value out of its RFC's range: the RRQ is still served, without
    it, RFC 2347)."""
    handler_options: collections.OrderedDict[str, Any] = collections.OrderedDict(
        [("mode", mode), ("default_timeout", timeout), ("retries", retries)])
    ignored: dict[str, str] = {}
    for name, value in sent.items():
        if name in _NEGOTIATED and valid_option(name, value):
            handler_options[name] = value.strip()
        else:
            ignored[name] = value
    return handler_options, ignored


def valid_option(name: str, value: str) -> bool:
    """Whether an option's value is a number in its RFC's range (blksize RFC 2348,
    timeout RFC 2349, tsize RFC 2349: any size)."""
    try:
        number = int(value)
    except ValueError:
        return False
    if name == "blksize":
        return BLKSIZE_RANGE[0] <= number <= BLKSIZE_RANGE[1]
    if name == "timeout":
        return TIMEOUT_RANGE[0] <= number <= TIMEOUT_RANGE[1]
    return number >= 0  # tsize


def host_source(host: str, server_ip: str) -> str:
    """How the record's host was found: a DNS answer we gave that client, or our IP."""
    return "address" if host == server_ip else "dns"


def transfer_record(transfer: Transfer, server_ip: str, server_port: int) -> RequestRecord:
    """The one record of a finished transfer: its options, what the child reported
    (bytes, retransmits, error, cut) and the outcome they make."""
    report = transfer.report or {}
    details: dict[str, Any] = {"mode": transfer.mode, "options": dict(transfer.options),
                               "host_from": host_source(transfer.host, server_ip)}
    for name in ("blksize", "tsize", "timeout"):
        if name in transfer.options:
            value = transfer.options[name]
            details[name] = int(value) if valid_option(name, value) else value
    if transfer.ignored:
        details["ignored_options"] = dict(transfer.ignored)
    if report.get("options_acked"):
        details["options_acked"] = report["options_acked"]
    for name in ("retransmits", "duration", "wire_bytes"):
        if name in report:
            details[name] = report[name]
    if "duplicate_rrqs" in transfer.extra:
        details["duplicate_rrqs"] = transfer.extra["duplicate_rrqs"]
    code = report.get("error_code")
    message = report.get("error_message") or report.get("crash") or transfer.extra.get("error")
    status: int | None = None
    if report.get("cut"):
        outcome = Outcome.CUT
        status = code
        details["cut_after"] = transfer.resolved.cut_after
    elif code == ERR_NOT_FOUND:
        outcome, status = Outcome.NOT_FOUND, code
    elif code is not None or message:
        outcome, status = Outcome.ERROR, code
    else:
        outcome = Outcome.SERVED
    if message:
        details["error"] = message
    return RequestRecord(
        time=transfer.received, protocol="tftp", client_ip=transfer.peer[0],
        client_port=transfer.peer[1], server_ip=server_ip, server_port=server_port,
        host=transfer.host, path=transfer.filename,
        url=build_url("tftp", transfer.host, server_port, transfer.filename),
        method="RRQ", outcome=outcome, status=status,
        bytes_sent=int(report.get("payload_bytes", 0)), details=details)

