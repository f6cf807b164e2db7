"""A provider's webhook receiver on loopback, for the tests of webhooks out: a real HTTP
server that can be down (not listening), fail (500), hang past the sender's timeout, or
accept (204), and that keeps what it was sent."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    mode: str = "ok"  # ok | fail | hang
    hang_seconds: float = 2.0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tweespoor"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                mode = receiver.mode
                status = {"ok": 204, "fail": 500}.get(mode)
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
                if mode == "hang":
                    time.sleep(receiver.hang_seconds)
                    status = 204
                try:
                    self.send_response(status or 204)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up waiting: that is the point of "hang"
                    pass

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
