"""A station whose bridge to the site broker is down (its `bridge/state` 0 on the site broker),
over the real broker: the energy manager sends it nothing, keeps its last limit reserved in the
fuse share (the others get only what is left), says so in `energy/site` at once, and sends its
limits again as soon as the bridge is back. The bridge's MQTT side: tests/energy/test_bridge.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.fixtures.mosquitto import Broker, collector, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import BridgeState
from voltbus_common.models import TransactionState
from voltbus_energy.fuse import Site
from voltbus_energy.manager import Config, ConnectorView, EnergyManager
from voltbus_energy.modes import PvTimers
from voltbus_energy.sources.base import GridReading
from voltbus_energy.sources.simulated import SimGrid


async def test_an_unreachable_station_keeps_its_share_and_is_told(
        mosquitto: Broker, station: str) -> None:
    p1, p2, site = f"{station}a", f"{station}b", f"S{station}"
    energy = Bus(mosquitto.settings("energy", stations=[p1, p2]), station=site,
                 service="energy")
    manager = EnergyManager(
        energy, Config(site=Site(fuse_a=25.0), failsafe_a=6.0, meter_timeout_s=30.0,
                       period_s=0.1, timers=PvTimers(), resend_s=60.0,
                       unreachable_reserve_a=6.0),
        [ConnectorView(p1, 1, (0, 1, 2), 16.0), ConnectorView(p2, 1, (0, 1, 2), 16.0),
         ConnectorView(p1, 2, (0, 1, 2), 16.0)],  # p1's second connector: idle
        SimGrid([p1, p2]))
    gateways = [Bus(mosquitto.settings("gateway", stations=[s]), station=s, service=None)
                for s in (p1, p2)]
    operator = Bus(mosquitto.settings("operator", stations=[p1]), station=p1, service=None)
    limits = collector(operator, ch.ENERGY_LIMIT, station="+")
    sites = collector(operator, ch.ENERGY_SITE, station=site)

    async def next_limits(n: int) -> dict[tuple[str, int], float]:
        got = {}
        while len(got) < n:
            msg = await asyncio.wait_for(limits.get(), 5)
            got[(msg.station, msg.connector)] = msg.payload.amps
        return got

    async def until_limits(want: dict[tuple[str, int], float]) -> None:
        got: dict[tuple[str, int], float] = {}
        while any(got.get(k) != v for k, v in want.items()):
            msg = await asyncio.wait_for(limits.get(), 5)
            got[(msg.station, msg.connector)] = msg.payload.amps

    task = asyncio.create_task(manager.run())
    async with running(energy, *gateways, operator):
        try:
            for gw in gateways:
                gw.publish(ch.TRANSACTION, TransactionState(
                    transaction_id=1, id_tag="TAG", started_at=datetime.now(UTC),
                    meter_start_wh=0.0), connector=1)
            manager.on_grid(GridReading(3450.0, (5.0, 5.0, 5.0)))  # house 5 A
            await until_limits({(p1, 1): 10.0, (p2, 1): 10.0})  # (25 - 5) / 2 each
            await asyncio.sleep(0.3)
            while not limits.empty():
                limits.get_nowait()

            manager.bridge_link(p1, BridgeState.DOWN)
            while not (msg := await asyncio.wait_for(sites.get(), 5)).payload.unreachable_stations:
                pass
            assert msg.payload.unreachable_stations == [p1]
            assert manager.unreachable() == [p1]
            # the house rises to 8 A: 17 A left, p1 keeps its 10 A, its idle connector the 6 A
            # its gateway would fall to after a restart: p2 gets 1 A -> paused (0), not 8.5 A
            manager.on_grid(GridReading(5520.0, (8.0, 8.0, 8.0)))
            assert await next_limits(1) == {(p2, 1): 0.0}
            manager.on_grid(GridReading(3450.0, (5.0, 5.0, 5.0)))  # back to 5 A: 20 - 16 = 4
            await asyncio.sleep(0.5)
            while not limits.empty():  # p2 stays paused; nothing ever goes to p1
                assert (await limits.get()).station != p1
            assert manager.connectors[(p1, 1)].limit_a == 10.0
            assert "unreachable" in (manager.connectors[(p1, 1)].status or "")

            manager.bridge_link(f"{p1},other", BridgeState.UP)  # another bridge: no change
            assert manager.unreachable() == [p1]
            manager.bridge_link(p1, BridgeState.UP)
            got = await next_limits(3)  # at once, all of p1's, and p2's share again
            assert got == {(p1, 1): 10.0, (p1, 2): 0.0, (p2, 1): 10.0}, got
            while (await asyncio.wait_for(sites.get(), 5)).payload.unreachable_stations:
                pass
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
