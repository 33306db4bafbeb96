"""A telnet test peer: a telnetlib3 server (an independent telnet implementation) whose
sessions are scripted 400HDs at their login prompt, as a phone's BusyBox telnetd shows.

Each connection gets its own ``ScriptedPhone`` on one end of a socket pair; the server's
shell moves bytes between the telnet stream and the other end. When the phone ends the
session (``exit``, or ``reboot``: telnetd dies with the phone) everything it printed is
delivered, then the connection closes.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import telnetlib3

from framework.netns import Netns
from tests.phone.scripted_phone import ScriptedPhone

#: fd -> a new scripted phone writing and reading that fd
PhoneMaker = Callable[[int], ScriptedPhone]


@dataclass
class TelnetPeer:
    """A running telnet server: where it listens and the phones of its sessions so far."""

    host: str
    port: int
    phones: list[ScriptedPhone] = field(default_factory=list)


async def _session(peer: TelnetPeer, make: PhoneMaker, reader: Any, writer: Any) -> None:
    ours, theirs = socket.socketpair()
    phone = make(ours.fileno())
    peer.phones.append(phone)
    loop = asyncio.get_running_loop()
    from_phone, to_phone = await asyncio.open_connection(sock=theirs)
    phone.attach_login()

    async def up() -> None:  # what the client types -> the phone
        while data := await reader.read(4096):
            to_phone.write(data)
            await to_phone.drain()

    async def down() -> None:  # what the phone prints -> the client, to its very end
        while data := await from_phone.read(4096):
            writer.write(data)

    async def ended() -> None:
        await loop.run_in_executor(None, phone.ended.wait)
        with suppress(OSError):
            ours.shutdown(socket.SHUT_WR)  # the phone's last words, then EOF

    tasks = [asyncio.ensure_future(t) for t in (up(), down(), ended())]
    try:
        await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
    finally:
        phone.ended.set()
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(tasks[1]), 2)
        for task in tasks:
            task.cancel()
        writer.close()
        to_phone.close()
        phone.close()
        ours.close()


@contextmanager
def telnet_server(netns: Netns, host: str, port: int, make: PhoneMaker) -> Iterator[TelnetPeer]:
    """Serve scripted phones over telnet on ``host:port`` in ``netns``."""
    peer = TelnetPeer(host, port)
    loop = asyncio.new_event_loop()
    started: list[Any] = []
    with netns.entered():  # the loop's thread, and so its sockets, live in netns
        thread = threading.Thread(target=loop.run_forever, daemon=True, name="telnet-peer")
        thread.start()

    async def start() -> None:
        started.append(await telnetlib3.create_server(
            host, port, encoding=False, connect_maxwait=0.5,
            shell=lambda r, w: _session(peer, make, r, w)))

    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        yield peer
    finally:
        async def stop() -> None:
            for server in started:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        for phone in peer.phones:
            phone.close()
