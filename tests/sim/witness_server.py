"""Independent provisioning servers for the sim's tests, one process each, JSON lines out.

Run inside the lab namespace (``ip netns exec``) as a separate process, so the virtual
phone is checked against protocol code we did not write: fbtftp (TFTP) and the standard
library's ``http.server`` + ``ssl`` (HTTP, HTTPS). Each request is printed as one JSON
line: protocol, client address, the name asked for, its arrival time, and for HTTP the Host, SNI and
User-Agent headers as received.

    python tests/sim/witness_server.py tftp --address 192.0.2.1 --root DIR
    python tests/sim/witness_server.py http --address 192.0.2.1 --port 80 --root DIR
    python tests/sim/witness_server.py http --address 192.0.2.1 --port 443 --root DIR \\
        --cert server.pem --key server.key
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

_OUT = threading.Lock()


def emit(record: dict[str, Any]) -> None:
    """One JSON line, whole: server threads must not interleave their records."""
    with _OUT:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def serve_tftp(address: str, root: Path) -> None:
    import fbtftp

    class FileData(fbtftp.ResponseData):  # type: ignore[misc]
        def __init__(self, path: Path) -> None:
            self.file = path.open("rb")
            self._size = path.stat().st_size

        def read(self, n: int) -> bytes:
            return self.file.read(n)

        def size(self) -> int:
            return self._size

        def close(self) -> None:
            self.file.close()

    class Handler(fbtftp.BaseHandler):  # type: ignore[misc]
        def get_response_data(self) -> FileData:
            path = root / self._path
            if not path.is_file():
                raise FileNotFoundError(self._path)
            return FileData(path)

    class Server(fbtftp.BaseServer):  # type: ignore[misc]
        def get_handler(self, server_addr: Any, peer: Any, path: str,
                        options: dict[str, Any]) -> Handler:
            emit({"protocol": "tftp", "client": peer[0], "name": path,
                  "mode": options.get("mode"), "time": time.time()})
            return Handler(server_addr, peer, path, options, lambda stats: None)

    emit({"ready": "tftp"})
    Server(address, 69, retries=3, timeout=2).run()


def serve_http(address: str, port: int, root: Path, cert: str | None, key: str | None) -> None:
    scheme = "https" if cert else "http"
    sni: dict[int, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived = time.time()
            path = unquote(self.path.split("?", 1)[0])
            target = root / path.lstrip("/")
            status = 200 if target.is_file() else 404
            emit({"protocol": scheme, "client": self.client_address[0], "name": path,
                  "host": self.headers.get("Host"), "user_agent": self.headers.get("User-Agent"),
                  "sni": sni.get(id(self.request)) if cert else None, "status": status,
                  "time": arrived})
            if status != 200:
                self.send_error(404)
                return
            body = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass  # the phone stopped reading after the image header

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        def remember_sni(sock: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
            sni[id(sock)] = name

        context.sni_callback = remember_sni
        server.socket = context.wrap_socket(server.socket, server_side=True)
    emit({"ready": scheme})
    server.serve_forever()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("protocol", choices=["tftp", "http"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args(argv)
    if args.protocol == "tftp":
        serve_tftp(args.address, args.root)
    else:
        serve_http(args.address, args.port, args.root, args.cert, args.key)


if __name__ == "__main__":
    main(sys.argv[1:])
