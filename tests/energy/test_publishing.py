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


async def test_a_restarted_manager_resumes_the_plan_count_from_the_retained_mode(
        mosquitto: Broker, station: str) -> None:
    """The plan counts energy from the meter register it began at (plan_meter_start_wh, retained
    on energy/{c}/mode): after a restart it neither starts over nor forgets the target."""
    from datetime import timedelta

    from voltbus_common.enums import ChargeMode
    from voltbus_common.models import ChargeModeSetting, ChargeModeState, MeterReading

    def manager(bus: Bus) -> EnergyManager:
        return EnergyManager(
            bus, Config(site=Site(fuse_a=25.0), failsafe_a=6.0, meter_timeout_s=30.0,
                        period_s=0.1, timers=PvTimers()),
            [ConnectorView(station, 1, (0, 1, 2), 16.0)], SimGrid([station]))

    async def until_added(wh: float) -> ChargeModeState:
        async def loop() -> ChargeModeState:
            while True:
                got = (await modes.get()).payload
                if got is not None and got.plan_added_wh == wh:
                    return got
        return await asyncio.wait_for(loop(), 10)

    def reading(wh: float) -> MeterReading:
        return MeterReading(energy_wh=wh, power_w=0.0, current_a=[0.0] * 3, voltage_v=[230.0] * 3)

    hardware = Bus(mosquitto.settings("hardware", stations=[station]), station=station,
                   service=None)
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    modes = collector(operator, ch.ENERGY_MODE, connector=1)
    departure = datetime.now(UTC) + timedelta(hours=10)
    async with running(hardware, operator):
        hardware.publish(ch.METER, reading(50000.0), connector=1)
        first_bus = Bus(mosquitto.settings("energy", stations=[station]), station=f"S{station}",
                        service="energy")
        first = manager(first_bus)
        task = asyncio.create_task(first.run())
        async with running(first_bus):
            await asyncio.sleep(0.3)
            operator.publish(ch.ENERGY_MODE_SET, ChargeModeSetting(
                mode=ChargeMode.PLAN, plan_energy_wh=10000.0, plan_departure=departure),
                connector=1)
            hardware.publish(ch.METER, reading(53000.0), connector=1)
            state = await until_added(3000.0)
            assert state.plan_meter_start_wh == 50000.0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        second_bus = Bus(mosquitto.settings("energy", stations=[station]), station=f"S{station}",
                         service="energy")
        second = manager(second_bus)
        task = asyncio.create_task(second.run())
        async with running(second_bus):
            try:
                hardware.publish(ch.METER, reading(54000.0), connector=1)
                state = await until_added(4000.0)
                assert state.mode is ChargeMode.PLAN
                assert state.plan_energy_wh == 10000.0
                assert state.plan_meter_start_wh == 50000.0
                assert state.status is not None
                assert state.status.startswith("plan: 4.0 of 10.0 kWh")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def test_a_plan_in_progress_does_not_resend_its_mode_state_every_decision() -> None:
    """The slot in progress starts "now" at every replan: the mode state must not follow it."""
    from datetime import timedelta

    from tests.energy.site_sim import SiteSim
    from voltbus_common.enums import ChargeMode
    from voltbus_common.models import ChargeModeSetting

    start = datetime(2026, 12, 3, 12, 0, 30, tzinfo=UTC)
    sim = SiteSim([ConnectorView("CP1", 1, (0, 1, 2), 16.0)], fuse_a=25.0, start=start)
    sim.manager.set_mode("CP1", 1, ChargeModeSetting(
        mode=ChargeMode.PLAN, plan_energy_wh=50000.0, plan_departure=start + timedelta(hours=8)))
    sim.plug_in("CP1/1")
    mode_topic = ch.ENERGY_MODE.topic(sim.bus.root, station="CP1", connector=1)
    before = sum(1 for t, *_ in sim.bus._outbox if t == mode_topic)
    for _ in range(20):  # 20 one-second decisions, charging in the current slot
        sim.step(1.0)
    sent = sum(1 for t, *_ in sim.bus._outbox if t == mode_topic) - before
    assert 1 <= sent <= 5  # the plan, its limit, and a status line per 0.1 kWh added


async def test_a_raise_waits_until_the_cut_is_in_force_at_its_gateway(
        mosquitto: Broker, station: str) -> None:
    """With cut_confirm_s (bridged stations), a decision that cuts one station and raises
    another sends the cut, then the raise only once the cut station's gateway says the lower
    limit is in force (ocpp/{c}/charging), or after cut_confirm_s without an answer: the raise
    cannot reach its car before the cut reaches the other one."""
    from voltbus_common.enums import ChargeMode
    from voltbus_common.models import ChargeModeSetting, ChargingState

    a, b = station, f"{station}b"
    energy = Bus(mosquitto.settings("energy", stations=[a, b]), station=f"S{station}",
                 service="energy")
    manager = EnergyManager(
        energy, Config(site=Site(fuse_a=25.0), failsafe_a=6.0, meter_timeout_s=30.0,
                       period_s=0.1, timers=PvTimers(), resend_s=60.0, cut_confirm_s=2.0),
        [ConnectorView(a, 1, (0, 1, 2), 16.0), ConnectorView(b, 1, (0, 1, 2), 16.0)],
        SimGrid([a, b]))
    gateway = Bus(mosquitto.settings("gateway", stations=[a, b]), station=a, service=None)
    operator = Bus(mosquitto.settings("operator", stations=[a, b]), station="+",
                   service=None)
    limits = collector(operator, ch.ENERGY_LIMIT)

    async def next_limits(within_s: float) -> dict[str, float]:
        got = {}
        msg = await asyncio.wait_for(limits.get(), within_s)
        got[msg.station] = msg.payload.amps
        while not limits.empty():
            msg = limits.get_nowait()
            got[msg.station] = msg.payload.amps
        return got

    def prefer(station_id: str, priority: int) -> None:
        operator.publish(ch.ENERGY_MODE_SET, ChargeModeSetting(mode=ChargeMode.NOW,
                                                               priority=priority),
                         station=station_id, connector=1)

    task = asyncio.create_task(manager.run())
    async with running(energy, gateway, operator):
        try:
            for s in (a, b):
                gateway.publish(ch.TRANSACTION, TransactionState(
                    transaction_id=1, id_tag="TAG", started_at=datetime.now(UTC),
                    meter_start_wh=0.0), station=s, connector=1)
            manager.on_grid(GridReading(1150.0, (5.0, 5.0, 5.0)))  # 20 A for the cars
            shares: dict[str, float] = {}
            while shares != {a: 10.0, b: 10.0}:
                shares.update(await next_limits(5))
            for s in (a, b):
                gateway.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=10.0),
                                station=s, connector=1)
            await asyncio.sleep(0.3)
            # b first: b may take 16 A, a drops below 6 A (0); the cut goes, the raise waits
            prefer(b, 5)
            assert await next_limits(5) == {a: 0.0}
            await asyncio.sleep(1.0)
            assert limits.empty(), "the raise did not wait for the cut"
            started = asyncio.get_running_loop().time()
            gateway.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=0.0),
                            station=a, connector=1)
            assert await next_limits(5) == {b: 16.0}
            assert asyncio.get_running_loop().time() - started < 0.5  # at once on the answer
            # a first now, and b's gateway never answers: the raise goes after cut_confirm_s
            gateway.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=16.0),
                            station=b, connector=1)
            prefer(a, 9)
            cut = asyncio.get_running_loop().time()
            assert await next_limits(5) == {b: 0.0}
            assert await next_limits(5) == {a: 16.0}
            assert asyncio.get_running_loop().time() - cut >= 1.8
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_held_raise_still_refreshes_the_old_limit(mosquitto: Broker, station: str) -> None:
    """A gateway holds an energy limit only while it is refreshed (its fail-safe): a raise held
    for a cut that is not confirmed sends the station's old limit again every resend_s until
    it may go. Every limit names the energy manager's site."""
    from voltbus_common.enums import ChargeMode
    from voltbus_common.models import ChargeModeSetting, ChargingState

    a, b = station, f"{station}b"
    site = f"S{station}"
    energy = Bus(mosquitto.settings("energy", stations=[a, b]), station=site, service="energy")
    manager = EnergyManager(
        energy, Config(site=Site(fuse_a=25.0), failsafe_a=6.0, meter_timeout_s=30.0,
                       period_s=0.1, timers=PvTimers(), resend_s=0.5, cut_confirm_s=3.0),
        [ConnectorView(a, 1, (0, 1, 2), 16.0), ConnectorView(b, 1, (0, 1, 2), 16.0)],
        SimGrid([a, b]))
    gateway = Bus(mosquitto.settings("gateway", stations=[a, b]), station=a, service=None)
    operator = Bus(mosquitto.settings("operator", stations=[a, b]), station="+",
                   service=None)
    limits = collector(operator, ch.ENERGY_LIMIT)
    task = asyncio.create_task(manager.run())
    async with running(energy, gateway, operator):
        try:
            for s in (a, b):
                gateway.publish(ch.TRANSACTION, TransactionState(
                    transaction_id=1, id_tag="TAG", started_at=datetime.now(UTC),
                    meter_start_wh=0.0), station=s, connector=1)
            manager.on_grid(GridReading(1150.0, (5.0, 5.0, 5.0)))  # 20 A for the cars
            loop = asyncio.get_running_loop()
            latest: dict[str, float] = {}
            while latest != {a: 10.0, b: 10.0}:
                msg = await asyncio.wait_for(limits.get(), 5)
                assert msg.payload.site == site
                latest[msg.station] = msg.payload.amps
            for s in (a, b):
                gateway.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=10.0),
                                station=s, connector=1)
            await asyncio.sleep(0.3)
            while not limits.empty():
                limits.get_nowait()
            # b first: a is cut to 0 and never confirms it; b's raise waits up to 3 s
            operator.publish(ch.ENERGY_MODE_SET, ChargeModeSetting(mode=ChargeMode.NOW,
                                                                   priority=5),
                             station=b, connector=1)
            cut = None
            held: list[float] = []  # when b's old 10 A came again during the hold
            while True:
                msg = await asyncio.wait_for(limits.get(), 5)
                assert msg.payload.site == site
                if msg.station == a and msg.payload.amps == 0.0 and cut is None:
                    cut = loop.time()
                elif msg.station == b and msg.payload.amps == 10.0 and cut is not None:
                    held.append(loop.time() - cut)
                elif msg.station == b and msg.payload.amps == 16.0:
                    assert cut is not None
                    assert loop.time() - cut >= 2.8  # the raise waited for cut_confirm_s
                    break
            assert len(held) >= 4, held  # every 0.5 s within the 3 s hold
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
