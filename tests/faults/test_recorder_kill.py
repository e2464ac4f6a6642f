"""The recorder SIGKILLed in the middle of a full-speed burst of meter readings: none lost, none
doubled (docs/reliability.md, "Recorder SIGKILL during a burst").

Meter readings used to travel at QoS 0: the broker forgets a QoS 0 message once it has written it
to the socket, so what the recorder had read but not yet committed to its spool died with it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.faults.test_influx_outage import CONNECTORS, Station, _expected
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from tests.fixtures.services import ServiceGroup
from tests.recorder.helpers import wait_for

SECONDS = 60  # 6000 readings


async def _settled(s: Station, want: int, limit_s: float = 30,
                   quiet_s: float = 3) -> list[tuple[str, int, float]]:
    """What InfluxDB holds once it has `want` points, or has not grown for quiet_s."""
    deadline = time.monotonic() + limit_s
    stored = await asyncio.to_thread(s.stored)
    since = time.monotonic()
    while len(stored) < want and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        now = await asyncio.to_thread(s.stored)
        if len(now) != len(stored):
            stored, since = now, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            break
    return stored


async def test_recorder_sigkill_mid_burst_loses_no_reading(
        own_mosquitto: Broker, influxdb: InfluxServer, services: ServiceGroup, station: str,
        tmp_path: Path) -> None:
    s = Station(own_mosquitto, influxdb, services, station, tmp_path / "data")
    s.db = f"kill_{station.lower()}"
    s.env["VOLTBUS_INFLUX_DATABASE"] = s.db
    t_begin = time.monotonic()
    async with running(s.hw, s.watcher):
        s.start()
        await s.health_where("first health", lambda h: h.influx_reachable is True)
        burst = asyncio.create_task(s.publish(range(SECONDS)))
        await wait_for(lambda: s.proc is not None and len(s.stored()), lambda n: n >= 500, 30,
                       "the burst reaching InfluxDB")
        assert s.proc is not None
        s.proc.kill()
        stored_at_kill = len(s.stored())
        await burst
        reports = len(s.health)
        s.start()
        await wait_for(lambda: len(s.health), lambda n: n > reports + 1, 30,
                       "health from the restarted recorder")
        expected = _expected(range(SECONDS))
        stored = await _settled(s, len(expected))
    lost = len(set(expected) - set(stored))
    print(f"\n[recorder kill] {CONNECTORS} connectors, {len(expected)} readings at full speed, "
          f"SIGKILL with {stored_at_kill} stored: {lost} lost; "
          f"{time.monotonic() - t_begin:.1f} s")
    assert sorted(stored) == sorted(expected), f"{lost} lost, or doubled or altered"
