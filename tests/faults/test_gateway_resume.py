"""Issue 11's "a station keeps charging through a SIGKILL of the gateway", on real parts: the
hardware service (simulator) and the gateway as processes, the test's own Mosquitto, the dev CSMS
in-process. The gateway is SIGKILLed while a car charges and started again a few seconds later
(longer than the 2 s after which a lost gateway used to open the relay): the hardware keeps the
relay closed (gateway_loss_relay_hold_s), the restarted gateway resumes the transaction, and the
driver then ends it as usual: one start and one stop at the central system. A gateway that stays
away longer than the hold: the hardware opens the relay, and the gateway, once back, stops the
transaction (PowerLoss), once (docs/reliability.md, "Gateway SIGKILL and power cut")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.faults.stack import Stack
from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, wait_online
from tests.hardware.helpers import Watch
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import SimPlug, SimTap

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]
TAG = "RESUME01"


@asynccontextmanager
async def charging(stack: Stack, broker: Broker, csms: Csms, station: str
                   ) -> AsyncIterator[tuple[Bus, Watch]]:
    """Hardware and gateway up, a car plugged in and charging (the relay reported closed)."""
    op = Bus(broker.settings("operator", stations=[station]), station=station, service=None)
    relay = Watch(op, ch.RELAY, connector=1)
    task = asyncio.create_task(op.run())
    try:
        await op.wait_connected(5)
        stack.start("hardware", "gateway")
        await wait_online(broker, station, ("hardware", "gateway"))
        await csms.wait_connected(station, timeout=10)
        op.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await asyncio.sleep(0.5)  # the gateway saw the plug-in
        op.publish(ch.SIM_TAP, SimTap(id_tag=TAG))
        await relay.until(lambda m: m.payload.closed, within=10)
        await asyncio.sleep(2.0)  # meter values flow
        yield op, relay
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def stop_wanted(csms: Csms, station: str, version: str) -> list[Any]:
    if version == "1.6":
        return [m.payload for m in csms.received(station, "StopTransaction")]
    return [m.payload for m in csms.received(station, "TransactionEvent")
            if m.payload["eventType"] == "Ended"]


async def until(what: str, check: Any, within: float) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls the in-process CSMS's record
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_sigkilled_gateway_resumes_the_transaction_the_relay_never_opens(
        own_mosquitto: Broker, csms: Csms, services: ServiceGroup, station: str,
        tmp_path: Path, version: str) -> None:
    stack = Stack(own_mosquitto, csms, services, station, tmp_path / "data", connectors=1)
    stack.env["gateway"]["VOLTBUS_OCPP_VERSION"] = version
    if version == "2.0.1":  # SampledDataCtrlr.TxUpdatedInterval 60 s scaled to 1.2 s
        stack.env["gateway"]["VOLTBUS_TIME_SCALE"] = "0.02"
    try:
        async with charging(stack, own_mosquitto, csms, station) as (op, relay):
            relay.drain()
            before = len(csms.received(station))
            stack.kill_at_once("gateway")
            await wait_online(own_mosquitto, station, ("gateway",), state="offline")
            await asyncio.sleep(3.0)  # past the 2 s after which the relay used to open
            stack.start("gateway")
            await wait_online(own_mosquitto, station, ("gateway",))
            await asyncio.sleep(3.0)  # charging on, metered by the restarted gateway
            opened_meanwhile = [m for m in relay.drain() if not m.payload.closed]
            op.publish(ch.SIM_TAP, SimTap(id_tag=TAG))  # the driver ends the session
            await until("the stop", lambda: stop_wanted(csms, station, version), 15)
            opened = await relay.until(lambda m: not m.payload.closed, within=5)
            await asyncio.sleep(1.0)  # anything sent twice would come now
            after = csms.received(station)[before:]
    except BaseException:
        print(services.logs())
        raise
    assert opened_meanwhile == []
    assert opened.connector == 1
    stops = stop_wanted(csms, station, version)
    assert len(stops) == 1, stops
    if version == "1.6":
        starts = csms.received(station, "StartTransaction")
        assert len(starts) == 1
        assert stops[0]["reason"] == "Local"
        tx_id = stops[0]["transactionId"]
        resumed = [m.payload for m in after if m.action == "MeterValues"]
        assert len(resumed) >= 2, resumed  # MeterValueSampleInterval 1 s
        assert {p.get("transactionId") for p in resumed} == {tx_id}
    else:
        events = [m.payload for m in csms.received(station, "TransactionEvent")]
        kinds = [e["eventType"] for e in events]
        assert (kinds.count("Started"), kinds.count("Ended")) == (1, 1), kinds
        assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
        assert [e["seqNo"] for e in events] == list(range(len(events)))
        assert stops[0]["transactionInfo"]["stoppedReason"] == "Local"
        resumed = [m.payload for m in after if m.action == "TransactionEvent"
                   and m.payload["triggerReason"] == "MeterValuePeriodic"]
        assert len(resumed) >= 2, resumed
    assert csms.violations(station) == []


async def test_a_gateway_away_longer_than_the_hold_finds_the_relay_open_and_stops_once(
        own_mosquitto: Broker, csms: Csms, services: ServiceGroup, station: str,
        tmp_path: Path) -> None:
    stack = Stack(own_mosquitto, csms, services, station, tmp_path / "data", connectors=1)
    stack.env["hardware"]["VOLTBUS_GATEWAY_LOSS_RELAY_HOLD_S"] = "3"
    loop = asyncio.get_running_loop()
    try:
        async with charging(stack, own_mosquitto, csms, station) as (_op, relay):
            relay.drain()
            stack.kill_at_once("gateway")
            killed = loop.time()
            await wait_online(own_mosquitto, station, ("gateway",), state="offline")
            opened = await relay.until(lambda m: not m.payload.closed, within=10)
            held_s = loop.time() - killed
            stack.start("gateway")
            await until("the stop", lambda: stop_wanted(csms, station, "1.6"), 15)
            await asyncio.sleep(1.0)
    except BaseException:
        print(services.logs())
        raise
    assert opened.connector == 1
    assert 2.5 <= held_s <= 6.0, held_s
    stops = stop_wanted(csms, station, "1.6")
    assert len(stops) == 1, stops
    assert stops[0]["reason"] == "PowerLoss"
    assert len(csms.received(station, "StartTransaction")) == 1
    assert csms.violations(station) == []
