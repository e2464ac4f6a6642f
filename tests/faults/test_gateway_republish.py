"""A crashed broker restores its last autosave (up to AUTOSAVE_INTERVAL_S old): the gateway's
retained state must be there again after its reconnect, not the broker's older copy. A site
broker bridged to this one takes what this one holds (docs/multi-site.md).

Real processes: the dev central system, simulated hardware and the gateway on a real Mosquitto
that is SIGKILLed right after a status change and started again from its persistence file."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from tests.hardware.helpers import Watch
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ConnectorStatus, ServiceState
from voltbus_common.models import SimPlug

# paho logs ERROR for the connection the broker resets; the services reconnect (asserted).
pytestmark = pytest.mark.expected_errors


async def _retained_status(broker: Broker, station: str) -> ConnectorStatus:
    """What a client that connects now gets as the retained ocpp/1/status."""
    bus = Bus(broker.settings("operator"), station=station, service=None)
    watch = Watch(bus, ch.OCPP_STATUS, connector=1)
    task = asyncio.create_task(bus.run())
    try:
        msg = await watch.until(lambda m: m.retain, 10)
        return ConnectorStatus(msg.payload.status)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_gateway_publishes_its_retained_state_again_after_a_broker_crash(
        own_mosquitto: Broker, station: str, services: ServiceGroup) -> None:
    broker = own_mosquitto
    db = broker.directory / "data" / "mosquitto.db"
    await services.start_charge_point(broker, station, broker.directory.parent / "data")
    watcher = Bus(broker.settings("operator"), station=station, service=None)
    status = Watch(watcher, ch.OCPP_STATUS, connector=1)
    gateway = Watch(watcher, ch.SERVICE_STATUS, service="gateway")
    task = asyncio.create_task(watcher.run())
    try:
        await status.until(lambda m: m.payload.status is ConnectorStatus.AVAILABLE, 30)
        # Available is in the broker's save; Preparing comes after it and is killed unsaved.
        saved = time.time()
        async with asyncio.timeout(3 * 5 + 5):
            while not (db.exists() and db.stat().st_mtime > saved):  # noqa: ASYNC110 - a file
                await asyncio.sleep(0.1)
        watcher.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await status.until(lambda m: m.payload.status is ConnectorStatus.PREPARING, 10)
        preparing_at = time.time()
        await asyncio.to_thread(broker.kill)
        unsaved = db.stat().st_mtime < preparing_at  # the broker's save predates Preparing
        gateway.drain()
        await asyncio.to_thread(broker.start)
        # the gateway's own `online` after its reconnect (live, not the restored copy)
        await gateway.until(lambda m: m.payload is ServiceState.ONLINE and not m.retain, 30)
        await asyncio.sleep(1.0)
        got = await _retained_status(broker, station)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{services.logs()}") from None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert got is ConnectorStatus.PREPARING, (got, f"broker save predated Preparing: {unsaved}")
