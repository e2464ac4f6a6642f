"""The 'dropped message' warning is rate-limited; the rejected topic still gets every drop.

Issue 13 (Logs): a publisher that kept sending bad payloads made a service log one WARNING per
message (1761 lines for 1800), a disk-filling hazard on a Pi's SD card.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Broker, collector, running
from tests.fixtures.services import ServiceGroup
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, RejectLog

BUS_LOG = "voltbus_common.bus"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drop_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == BUS_LOG and r.getMessage().startswith("dropped")]


def test_first_burst_then_one_summary_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    rl = RejectLog(burst=5, period_s=60, clock=clock)
    caplog.set_level(logging.WARNING, BUS_LOG)
    for _ in range(1800):  # 1800 bad messages over 3 minutes, 10 a second
        rl.note("t/1", "closed: Input should be a valid boolean")
        clock.now += 0.1
    clock.now += 60
    rl.flush()
    lines = drop_lines(caplog)
    assert lines[:5] == ["dropped message on t/1: closed: Input should be a valid boolean"] * 5
    summaries = lines[5:]
    assert len(summaries) == 3, lines
    counts = [int(line.split()[1]) for line in summaries]
    assert sum(counts) == 1795
    assert all(c <= 601 for c in counts), counts
    assert all("t/1" in s and "valid boolean" in s for s in summaries)


def test_keys_are_topic_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    rl = RejectLog(burst=2, period_s=60, clock=clock)
    caplog.set_level(logging.WARNING, BUS_LOG)
    for _ in range(10):
        rl.note("t/1", "a")
        rl.note("t/2", "a")
        rl.note("t/1", "b")
    assert len(drop_lines(caplog)) == 6  # two of each of the three keys
    clock.now += 60
    rl.flush()
    summaries = drop_lines(caplog)[6:]
    assert sorted(s.split()[1] for s in summaries) == ["8", "8", "8"]


def test_a_quiet_key_starts_afresh(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    rl = RejectLog(burst=1, period_s=60, clock=clock)
    caplog.set_level(logging.WARNING, BUS_LOG)
    rl.note("t/1", "a")
    rl.note("t/1", "a")  # suppressed
    clock.now += 61
    rl.flush()  # summary of 1
    clock.now += 61
    rl.flush()  # quiet for a period: forgotten
    rl.note("t/1", "a")  # logged again, one by one
    lines = drop_lines(caplog)
    assert lines[0] == lines[2] == "dropped message on t/1: a"
    assert lines[1].startswith("dropped 1 more messages on t/1")


def test_many_topics_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    rl = RejectLog(burst=1, period_s=60, max_keys=10, clock=clock)
    caplog.set_level(logging.WARNING, BUS_LOG)
    for i in range(1000):
        rl.note(f"t/{i}", "bad")
    clock.now += 60
    rl.flush()
    lines = drop_lines(caplog)
    assert len(lines) == 11
    assert lines[-1].startswith("dropped 990 more messages on (other topics)")


def test_fuzzed_reasons_of_one_field_are_one_key_and_lines_have_a_budget(
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15 (MQTT fuzz): each malformed payload had its own pydantic message, so every one
    was a new key with its own burst (about 100 kB of log per 150 payloads per topic)."""
    clock = FakeClock()
    rl = RejectLog(burst=5, period_s=60, max_lines=40, clock=clock)
    caplog.set_level(logging.WARNING, BUS_LOG)
    for i in range(5000):
        rl.note("t/1", f"closed: Input should be a valid boolean, got {i}")
    assert len(drop_lines(caplog)) == 5  # one key: "closed" on t/1
    for i in range(5000):  # 100 topics x 50 kinds: the budget of 40 lines a minute holds
        rl.note(f"t/{i % 100}", f"field{i % 50}: wrong {i}")
    assert len(drop_lines(caplog)) == 5 + 35
    clock.now += 60
    rl.flush()
    lines = drop_lines(caplog)[40:]
    assert len(lines) == 1  # one summary for every key
    assert lines[0].startswith("dropped 9960 more messages on ")


async def test_1800_bad_messages_bounded_log_all_rejected(
    mosquitto: Broker, station: str, caplog: pytest.LogCaptureFixture
) -> None:
    gw = Bus(mosquitto.settings("gateway"), station=station, service=None)
    hw = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    collector(hw, ch.RELAY_SET)
    rejected = collector(watcher, ch.SERVICE_REJECTED, service="hardware")
    caplog.set_level(logging.WARNING, BUS_LOG)
    topic = ch.RELAY_SET.topic(mosquitto.root, station=station, connector=1)
    async with running(hw, gw, watcher):
        for _ in range(1800):
            gw.publish_raw(topic, b'{"closed": "maybe"}')
        notes = [await asyncio.wait_for(rejected.get(), 10) for _ in range(1800)]
        assert all(n.payload.topic == topic and "closed" in n.payload.reason for n in notes)
        assert len(drop_lines(caplog)) == 5  # within the minute: the first five only
        hw.reject_log.flush(time.monotonic() + 60)  # a minute later
        lines = drop_lines(caplog)
    assert hw.invalid_count == 1800
    assert rejected.empty()
    assert len(lines) == 6, lines
    assert lines[5].startswith("dropped 1795 more messages on " + topic), lines


async def test_summary_comes_on_a_timer_without_further_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rl = RejectLog(burst=1, period_s=0.2)
    caplog.set_level(logging.WARNING, BUS_LOG)
    for _ in range(3):
        rl.note("t/1", "bad")
    await asyncio.sleep(0.4)
    assert drop_lines(caplog)[1:] == [
        "dropped 2 more messages on t/1 in the last 0 s: bad (after 1 logged one by one, "
        "one line like this a minute)"]


async def test_the_real_gateway_logs_a_handful_for_1800_bad_commands(
    mosquitto: Broker, station: str, services: ServiceGroup, tmp_path: Path
) -> None:
    """Issue 13 as measured: 1800 bad payloads made the gateway log 1761 WARNING lines."""
    await services.start_charge_point(mosquitto, station, tmp_path / "data")
    gateway = next(p for p in services.started if p.name == "gateway")
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    rejected = collector(operator, ch.SERVICE_REJECTED, service="gateway")
    topic = ch.COMMAND.topic(mosquitto.root, station=station, connector=1)
    async with running(operator):
        for _ in range(1800):
            operator.publish_raw(topic, b'{"command": "set_current_limit", "amps": "lots"}')
        notes = [await asyncio.wait_for(rejected.get(), 30) for _ in range(1800)]
    assert all(n.payload.topic == topic for n in notes)
    lines = [line for line in gateway.log().splitlines() if "dropped" in line]
    assert 1 <= len(lines) <= 5 + 1, lines  # the first five, a summary only after a minute
