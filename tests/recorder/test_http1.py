"""The 1.x sink's own HTTP/1.1 client against a real HTTP server: keep-alive, a connection the
server closed, chunked and sized answers, credentials, a path prefix; httpx where it is needed."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from voltbus_common.devbroker import free_port
from voltbus_recorder.http1 import HttpError, HttpxHttp, PlainHttp, http_client


class Server:
    """A real HTTP/1.1 server on loopback that notes each request and its connection."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, bytes, int]] = []
        self.close_after = False  # answer with `Connection: close` and hang up
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((self.command, self.path,
                                       self.headers.get("Authorization", ""), body,
                                       self.client_address[1]))
                if self.path.endswith("/ping"):
                    self.send_response(204)
                    self.end_headers()
                elif self.path.startswith("/chunked"):
                    self.send_response(400)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in (b'{"error":', b'"partial write"}'):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    text = b'{"results":[{"statement_id":0}]}'
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(text)))
                    if outer.close_after:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    self.wfile.write(text)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


async def test_requests_share_one_connection_until_the_server_closes_it(server: Server) -> None:
    client = PlainHttp(server.url + "/prefix/", username="rec", password="p:w")
    try:
        first = await client.request("POST", "/write", {"db": "v b", "precision": "ns"}, b"m v=1")
        ping = await client.request("GET", "/ping", {})
        assert (first.status, first.is_success, ping.status, ping.text) == (200, True, 204, "")
        assert '"statement_id":0' in first.text
        method, path, auth, body, port = server.requests[0]
        assert (method, path, body) == ("POST", "/prefix/write?db=v+b&precision=ns", b"m v=1")
        assert base64.b64decode(auth.removeprefix("Basic ")) == b"rec:p:w"
        assert server.requests[1][4] == port  # kept alive

        server.close_after = True
        await client.request("POST", "/query", {"q": "SHOW DATABASES"})
        server.close_after = False
        again = await client.request("POST", "/write", {}, b"m v=2")  # a new connection
        assert again.status == 200
        assert server.requests[-1][4] != port
        assert server.requests[-1][3] == b"m v=2"
    finally:
        await client.aclose()


async def test_chunked_answer_and_credentials_in_the_url(server: Server) -> None:
    client = PlainHttp(server.url.replace("http://", "http://u%40x:s3cret@"))
    try:
        answer = await client.request("POST", "/chunked", {})
        assert (answer.status, answer.text) == (400, '{"error":"partial write"}')
        assert base64.b64decode(server.requests[0][2].removeprefix("Basic ")) == b"u@x:s3cret"
        assert (await client.request("GET", "/ping", {})).status == 204  # still in step
    finally:
        await client.aclose()


async def test_nobody_listening_is_an_http_error() -> None:
    client = PlainHttp(f"http://127.0.0.1:{free_port()}", timeout_s=2.0)
    with pytest.raises(HttpError, match="Connect"):
        await client.request("GET", "/ping", {})
    await client.aclose()


async def test_https_and_proxies_keep_httpx(monkeypatch: pytest.MonkeyPatch,
                                             server: Server) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    plain = http_client(server.url, username=None, password=None, timeout_s=5)
    tls = http_client("https://influx.example:8086", username=None, password=None, timeout_s=5)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    proxied = http_client(server.url, username=None, password=None, timeout_s=5)
    try:
        assert isinstance(plain, PlainHttp)
        assert isinstance(tls, HttpxHttp)
        assert isinstance(proxied, HttpxHttp)
        monkeypatch.delenv("HTTP_PROXY")
        via_httpx = HttpxHttp(server.url, username="rec", password="pw", timeout_s=5)
        answer = await via_httpx.request("POST", "/write", {"db": "x"}, b"m v=3")
        assert (answer.status, server.requests[-1][1], server.requests[-1][3]) == (
            200, "/write?db=x", b"m v=3")
        await via_httpx.aclose()
    finally:
        for c in (plain, tls, proxied):
            await c.aclose()


async def test_the_timeout_is_per_step_not_per_request() -> None:
    """An answer that keeps coming, slower in all than the timeout, is read (as httpx times each
    read); a server that says nothing for the timeout is an HttpError, and the next request
    gets a new connection."""
    silent = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await reader.readuntil(b"\r\n\r\n")):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if silent.is_set():
                await asyncio.sleep(5)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"one ", b"two ", b"three ", b"four"):
                await asyncio.sleep(0.2)
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PlainHttp(f"http://127.0.0.1:{port}", timeout_s=0.5)
    try:
        big = b"m v=1 1\n" * 40_000  # 320 kB: sent in pieces
        answer = await client.request("POST", "/write", {}, big)
        assert (answer.status, answer.text) == (200, "one two three four")  # 0.8 s > 0.5 s
        silent.set()
        with pytest.raises(HttpError, match="TimeoutError"):
            await client.request("GET", "/ping", {})
        silent.clear()
        assert (await client.request("GET", "/ping", {})).text == "one two three four"
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
