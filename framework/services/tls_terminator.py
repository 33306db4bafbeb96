"""Per-connection TLS for the lab's HTTPS server (framework.services.http).

Records the SNI a client sends, mints a lab-CA certificate for an SNI name the server's
certificate does not cover, presents another certificate for chosen SNI names
(``presented``: the HTTPS-refusal cases, framework.services.badcerts) and records each
handshake's outcome there: a failed handshake always, a completed one for a presented
name (evidence that the client accepted that certificate).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

from framework.services.log import Outcome, RequestRecord
from framework.services.tls import LabCA

TLS_HANDSHAKE_TIMEOUT = 10.0


class TlsTerminator:
    """Per-connection TLS: records SNI, mints a certificate for an SNI name not covered."""

    def __init__(self, ca: LabCA, names: Sequence[str], mint_for_sni: bool) -> None:
        self.ca = ca
        self.names = tuple(names)
        self.covered = {n.lower().rstrip(".") for n in names}
        self.mint_for_sni = mint_for_sni
        self.context = ca.server_context(self.names)
        self.context.sni_callback = self._on_sni
        self._minted: dict[str, ssl.SSLContext] = {}
        #: SNI name -> the context presented instead (framework.services.badcerts)
        self.presented: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def _on_sni(self, sock: Any, server_name: str | None, _context: ssl.SSLContext) -> None:
        sock.lab_sni = server_name
        if not server_name:
            return
        name = server_name.lower().rstrip(".")
        override = self.presented.get(name)
        if override is not None:
            sock.context = override
            # what this connection was shown, decided once: the evidence below reads this,
            # not the shared table (another lane may present or release the name meanwhile)
            sock.lab_refused_certificate = True
            return
        if not self.mint_for_sni:
            return
        if name in self.covered:
            return
        with self._lock:
            context = self._minted.get(name)
            if context is None:
                context = self.ca.server_context((*self.names, name))
                self._minted[name] = context
        sock.context = context

    def wrap(self, server: Any, request: socket.socket,
             client_address: Any) -> ssl.SSLSocket | None:
        received = time.time()
        request.settimeout(TLS_HANDSHAKE_TIMEOUT)
        tls_sock: ssl.SSLSocket | None = None
        try:
            tls_sock = self.context.wrap_socket(request, server_side=True,
                                                do_handshake_on_connect=False)
            tls_sock.do_handshake()
            sni = getattr(tls_sock, "lab_sni", None)
            if getattr(tls_sock, "lab_refused_certificate", False):  # evidence for the case
                server.log.append(RequestRecord(
                    time=received, protocol="https", client_ip=client_address[0],
                    client_port=client_address[1], server_ip=server.address,
                    server_port=server.port, host=sni or "", path="", url=None, method="TLS",
                    outcome=Outcome.SERVED, details={"tls": "handshake completed",
                                                     "sni": sni,
                                                     "refused_certificate": True}))
            return tls_sock
        except (ssl.SSLError, OSError) as exc:
            sni = getattr(tls_sock, "lab_sni", None)
            host = sni or server.log.host_for(client_address[0], server.address)
            server.log.append(RequestRecord(
                time=received, protocol="https", client_ip=client_address[0],
                client_port=client_address[1], server_ip=server.address,
                server_port=server.port, host=host, path="", url=None, method="TLS",
                outcome=Outcome.ERROR, details={
                    "error": f"TLS handshake failed: {exc}", "sni": sni,
                    "refused_certificate": bool(getattr(tls_sock, "lab_refused_certificate",
                                                        False)),
                    # who ended it: our TLS_HANDSHAKE_TIMEOUT, or the peer
                    "lab_timed_out": isinstance(exc, TimeoutError)}))
            if tls_sock is not None:
                try:
                    tls_sock.close()
                except OSError:
                    pass
            return None


__all__ = ["TLS_HANDSHAKE_TIMEOUT", "TlsTerminator"]
