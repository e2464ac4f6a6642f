"""InfluxDB outage at 100 connectors, the recorder SIGKILLed during it (docs/reliability.md,
"InfluxDB outage").

Time is compressed: one "second" of 100 connectors metering is 100 readings published back to
back, each stamped one second after the last of its connector. What the real hour changes is the
spool's size (measured here per point, and projected) and the drain time; the order of events
is the real one. Real Mosquitto, real InfluxDB 1.6, the recorder as its own process.

The figures each test measures are printed (`-s`) and listed in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from tests.fixtures.services import ServiceGroup, ServiceProcess
from tests.recorder.helpers import ns, wait_for
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import MeterReading, RecorderHealth

CONNECTORS = 100
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _reading(second: int, connector: int) -> MeterReading:
    return MeterReading(energy_wh=1000.0 * connector + second * 3.05, power_w=11000.0 + connector,
                        current_a=[16.0, 16.1, 15.9], voltage_v=[230.0, 231.0, 229.5],
                        ts=T0 + timedelta(seconds=second))


def _spooled(path: Path) -> int:
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        return int(db.execute("SELECT COUNT(*) FROM spool WHERE line LIKE 'meter,%'"
                              ).fetchone()[0])


class Station:
    """The publishing side (hardware), the recorder process and what its health says."""

    def __init__(self, broker: Broker, influx: InfluxServer, services: ServiceGroup,
                 station: str, data: Path, **env: str) -> None:
        self.services = services
        self.db = "voltbus"
        self.influx = influx
        self.spool = data / "recorder" / "spool.sqlite3"
        self.env = {**broker.env("recorder"), "VOLTBUS_STATIONS": station,
                    "VOLTBUS_DATA_DIR": str(data), "VOLTBUS_INFLUX_URL": influx.url,
                    "VOLTBUS_INFLUX_DATABASE": self.db, "VOLTBUS_RECORDER_RETRY_MAX_S": "0.5",
                    "VOLTBUS_RECORDER_HEALTH_INTERVAL_S": "0.5", "VOLTBUS_LOG_LEVEL": "INFO",
                    **env}
        self.hw = Bus(broker.settings("hardware"), station=station, service=None,
                      outbox_limit=500_000)
        self.watcher = Bus(broker.settings("operator"), station=station, service=None)
        self.health: list[RecorderHealth] = []
        self.watcher.on(ch.RECORDER_HEALTH, self._keep)
        self.published = 0
        self.proc: ServiceProcess | None = None

    async def _keep(self, msg: Received[RecorderHealth]) -> None:
        if msg.payload is not None and not msg.retain:
            self.health.append(msg.payload)

    def start(self) -> None:
        self.proc = self.services.start("recorder", self.env)

    async def publish(self, seconds: range) -> None:
        """100 connectors' readings for each second, and wait until the broker took them."""
        for second in seconds:
            for connector in range(1, CONNECTORS + 1):
                self.hw.publish(ch.METER, _reading(second, connector), connector=connector)
                self.published += 1
            if second % 20 == 0:
                await asyncio.sleep(0)  # let the send loop run
        assert await self.hw.drain(60), "the broker did not take the readings"

    async def health_where(self, what: str, ok: Callable[[RecorderHealth], bool],
                           limit_s: float = 30) -> RecorderHealth:
        """The first health report (from now on) for which ok(report) holds."""
        start = len(self.health)

        def found() -> RecorderHealth | None:
            return next((h for h in self.health[start:] if ok(h)), None)

        report = await wait_for(found, lambda h: h is not None, limit_s, what)
        assert report is not None
        return report

    def stored(self) -> list[tuple[str, int, float]]:
        """(connector, ns, energy_wh) of every meter point in InfluxDB."""
        rows = self.influx.rows("SELECT energy_wh FROM meter GROUP BY connector", db=self.db)
        return [(r["connector"], r["time"], r["energy_wh"]) for r in rows]


def _expected(seconds: range) -> list[tuple[str, int, float]]:
    return [(str(c), ns(_reading(s, c).ts), _reading(s, c).energy_wh)
            for s in seconds for c in range(1, CONNECTORS + 1)]


async def test_outage_at_100_connectors_with_recorder_sigkills_loses_and_doubles_nothing(
        mosquitto: Broker, own_influxdb: InfluxServer, services: ServiceGroup, station: str,
        tmp_path: Path) -> None:
    s = Station(mosquitto, own_influxdb, services, station, tmp_path / "data")
    t_begin = time.monotonic()
    async with running(s.hw, s.watcher):
        s.start()
        await s.health_where("first health", lambda h: h.influx_reachable is not None)
        # 1. InfluxDB goes down; 200 "seconds" of 100 connectors land in the spool.
        own_influxdb.stop()
        await s.publish(range(0, 200))
        await wait_for(lambda: _spooled(s.spool), lambda n: n == 20_000, 30, "20000 spooled")
        down = await s.health_where("health: InfluxDB unreachable, 20000 spooled",
                                    lambda h: h.influx_reachable is False and h.spooled >= 20_000)
        # 2. SIGKILL during the outage; 50 more seconds are queued by the broker meanwhile.
        assert s.proc is not None
        s.proc.kill()
        await s.publish(range(200, 250))
        await asyncio.sleep(0.3)
        # 3. Restarted, still no InfluxDB: the broker's backlog joins the spool on disk (with
        #    the 100 retained readings the broker re-sends on SUBSCRIBE: the same points again).
        s.start()
        await wait_for(lambda: _spooled(s.spool), lambda n: n >= 25_000, 30, "25000 spooled")
        peak = await s.health_where("health: 25000 spooled", lambda h: h.spooled >= 25_000)
        # 4. InfluxDB back: the drain starts; SIGKILL again in the middle of it.
        own_influxdb.start()
        t_back = time.monotonic()
        await wait_for(lambda: _spooled(s.spool), lambda n: n < 20_000, 30, "drain under way")
        s.proc.kill()
        written_before_kill = len(s.stored())
        # 5. Restarted with InfluxDB up, live readings on top: everything arrives, once.
        s.start()
        await s.publish(range(250, 300))
        await wait_for(lambda: _spooled(s.spool), lambda n: n == 0, 40, "empty spool")
        t_drained = time.monotonic()
        stored = await wait_for(s.stored, lambda r: len(r) >= 30_000, 20, "30000 in InfluxDB")
        final = await s.health_where("health ok", lambda h: h.ok)
    assert s.proc.alive(), services.logs()
    assert s.published == 30_000
    assert sorted(stored) == sorted(_expected(range(0, 300))), "lost, doubled or altered"
    assert final.dropped == 0
    assert down.dropped == 0
    assert peak.spool_bytes < 25_000 * 1024  # bounded: well under 1 KiB per point
    print(f"\n[influx outage] 100 connectors, 30000 readings: 0 lost, 0 duplicated; spool "
          f"peak {peak.spooled} points, {peak.spool_bytes / 1e6:.1f} MB "
          f"({peak.spool_bytes / peak.spooled:.0f} B/point -> 1 h at 100 connectors "
          f"= 360000 points = {peak.spool_bytes / peak.spooled * 360_000 / 1e6:.0f} MB); "
          f"{written_before_kill} written before the 2nd SIGKILL; drain after InfluxDB came "
          f"back {t_drained - t_back:.1f} s (with a restart); whole test "
          f"{time.monotonic() - t_begin:.1f} s")


@pytest.mark.expected_errors  # "spool full" is logged as ERROR, on purpose
async def test_spool_cap_drops_the_oldest_says_so_and_keeps_running(
        mosquitto: Broker, own_influxdb: InfluxServer, services: ServiceGroup, station: str,
        tmp_path: Path) -> None:
    s = Station(mosquitto, own_influxdb, services, station, tmp_path / "data",
                VOLTBUS_RECORDER_SPOOL_MAX_POINTS="5000")
    async with running(s.hw, s.watcher):
        s.start()
        await s.health_where("first health", lambda h: h.influx_reachable is not None)
        own_influxdb.stop()
        await s.publish(range(0, 120))  # 12000 readings into a spool of 5000
        full = await s.health_where(
            "health: spool full, drops counted",
            lambda h: h.spooled == 5000 and h.dropped >= 7000 and not h.ok)
        assert s.proc is not None
        assert s.proc.alive(), services.logs()
        own_influxdb.start()
        await wait_for(lambda: _spooled(s.spool), lambda n: n == 0, 30, "empty spool")
        stored = await wait_for(s.stored, lambda r: len(r) >= 4990, 20, "the newest in InfluxDB")
        await asyncio.sleep(0.5)
        stored = s.stored()
    assert s.proc.alive(), services.logs()
    # Oldest first: what is stored is the newest readings, without a gap, and stored + dropped
    # accounts for every point the recorder received (the spool also held a few status points).
    newest = _expected(range(0, 120))[-len(stored):]
    assert sorted(stored) == sorted(newest)
    assert 4990 <= len(stored) <= 5000
    assert full.spool_near_full
    assert full.influx_reachable is False
    assert "spool full (5000 points" in s.proc.log()
    print(f"\n[spool cap] 12000 readings into a 5000-point spool while InfluxDB was down: "
          f"{full.dropped} oldest dropped (counted on service/recorder/health), "
          f"{len(stored)} newest stored after InfluxDB came back, spool "
          f"{full.spool_bytes / 1e6:.2f} MB at the cap; recorder never stopped")
