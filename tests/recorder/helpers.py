"""Shared helpers for recorder tests: settings, running the recorder in-process, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from tests.fixtures.mosquitto import Broker
from voltbus_common.models import MeterReading
from voltbus_recorder.__main__ import main
from voltbus_recorder.settings import RecorderSettings

T = TypeVar("T")
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def settings(broker: Broker, station: str, data_dir: Path, **extra: Any) -> RecorderSettings:
    """RecorderSettings that join the test broker as `recorder` for one station."""
    values: dict[str, Any] = {
        "mqtt_host": "127.0.0.1", "mqtt_port": broker.port, "mqtt_username": "recorder",
        "mqtt_password": broker.passwords["recorder"], "root": broker.root,
        "stations": [station], "data_dir": data_dir, "recorder_batch_max_age_s": 0.2,
        "recorder_retry_max_s": 0.5, "recorder_health_interval_s": 0.5,
    }
    values.update(extra)
    return RecorderSettings(**values)


@contextlib.asynccontextmanager
async def recorder(cfg: RecorderSettings) -> AsyncIterator[asyncio.Task[None]]:
    """Run the recorder's main() in this event loop; cancel it (a clean stop) on exit."""
    task = asyncio.create_task(main(cfg))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(probe: Callable[[], T], done: Callable[[T], bool], limit_s: float = 10.0,
                   what: str = "condition") -> T:
    """Call the blocking probe in a thread until done(result); return the result."""
    deadline = time.monotonic() + limit_s
    while True:
        result = await asyncio.to_thread(probe)
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {result!r}"[:2000])
        await asyncio.sleep(0.1)


def reading(i: int, *, energy0: float = 1000.0, phases: int = 3,
            start: datetime = T0) -> MeterReading:
    """The i-th reading of a steady 11 kW session, one second apart."""
    return MeterReading(energy_wh=energy0 + i * 11000 / 3600, power_w=11000.0 + i,
                        current_a=[16.0 + i / 100] * phases, voltage_v=[230.0] * phases,
                        ts=start + timedelta(seconds=i))


def ns(ts: datetime) -> int:
    """Epoch nanoseconds (microsecond exact)."""
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
