"""Simulated hardware wakes its loops on every change: idle, nothing is polled (issue 14)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.enums import PilotState
from voltbus_common.models import SimPlug, SimTap


def counting(calls: list[float], fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """fn, noting the loop time of each call."""
    async def wrapped() -> Any:
        calls.append(asyncio.get_running_loop().time())
        return await fn()
    return wrapped


async def test_idle_simulated_station_is_not_polled_but_reacts_at_once(
        mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:  # poll_interval_s 0.05: 20 polls a second
        w = r.watches
        await w["pilot"].until(lambda m: m.payload.state is PilotState.A)
        evse, reader = r.station.connectors[1].evse, r.station.readers[0]
        status_calls: list[float] = []
        read_calls: list[float] = []
        evse.status = counting(status_calls, evse.status)  # type: ignore[method-assign]
        reader.read_tag = counting(read_calls, reader.read_tag)  # type: ignore[method-assign]
        await asyncio.sleep(1.0)
        assert len(status_calls) <= 1
        assert len(read_calls) <= 1

        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is PilotState.B, within=1.0)
        r.send(ch.SIM_TAP, SimTap(id_tag="IDLE01"))
        seen = await w["rfid"].next(within=1.0)
        assert seen.payload.id_tag == "IDLE01"
