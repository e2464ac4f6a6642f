"""The recorder's own MQTT receive path (voltbus_recorder.inbox) against the real broker: packets
split anywhere, QoS 1 acknowledged only when the handler says the points are durable (so a
message the recorder did not commit comes back), QoS 0 queued for the persistent session."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from tests.fixtures.mosquitto import Broker, running
from tests.recorder.helpers import reading
from tests.recorder.test_write import SESSION
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_recorder.inbox import (
    Inbox,
    InboxError,
    Message,
    PacketReader,
    parse_publish,
    puback_packets,
)


def _publish(topic: str, payload: bytes, *, qos: int, packet_id: int = 0) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode()
    body += packet_id.to_bytes(2, "big") if qos else b""
    body += payload
    length, n = b"", len(body)
    while True:
        n, digit = divmod(n, 128)
        length += bytes([digit | (128 if n else 0)])
        if not n:
            break
    return bytes([0x30 | qos << 1 | 1]) + length + body


def test_packets_split_at_every_byte_come_out_whole() -> None:
    stream = (_publish("a/b", b"x" * 300, qos=1, packet_id=7) + _publish("c", b"", qos=0)
              + puback_packets([3]) + _publish("d/e", b"{}" * 70, qos=0))
    for cut in range(1, len(stream)):
        reader = PacketReader()
        packets = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        kinds = [first & 0xF0 for first, _ in packets]
        assert kinds == [0x30, 0x30, 0x40, 0x30], cut
        first = parse_publish(packets[0][0], packets[0][1])
        assert first == Message("a/b", b"x" * 300, True, 7)
        assert parse_publish(packets[3][0], packets[3][1]).payload == b"{}" * 70


def test_a_broken_length_is_an_error_not_a_hang() -> None:
    with pytest.raises(InboxError):
        PacketReader().feed(b"\x30\xff\xff\xff\xff\x01")


@contextlib.asynccontextmanager
async def inbox(broker: Broker, station: str, client_id: str,
                on_batch: Callable[[list[Message], Callable[[list[int]], None]], None]
                ) -> AsyncIterator[Inbox]:
    async def handler(batch: list[Message], ack: Callable[[list[int]], None]) -> None:
        on_batch(batch, ack)

    box = Inbox(broker.settings("recorder"), client_id=client_id, handler=handler, filters=[
        (ch.SESSION.filter(broker.root, station=station), 1),
        (ch.METER.filter(broker.root, station=station), 0)])
    task = asyncio.create_task(box.run())
    try:
        await asyncio.wait_for(box.connected.wait(), 5)
        yield box
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(done: Callable[[], bool], what: str) -> None:
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_qos1_comes_back_until_acknowledged_and_qos0_waits_in_the_session(
        mosquitto: Broker, station: str) -> None:
    gw = Bus(mosquitto.settings("gateway"), station=station, service=None)
    hw = Bus(mosquitto.settings("hardware"), station=station, service=None)
    client_id = f"test-inbox-{uuid.uuid4().hex[:8]}"
    got: list[Message] = []
    async with running(gw, hw):
        # 1. Subscribed, then a QoS 1 session arrives and is *not* acknowledged.
        async with inbox(mosquitto, station, client_id, lambda b, ack: got.extend(b)):
            gw.publish(ch.SESSION, SESSION, connector=1)
            await _until(lambda: len(got) == 1, "the session")
        assert got[0].packet_id != 0
        # 2. While away: a meter reading at QoS 0 is queued for the persistent session.
        hw.publish(ch.METER, reading(0), connector=1)
        assert await hw.drain(5)
        await asyncio.sleep(0.3)
        acked: list[Message] = []

        def keep_and_ack(batch: list[Message], ack: Callable[[list[int]], None]) -> None:
            acked.extend(batch)
            ack([m.packet_id for m in batch if m.packet_id])

        # 3. Back: the unacknowledged session comes again (no loss), and the queued reading.
        async with inbox(mosquitto, station, client_id, keep_and_ack):
            await _until(lambda: len([m for m in acked if not m.retain]) >= 2,
                         "the session again and the reading")
            await asyncio.sleep(0.3)
        # (the broker also re-sends the retained reading on SUBSCRIBE, flagged retained)
        topics = sorted(m.topic.rsplit("/", 1)[1] for m in acked if not m.retain)
        assert topics == ["meter", "session"]
        # 4. Acknowledged this time: a third connection gets nothing more.
        again: list[Message] = []
        async with inbox(mosquitto, station, client_id, lambda b, ack: again.extend(b)):
            await asyncio.sleep(0.5)
        assert [m for m in again if not m.retain] == []
