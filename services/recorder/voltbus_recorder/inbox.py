"""The recorder's receive path: a lean MQTT 3.1.1 subscriber that hands over messages in batches.

Why not the shared `Bus` (aiomqtt/paho) for this one job: paho reads one packet per socket wake-up
with three or more `recv` calls, and aiomqtt then queues each message and wakes a task for it;
that was 35 % of the recorder's time and capped it at about half of what the broker delivers
(issue 14). Here one `read` of up to 256 KiB is split into every complete packet it holds, and
the whole batch goes to the handler at once.

It also lets the recorder acknowledge a QoS 1 message only once its point is committed to the
spool (paho acknowledges on receipt): a recorder killed in between gets the message again from
the broker instead of losing it (meter readings too: QoS 1 since issue 15). QoS 0 messages have no
acknowledgement in MQTT.

Only what the recorder needs: CONNECT with a persistent session, SUBSCRIBE, PUBLISH QoS 0/1 in,
PUBACK and PINGREQ out, TLS, reconnect with backoff. Publishing stays on the `Bus`.

Its waits use `asyncio.timeout`, not `asyncio.wait_for`: on Python 3.11 wait_for drops a cancel
that lands as the read completes, and the recorder then ran on after a SIGTERM until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voltbus_common.settings import BusSettings

log = logging.getLogger(__name__)

_CONNACK_REASONS = {1: "unacceptable protocol version", 2: "identifier rejected",
                    3: "server unavailable", 4: "bad user name or password",
                    5: "not authorised"}
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"


class InboxError(Exception):
    """The connection broke or the broker refused us; the loop reconnects."""


@dataclass(frozen=True, slots=True)
class Message:
    """One PUBLISH as received."""

    topic: str
    payload: bytes
    retain: bool
    packet_id: int  # 0 for QoS 0


# handler(messages, ack): stage the batch (waiting for room if need be) and call ack(packet_ids)
# once the points are durable.
BatchHandler = Callable[[list[Message], Callable[[list[int]], None]], Awaitable[None]]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def connect_packet(client_id: str, *, username: str | None, password: str | None,
                   keepalive_s: int, clean_session: bool) -> bytes:
    """CONNECT for MQTT 3.1.1."""
    flags = (0x02 if clean_session else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None and username is not None else 0
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive_s)
    body += _string(client_id)
    if username is not None:
        body += _string(username)
        if password is not None:
            body += _string(password)
    return _packet(0x10, body)


def subscribe_packet(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    """SUBSCRIBE for the given (filter, qos) pairs."""
    body = struct.pack("!H", packet_id) + b"".join(_string(f) + bytes([q]) for f, q in filters)
    return _packet(0x82, body)


def puback_packets(packet_ids: list[int]) -> bytes:
    """PUBACKs for these ids, in one buffer."""
    return b"".join(struct.pack("!BBH", 0x40, 2, i) for i in packet_ids)


class PacketReader:
    """Splits a byte stream into MQTT packets: feed bytes, get (first byte, body) back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, memoryview]]:
        """Every complete packet now buffered; a partial one waits for more bytes."""
        buf = self._buf
        buf += data
        view = memoryview(bytes(buf))  # one copy per read; slicing it is then free
        packets: list[tuple[int, memoryview]] = []
        pos, end = 0, len(view)
        while end - pos >= 2:
            length, mult, i, complete = 0, 1, pos + 1, False
            while i < end and i < pos + 5:  # remaining length: 1..4 bytes, 7 bits each
                byte = view[i]
                i += 1
                length += (byte & 0x7F) * mult
                mult *= 128
                if not byte & 0x80:
                    complete = True
                    break
            if not complete:
                if i >= pos + 5:
                    raise InboxError("malformed remaining length from the broker")
                break
            if i + length > end:
                break
            packets.append((view[pos], view[i:i + length]))
            pos = i + length
        del buf[:pos]
        return packets


def parse_publish(first: int, body: memoryview) -> Message:
    """A PUBLISH body (variable header + payload) as a Message."""
    topic_len = (body[0] << 8) | body[1]
    topic = bytes(body[2:2 + topic_len]).decode()
    pos = 2 + topic_len
    packet_id = 0
    if first & 0x06:
        packet_id = (body[pos] << 8) | body[pos + 1]
        pos += 2
    return Message(topic, bytes(body[pos:]), bool(first & 0x01), packet_id)


class Inbox:
    """One persistent MQTT session that delivers its messages to a batch handler."""

    def __init__(self, settings: BusSettings, *, client_id: str,
                 filters: list[tuple[str, int]], handler: BatchHandler,
                 read_size: int = 256 * 1024) -> None:
        self.settings = settings
        self.client_id = client_id
        self.filters = filters
        self.handler = handler
        self.read_size = read_size
        self.connected = asyncio.Event()
        self.received = 0
        self.last_error: str | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        """Stay subscribed until cancelled: reconnect with backoff after any failure."""
        backoff = 0.2
        while True:
            try:
                await self._session()
                backoff = 0.2
            except (OSError, InboxError, asyncio.IncompleteReadError, TimeoutError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.warning("MQTT %s:%d unavailable for the recorder's inbox (%s); retrying "
                            "in %.1fs", self.settings.mqtt_host, self.settings.mqtt_port,
                            self.last_error, backoff)
            finally:
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 15.0)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        s = self.settings
        context = None
        if s.mqtt_tls:
            context = ssl.create_default_context(
                cafile=str(s.mqtt_ca_file) if s.mqtt_ca_file else None)
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(
                s.mqtt_host, s.mqtt_port, ssl=context, limit=self.read_size * 2)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def _session(self) -> None:
        s = self.settings
        reader, writer = await self._open()
        self._writer = writer
        try:
            writer.write(connect_packet(self.client_id, username=s.mqtt_username,
                                        password=s.mqtt_secret(), keepalive_s=s.mqtt_keepalive_s,
                                        clean_session=False))
            async with asyncio.timeout(10):
                head = await reader.readexactly(4)
            if head[0] != 0x20 or head[3] != 0:
                reason = _CONNACK_REASONS.get(head[3], f"code {head[3]}")
                raise InboxError(f"broker refused the connection: {reason}")
            writer.write(subscribe_packet(1, self.filters))
            self.connected.set()
            log.info("recorder inbox connected to MQTT %s:%d as %s (%d filters)", s.mqtt_host,
                     s.mqtt_port, s.mqtt_username, len(self.filters))
            await self._read_loop(reader, writer)
        finally:
            self._writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        packets = PacketReader()
        keepalive = self.settings.mqtt_keepalive_s
        sent_at = time.monotonic()  # MQTT keepalive counts what the client sends
        pinged = False

        def ack(ids: list[int]) -> None:
            nonlocal sent_at
            if ids and not writer.is_closing():
                writer.write(puback_packets(ids))
                sent_at = time.monotonic()

        while True:
            try:
                async with asyncio.timeout(keepalive):
                    data = await reader.read(self.read_size)
            except TimeoutError:
                if pinged:
                    raise InboxError(f"no answer from the broker in {2 * keepalive}s") from None
                writer.write(_PINGREQ)
                sent_at, pinged = time.monotonic(), True
                continue
            if not data:
                raise InboxError("the broker closed the connection")
            pinged = False
            batch: list[Message] = []
            for first, body in packets.feed(data):
                kind = first & 0xF0
                if kind == 0x30:
                    batch.append(parse_publish(first, body))
                elif kind == 0x90 and 0x80 in bytes(body[2:]):
                    log.error("the broker refused a recorder subscription (ACL?): %s",
                              [f for f, _ in self.filters])
            if batch:
                self.received += len(batch)
                await self.handler(batch, ack)
            if time.monotonic() - sent_at > keepalive / 2:
                writer.write(_PINGREQ)
                sent_at = time.monotonic()
            await writer.drain()

    async def close(self) -> None:
        """Say DISCONNECT (the session and its queue stay on the broker)."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(_DISCONNECT)
            with contextlib.suppress(Exception):
                await self._writer.drain()
