"""A real HTTP price feed on loopback (stdlib http.server in a thread) serving recorded samples."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@dataclass
class Route:
    """What one path answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay_s: float = 0.0


@dataclass
class PriceServer:
    """Paths -> answers; every request is recorded as (method, path, headers, body)."""

    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        """The URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, sample: str, *, status: int = 200) -> str:
        """Serve a recorded sample file at path; returns its URL."""
        kind = "text/csv" if sample.endswith(".csv") else "application/json"
        self.routes[path] = Route(status, (DATA / sample).read_bytes(), kind)
        return self.url(path)


def _handler(server: PriceServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server.requests.append((self.command, self.path, dict(self.headers), body))
            route = server.routes.get(self.path, Route(404, b'{"error": "not found"}'))
            if route.delay_s:
                threading.Event().wait(route.delay_s)
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def price_server() -> Iterator[PriceServer]:
    """An HTTP server on 127.0.0.1 (free port) for the duration of a test."""
    state = PriceServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)
