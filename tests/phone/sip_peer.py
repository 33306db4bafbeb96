"""A scripted phone's SIP user agent for the driver tests: answers ``NOTIFY`` with
``Event: check-sync`` ``200 OK`` (copying Via, From, To with a tag, Call-ID, CSeq) and
asks the phone to check once per transaction (a retransmission gets the same answer
again); other events get ``489 Bad Event``. The client itself is tested against SIPp
(test_sip.py); this peer only has to tell the scripted phone."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class SipPhone:
    """What the agent saw: requests (first lines) and the transactions it acted on."""

    on_check_sync: Callable[[], None]
    requests: list[str] = field(default_factory=list)
    answered: dict[str, bytes] = field(default_factory=dict)  # branch -> answer


def _answer(phone: SipPhone, data: bytes) -> bytes | None:
    head = data.decode(errors="replace").split("\r\n\r\n", 1)[0].split("\r\n")
    if not head[0].startswith("NOTIFY "):
        return None
    phone.requests.append(head[0])
    headers = {line.split(":", 1)[0].strip().lower(): line for line in head[1:] if ":" in line}
    via = headers.get("via", "")
    branch = via.partition("branch=")[2].split(";")[0]
    if branch in phone.answered:
        return phone.answered[branch]
    event = headers.get("event", "").split(":", 1)[-1].strip()
    status = "200 OK" if event.split(";")[0] == "check-sync" else "489 Bad Event"
    lines = [f"SIP/2.0 {status}", via, headers.get("from", ""),
             headers.get("to", "") + ";tag=phone1", headers.get("call-id", ""),
             headers.get("cseq", ""), "Content-Length: 0", "", ""]
    answer = "\r\n".join(lines).encode()
    phone.answered[branch] = answer
    if status == "200 OK":
        phone.on_check_sync()
    return answer


@contextmanager
def sip_phone(host: str, port: int, on_check_sync: Callable[[], None]) -> Iterator[SipPhone]:
    """Run the agent on ``host:port`` (UDP; the socket is made in the calling thread's
    namespace)."""
    phone = SipPhone(on_check_sync)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            answer = _answer(phone, data)
            if answer is not None:
                sock.sendto(answer, peer)

    thread = threading.Thread(target=serve, daemon=True, name="sip-phone")
    thread.start()
    try:
        yield phone
    finally:
        stop.set()
        thread.join(2)
        sock.close()
