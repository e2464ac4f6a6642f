"""Hostile frames from a central system (issue 15, central-system fuzz; over 1.6 and 2.0.1).

The unit tests check the frame check alone. The socket tests run the real gateway and the real
(simulated) hardware service as processes on a real Mosquitto; a hostile central system
(`hostile_csms.py`) accepts the gateway's WebSocket, starts a transaction, and throws 2000+
malformed frames at it: each gets the CALLERROR OCPP-J 1.6 (4.2.3) names, or nothing when it has
no readable CALL id or answers no CALL; the connection stays up, the transaction goes on (relay
closed, no StopTransaction), the process does not crash, its memory stays bounded and its log
short. A frame over `VOLTBUS_CSMS_MAX_FRAME_BYTES` (4 MiB) closes the connection with 1009: the
gateway reconnects and the session goes on. `VOLTBUS_FUZZ_FRAMES` sets the count (2200 here;
bench/bench_fuzz_csms.py runs it longer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.faults.hostile_csms import NONE, RESULT, Frame, HostileCsms, corpus
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, ServiceProcess, rss_kib, wait_online
from tests.hardware.helpers import Watch
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import SimPlug
from voltbus_ocpp.protocol.v16.frames import check_frame

DEEP = 100_000
FRAMES = int(os.environ.get("VOLTBUS_FUZZ_FRAMES", "2200"))


@pytest.mark.parametrize("raw", [
    '[2, "m1", "Heartbeat", {"a": ' + "[" * DEEP + "]" * DEEP + "}]",
    ('[2, "m1", "Heartbeat", {"a": ' + "[" * DEEP + "]" * DEEP + "}]").encode(),
])
def test_deep_nesting_with_readable_id_gets_formation_violation(raw: str | bytes) -> None:
    answer = check_frame(raw, {"Heartbeat"})
    assert answer is not None
    assert json.loads(answer)[:3] == [4, "m1", "FormationViolation"]


def test_deep_nesting_without_id_is_dropped() -> None:
    assert check_frame("[" * DEEP + "]" * DEEP, {"Heartbeat"}) == ""


@dataclass
class Charging:
    """The running gateway and a transaction on connector 1."""

    csms: HostileCsms
    gateway: ServiceProcess
    relay: Watch
    session: Watch
    peak_kib: list[int]


@dataclass(frozen=True)
class Version:
    """What differs between a 1.6 and a 2.0.1 run: the gateway's settings, how the transaction
    starts, the CALL that reports the meter while it runs, and whether a CALL ends it."""

    name: str
    env: dict[str, str]
    start: tuple[str, dict[str, Any]]
    metering: str

    def ends(self, action: str, payload: dict[str, Any]) -> bool:
        """The station's CALL ends a transaction."""
        return action == "StopTransaction" or (
            action == "TransactionEvent" and payload.get("eventType") == "Ended")

    def meters(self, action: str, payload: dict[str, Any]) -> bool:
        """The station's CALL reports the meter of the running transaction."""
        return action == self.metering and (
            action != "TransactionEvent" or payload.get("eventType") == "Updated")


V16 = Version("1.6", {"VOLTBUS_OCPP_CONFIG": json.dumps({"MeterValueSampleInterval": "1"})},
              ("RemoteStartTransaction", {"connectorId": 1, "idTag": "FUZZ1"}), "MeterValues")
# 2.0.1: SampledDataCtrlr.TxUpdatedInterval 60 s scaled to 1.2 s (VOLTBUS_OCPP_CONFIG is 1.6's)
V201 = Version("2.0.1", {"VOLTBUS_OCPP_VERSION": "2.0.1", "VOLTBUS_TIME_SCALE": "0.02"},
               ("RequestStartTransaction", {"evseId": 1, "remoteStartId": 1, "idToken": {
                   "idToken": "FUZZ1", "type": "Central"}}), "TransactionEvent")


@contextlib.asynccontextmanager
async def charging(mosquitto: Broker, station: str, services: ServiceGroup,
                   data_dir: Path, version: Version = V16) -> AsyncIterator[Charging]:
    csms = HostileCsms(version.name)
    await csms.start()
    base = {"VOLTBUS_STATIONS": station, "VOLTBUS_DATA_DIR": str(data_dir)}
    services.start("hardware", {**base, **mosquitto.env("hardware"),
                                "VOLTBUS_METER_INTERVAL_S": "0.2"})
    gateway = services.start("gateway", {
        **base, **mosquitto.env("gateway"), "VOLTBUS_CSMS_URL": csms.url,
        "VOLTBUS_RECONNECT_MIN_S": "0.5", **version.env})
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    relay = Watch(operator, ch.RELAY, connector=1)
    session = Watch(operator, ch.SESSION, connector=1)
    task = asyncio.create_task(operator.run())
    peak = [0]

    async def sample() -> None:
        while gateway.alive():
            peak[0] = max(peak[0], rss_kib(gateway.pid))
            await asyncio.sleep(0.1)
    sampler = asyncio.create_task(sample())
    try:
        await operator.wait_connected(5)
        await wait_online(mosquitto, station, ("hardware", "gateway"))
        await csms.wait_connection(1)
        await csms.wait_call("BootNotification")
        operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        answer = await csms.call(*version.start, "start-1")
        assert answer[2] == {"status": "Accepted"}
        await csms.wait_call("StartTransaction" if version is V16 else "TransactionEvent")
        await relay.until(lambda m: m.payload.closed, 10)
        await wait_metering(csms, version)  # charging, and the meter is reported
        yield Charging(csms, gateway, relay, session, peak)
    except BaseException:
        print(services.logs())
        raise
    finally:
        sampler.cancel()
        task.cancel()
        await asyncio.gather(task, sampler, return_exceptions=True)
        await csms.stop()


async def wait_metering(csms: HostileCsms, version: Version, after: int = 0) -> None:
    """The station reports the running transaction's meter on the current connection."""
    async with asyncio.timeout(20):
        while not any(version.meters(a, p) for a, p in csms.current.calls[after:]):
            await csms.wait_call(version.metering, after=len(csms.current.calls))


def _answered(frame: Frame, reply: list[Any] | None) -> str:
    if reply is None:
        return NONE
    return RESULT if reply[0] == 3 else str(reply[2])


async def _throw(c: Charging, frames: list[Frame]) -> list[tuple[str, str, str, str]]:
    """Send the frames back to back, then a fence; the (kind, expected, got, frame) that differ."""
    conn = c.csms.current
    for frame in frames:
        await conn.ws.send(frame.data)
    fence = await c.csms.call("GetLocalListVersion", {}, f"fence-{len(conn.replies)}")
    assert fence[0] == 3  # handled in order: every frame before it has been answered
    await asyncio.sleep(0.2)
    wrong = []
    for frame in frames:
        reply = conn.replies.get(frame.unique_id) if frame.unique_id else None
        got = _answered(frame, reply[0] if reply else None)
        if got != frame.expect:
            wrong.append((frame.kind, frame.expect, got, repr(frame.data[:120])))
    return wrong


# 2.0.1: the same on an ocpp2.0.1 connection, each frame answered as OCPP-J 2.0.1 4.3 names it
# (tests/faults/test_fuzz_csms201.py checks those expectations against the frame check alone)
VERSIONS = pytest.mark.parametrize("version", [V16, V201], ids=["1.6", "2.0.1"])


@pytest.mark.expected_errors
@VERSIONS
async def test_hostile_frames_get_the_right_answers_and_the_session_goes_on(
        mosquitto: Broker, station: str, services: ServiceGroup, tmp_path: Path,
        version: Version) -> None:
    """The corpus of `version` thrown at a charging station: every frame answered as its OCPP-J
    says, the connection, the transaction and the process kept, memory and log bounded."""
    frames = corpus(seed=15, count=FRAMES, version=version.name)
    async with charging(mosquitto, station, services, tmp_path / "data", version) as c:
        conn = c.csms.current
        warm = rss_kib(c.gateway.pid)
        started = time.monotonic()
        wrong = await _throw(c, frames)
        took = time.monotonic() - started
        after_first = rss_kib(c.gateway.pid)
        wrong += await _throw(c, corpus(seed=16, count=FRAMES // 2, version=version.name))
        after_second = rss_kib(c.gateway.pid)  # the same again: no growth

        # A 2 MB frame is under the 4 MiB limit: answered like any other, connection kept.
        big = await c.csms.call("DataTransfer", {"vendorId": "fuzz", "data": "D" * 2_000_000},
                                "two-mb")
        assert big == [3, "two-mb", {"status": "UnknownVendorId"}]

        # Slow-loris: a CALL dribbled over 4 s in 16 fragments; the station keeps sending its
        # meter values meanwhile, then answers the CALL.
        calls_before = len(conn.calls)
        await c.csms.dribble(json.dumps([2, "slow", "GetLocalListVersion", {}]), 16, 0.25)
        during = [(a, p) for a, p in conn.calls[calls_before:]]
        slow = await c.csms.wait_reply("slow")

        await asyncio.sleep(1.0)
        log = c.gateway.log()
        assert c.gateway.alive()
        kept = not conn.closed.is_set()
        stops = [a for a, p in conn.calls if version.ends(a, p)]
        opened = [m for m in c.relay.drain() if not m.payload.closed]
        sessions_ended = c.session.drain()
    kinds = Counter(f.kind for f in frames)
    metered = sum(version.meters(a, p) for a, p in during)
    print(f"\n{version.name}: {len(frames)} hostile frames ({dict(kinds)}) in {took:.1f} s; RSS "
          f"{warm} KiB warm, {after_first} after, {after_second} after {FRAMES // 2} more, peak "
          f"{c.peak_kib[0]}; log {len(log)} bytes, {log.count(chr(10))} lines; meter reports "
          f"during the slow frame: {metered}")
    assert not wrong, f"{len(wrong)} frames answered wrongly, e.g. {wrong[:5]}"
    assert len(c.csms.connections) == 1  # the connection was kept throughout
    assert kept
    assert slow[:2] == [3, "slow"]
    assert metered >= 1  # its answer waits: a fragmented send holds the socket
    assert not stops
    assert not opened
    assert not sessions_ended
    assert after_second - after_first < 8 * 1024  # KiB: no growth with the frames
    assert c.peak_kib[0] - warm < 96 * 1024
    assert len(log) < 40_000  # rate-limited: a few lines per kind, not one per frame


@pytest.mark.expected_errors
@VERSIONS
async def test_a_frame_over_the_limit_closes_with_1009_and_the_session_goes_on(
        mosquitto: Broker, station: str, services: ServiceGroup, tmp_path: Path,
        version: Version) -> None:
    """A frame over VOLTBUS_CSMS_MAX_FRAME_BYTES closes with 1009; the station reconnects and
    its transaction goes on."""
    async with charging(mosquitto, station, services, tmp_path / "data", version) as c:
        first = c.csms.current
        await first.ws.send(json.dumps([2, "huge", "DataTransfer",
                                        {"vendorId": "fuzz", "data": "D" * 5_000_000}]))
        async with asyncio.timeout(10):
            await first.closed.wait()
        closed = time.monotonic()
        second = await c.csms.wait_connection(2)
        back = time.monotonic() - closed
        answer = await c.csms.call("GetLocalListVersion", {}, "after")
        await wait_metering(c.csms, version)  # still charging, reported on the new connection
        assert c.gateway.alive()
        calls = [(a, p) for conn in c.csms.connections for a, p in conn.calls]
        opened = [m for m in c.relay.drain() if not m.payload.closed]
        sessions_ended = c.session.drain()
    print(f"\n{version.name}, 5 MB frame: closed {first.close_code}, reconnected after "
          f"{back:.2f} s")
    assert first.close_code == 1009
    assert "huge" not in first.replies
    assert answer[:2] == [3, "after"]
    assert second is c.csms.current
    assert not [a for a, p in calls if version.ends(a, p)]
    assert not opened
    assert not sessions_ended
