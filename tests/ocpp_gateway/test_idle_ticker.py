"""The station's ticker waits for its next deadline instead of polling (issue 14): an idle
station does not tick, and the ticked features still come on time (real gateway, dev CSMS,
Mosquitto; OCPP time x0.01)."""

from __future__ import annotations

import asyncio

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.model.events import Effect, Event, Tick


def _count_ticks(rig: Rig) -> list[float]:
    assert rig.gateway is not None
    ticks: list[float] = []
    loop = asyncio.get_running_loop()

    def seen(event: Event, _effects: list[Effect]) -> None:
        if isinstance(event, Tick):
            ticks.append(loop.time())
    rig.gateway.on_dispatch(seen)
    return ticks


async def test_an_idle_station_does_not_tick_and_a_session_samples_on_time(rig: Rig) -> None:
    rig.meter(1000.0)
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)
    await asyncio.sleep(0.3)  # boot settled
    ticks = _count_ticks(rig)
    await asyncio.sleep(1.0)
    assert ticks == []  # polling ticked every 0.05 s here (20 times in this second)

    rig.pilot("C")
    rig.tap("TAG")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("relay_set", lambda p: p.closed is True)
    rig.relay(True)
    rig.meter(1100.0)
    # MeterValueSampleInterval 20 = 0.2 s here: samples every 0.2 s, ticks only for them (and
    # the transaction's energy on the bus, 0.1 s here)
    before = len(rig.csms.received(rig.id, "MeterValues"))
    await rig.csms.wait_for(rig.id, "MeterValues", count=before + 4, timeout=5)
    tx = await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 100.0)
    assert tx.id_tag == "TAG"
    running = len(ticks)
    await asyncio.sleep(1.0)
    assert 3 <= len(ticks) - running <= 8  # ~5 samples a second, no polling in between

    rig.tap("TAG")
    await rig.csms.wait_for(rig.id, "StopTransaction")
    rig.pilot("A")
    await rig.status("Available")
    await asyncio.sleep(0.5)
    stopped = len(ticks)
    await asyncio.sleep(1.0)
    assert len(ticks) == stopped  # idle again


async def test_a_tap_waiting_for_the_plug_times_out_without_polling(rig: Rig) -> None:
    rig.meter(1000.0)
    await rig.start_gateway(ocpp_config={"ConnectionTimeOut": "30"})  # 0.3 s here
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)
    rig.tap("TAG")
    await rig.status("Preparing")
    loop = asyncio.get_running_loop()
    start = loop.time()
    mark = len(rig.seen["status"])
    while not [m for m in rig.seen["status"][mark:] if m.payload.status.value == "Available"]:
        assert loop.time() - start < 3, "the authorisation never timed out"
        await asyncio.sleep(0.02)
    assert loop.time() - start >= 0.2
