"""The 1.x sink's HTTP: a small HTTP/1.1 client for plain http, httpx for the rest.

At one meter reading a second an idle recorder makes one InfluxDB write a second, and httpx's
layers (client, auth and redirect handling, httpcore's pool, h11, anyio) cost about 1 ms of CPU
per request here: half of the idle recorder's CPU (issue 14). InfluxDB's /write, /ping and
/query need none of that, so for a plain `http://` URL without a proxy in the environment the
sink talks HTTP/1.1 itself on one kept-alive asyncio connection (one request at a time, as the
writer sends them). `https://` URLs and proxies (HTTP_PROXY, ALL_PROXY) still go through httpx,
with its certificate store and proxy rules as before; httpx is then imported on first use.

A request on a kept-alive connection that the server closed meanwhile is sent once more on a new
one: every request the sink makes may be repeated (a write carries the same points with the same
timestamps, and InfluxDB keeps one value per series and time).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

USER_AGENT = "voltbus-recorder"
MAX_BODY = 16 * 1024 * 1024  # InfluxDB answers a write or ping with a few hundred bytes at most
CHUNK = 64 * 1024
T = TypeVar("T")


class HttpError(Exception):
    """No answer: not reachable, refused, reset, timed out, or not HTTP."""


@dataclass(frozen=True)
class Response:
    """An answer: the status and the body as text."""

    status: int
    text: str

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300


class HttpClient(Protocol):
    """What the 1.x sink needs from HTTP."""

    async def request(self, method: str, path: str, params: dict[str, str],
                      body: bytes = b"") -> Response:
        """One request; HttpError when there is no answer."""
        ...

    async def aclose(self) -> None:
        """Close the connection(s)."""
        ...


def _proxied() -> bool:
    return any(os.environ.get(k) for k in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"))


def http_client(url: str, *, username: str | None, password: str | None,
                timeout_s: float) -> HttpClient:
    """The plain client for http:// without a proxy in the environment, else httpx."""
    if urlsplit(url).scheme == "http" and not _proxied():
        return PlainHttp(url, username=username, password=password, timeout_s=timeout_s)
    return HttpxHttp(url, username=username, password=password, timeout_s=timeout_s)


class PlainHttp:
    """HTTP/1.1 over one kept-alive asyncio connection, one request at a time."""

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not a plain http URL: {url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._prefix = parts.path.rstrip("/")
        if username is None and parts.username:  # credentials in the URL, as httpx takes them
            username, password = unquote(parts.username), unquote(parts.password or "")
        netloc = parts.netloc.rpartition("@")[2]
        headers = [f"Host: {netloc}", f"User-Agent: {USER_AGENT}", "Accept: */*"]
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            headers.append(f"Authorization: Basic {token}")
        self._headers = "\r\n".join(headers)
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, params: dict[str, str],
                      body: bytes = b"") -> Response:
        """Send and read the answer; HttpError when there is none (the connection is closed)."""
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        head = (f"{method} {target} HTTP/1.1\r\n{self._headers}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        async with self._lock:
            for attempt in (1, 2):
                reused = self._usable()
                try:
                    reader, writer = await self._in_time(self._connection())
                    if len(body) <= CHUNK:
                        writer.write(head + body)
                    else:  # each piece of a large batch must go within the timeout
                        writer.write(head)
                        view = memoryview(body)
                        for at in range(0, len(view), CHUNK):
                            writer.write(view[at:at + CHUNK])
                            await self._in_time(writer.drain())
                    await self._in_time(writer.drain())
                    return await self._response(reader, method)
                except (OSError, EOFError, TimeoutError, ValueError,
                        asyncio.LimitOverrunError) as exc:
                    self._close()
                    if reused and attempt == 1 and not isinstance(exc, TimeoutError):
                        continue  # the server closed the kept-alive connection: a new one
                    raise HttpError(f"{type(exc).__name__}: {exc}" if str(exc)
                                    else type(exc).__name__) from exc
                except BaseException:  # cancelled mid-request: the connection's state is unknown
                    self._close()
                    raise
        raise AssertionError("unreachable")

    async def _in_time(self, step: Awaitable[T]) -> T:
        """One step (connect, a piece sent, a piece of the answer read) within the timeout, as
        httpx times each read and write: a large batch on a slow uplink is not cut off while it
        moves."""
        async with asyncio.timeout(self._timeout_s):
            return await step

    def _usable(self) -> bool:
        return (self._writer is not None and self._reader is not None
                and not self._writer.is_closing() and not self._reader.at_eof())

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if not self._usable():
            self._close()
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._reader is not None
        assert self._writer is not None
        return self._reader, self._writer

    async def _response(self, reader: asyncio.StreamReader, method: str) -> Response:
        while True:
            status_line = await self._in_time(reader.readuntil(b"\r\n"))
            version, _, rest = status_line.decode("latin-1").partition(" ")
            if not version.startswith("HTTP/1."):
                raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
            status = int(rest.split(" ", 1)[0])
            headers: dict[str, str] = {}
            while (line := await self._in_time(reader.readuntil(b"\r\n"))) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if status >= 200 or status == 101:
                break  # 1xx (100 Continue): the real answer follows
        keep = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
        if method == "HEAD" or status in (204, 304) or status < 200:
            data = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            data = await _chunked(reader, self._in_time)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= MAX_BODY:
                raise ValueError(f"answer of {length} bytes")
            data = await self._in_time(reader.readexactly(length))
        else:  # the body runs to the end of the connection
            data, keep = await self._in_time(reader.read(MAX_BODY)), False
        if not keep:
            self._close()
        return Response(status, data.decode("utf-8", errors="replace"))

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def aclose(self) -> None:
        """Close the connection."""
        writer = self._writer
        self._close()
        if writer is not None:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _chunked(reader: asyncio.StreamReader,
                   in_time: Callable[[Awaitable[bytes]], Awaitable[bytes]]) -> bytes:
    data = bytearray()
    while True:
        line = await in_time(reader.readuntil(b"\r\n"))
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while await in_time(reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(data)
        if len(data) + size > MAX_BODY:
            raise ValueError("chunked answer too long")
        data += await in_time(reader.readexactly(size))
        await in_time(reader.readexactly(2))


class HttpxHttp:
    """httpx, for https:// and proxies (its certificates, SSL_CERT_FILE and proxy rules)."""

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 timeout_s: float = 10.0) -> None:
        import httpx  # only where used

        self._httpx = httpx
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), auth=auth, timeout=timeout_s)

    async def request(self, method: str, path: str, params: dict[str, str],
                      body: bytes = b"") -> Response:
        """One request through httpx; HttpError for httpx's transport errors."""
        try:
            response = await self._client.request(method, path, params=params,
                                                  content=body or None)
        except self._httpx.HTTPError as exc:
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        return Response(response.status_code, response.text)

    async def aclose(self) -> None:
        """Close httpx's pool."""
        await self._client.aclose()
