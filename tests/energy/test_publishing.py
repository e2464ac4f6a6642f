"""What the manager sends, over the real broker: a changed limit at once, an unchanged one only
every resend period, and all of a station's limits as soon as its gateway comes (back) online
(a restarted gateway knows no energy limit)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.fixtures.mosquitto import Broker, collector, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ServiceState
from voltbus_common.models import TransactionState
from voltbus_energy.fuse import Site
from voltbus_energy.manager import Config, ConnectorView, EnergyManager
from voltbus_energy.modes import PvTimers
from voltbus_energy.sources.base import GridReading
from voltbus_energy.sources.simulated import SimGrid


async def test_changed_limits_at_once_unchanged_rarely_all_when_the_gateway_returns(
        mosquitto: Broker, station: str) -> None:
    energy = Bus(mosquitto.settings("energy", stations=[station]), station=f"S{station}",
                 service="energy")
    manager = EnergyManager(
        energy, Config(site=Site(fuse_a=25.0), failsafe_a=6.0, meter_timeout_s=30.0,
                       period_s=0.1, timers=PvTimers(), resend_s=60.0),
        [ConnectorView(station, 1, (0, 1, 2), 16.0), ConnectorView(station, 2, (0, 1, 2), 16.0)],
        SimGrid([station]))
    gateway = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
                  service=None)
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    limits = collector(operator, ch.ENERGY_LIMIT)
    task = asyncio.create_task(manager.run())
    async with running(energy, gateway, operator):
        try:
            gateway.publish(ch.TRANSACTION, TransactionState(
                transaction_id=1, id_tag="TAG", started_at=datetime.now(UTC),
                meter_start_wh=0.0), connector=1)
            manager.on_grid(GridReading(1150.0, (5.0, 5.0, 5.0)))
            got = {}
            while got.get(1) != 16.0:
                msg = await asyncio.wait_for(limits.get(), 5)
                got[msg.connector] = msg.payload.amps
            assert got[2] == 0.0  # no session there
            await asyncio.sleep(1.0)  # ten decisions, nothing changed: nothing sent
            assert limits.empty()
            manager.on_grid(GridReading(4140.0, (18.0, 5.0, 5.0)))  # 7 A left on L1
            msg = await asyncio.wait_for(limits.get(), 5)
            assert (msg.connector, msg.payload.amps) == (1, 7.0)
            await asyncio.sleep(0.5)
            assert limits.empty()
            gateway.publish(ch.SERVICE_STATUS, ServiceState.ONLINE, service="gateway")
            again = {}
            for _ in range(2):
                msg = await asyncio.wait_for(limits.get(), 5)
                again[msg.connector] = msg.payload.amps
            assert again == {1: 7.0, 2: 0.0}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
