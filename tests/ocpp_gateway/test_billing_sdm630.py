"""Issue 10 §1's goal on the gateway's billing path with a Modbus meter: an SDM630 on a pty
(pymodbus RTU server, tests/fixtures/modbus_slave.py) whose register runs at 11 kW while the
contactor is closed and which, like a real meter, shows its values 0.5 s late; the hardware
service in-process, the real gateway, the dev central system over a real WebSocket.

|meterStop - register after the relay opened| <= 1 Wh, |meterStart - register when it closed|
<= 1 Wh, and |meterStart(n+1) - meterStop(n)| <= 1 Wh for every session; the bus's session
summary bills the same meterStop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fixtures.csms import Csms
from tests.fixtures.modbus_slave import ModbusSlave
from tests.fixtures.mosquitto import Broker
from tests.hardware.test_switch_reading import (  # the meter on its pty, and its contactor
    LiveLine,
    live_sdm630,  # noqa: F401 (a fixture)
    sdm630_station,
)
from tests.ocpp_gateway.test_billing import TAG, charge_point
from voltbus_common import channels as ch
from voltbus_common.enums import PilotState
from voltbus_common.models import GatewayCommand, SimPlug
from voltbus_hardware.controller import ControllerConfig

SESSIONS = 3


async def test_sdm630_on_a_pty_bills_within_1wh_at_11kw(
        live_sdm630: tuple[ModbusSlave, LiveLine], mosquitto: Broker, csms: Csms,  # noqa: F811
        station: str, tmp_path: Path) -> None:
    slave, line = live_sdm630
    hardware, relay = sdm630_station(slave, line, station)
    truth: list[tuple[float, float]] = []  # the true register at each close and open
    async with charge_point(mosquitto, csms, station, tmp_path / "data",
                            hardware=ControllerConfig(meter_interval_s=1.0, poll_interval_s=0.05),
                            station_hw=hardware) as (hw, _gw, watches):
        for n in range(1, SESSIONS + 1):
            hw.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
            await hw.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
            hw.send(ch.COMMAND, GatewayCommand(command="start", id_tag=TAG,
                                               request_id=f"a{n}"), connector=1)
            await csms.wait_for(station, "StartTransaction", count=n)
            await hw.watches["relay"].until(lambda m: m.payload.closed)
            await asyncio.sleep(1.5)  # ~4.6 Wh at 11 kW
            hw.send(ch.COMMAND, GatewayCommand(command="stop", request_id=f"s{n}"), connector=1)
            await csms.wait_for(station, "StopTransaction", count=n, timeout=6)
            truth.append((relay.register_at[True], relay.register_at[False]))
            hw.send(ch.SIM_PLUG, SimPlug(plugged=False), connector=1)
            await hw.watches["pilot"].until(lambda m: m.payload.state is PilotState.A)
        summaries = [m.payload for m in watches["session"].drain() if m.payload is not None]
    starts = [m.payload["meterStart"] for m in csms.received(station, "StartTransaction")]
    stops = [m.payload["meterStop"] for m in csms.received(station, "StopTransaction")]
    stop_errors = [stop - opened for stop, (_closed, opened) in zip(stops, truth, strict=True)]
    start_errors = [start - closed for start, (closed, _opened) in zip(starts, truth, strict=True)]
    gaps = [nxt - stop for stop, nxt in zip(stops, starts[1:], strict=False)]
    print(f"SDM630/pty 11 kW: meterStop - register after open {stop_errors}; meterStart - "
          f"register at close {start_errors}; meterStart(n+1) - meterStop(n) {gaps}")
    # OCPP's meterStart/meterStop are integer Wh: rounding alone is up to 0.5 Wh
    assert all(abs(e) <= 1.0 for e in stop_errors), stop_errors
    assert all(abs(e) <= 1.0 for e in start_errors), start_errors
    assert all(abs(g) <= 1.0 for g in gaps), gaps
    assert all(stop - start > 3 for start, stop in zip(starts, stops, strict=True))  # it charged
    assert [round(s.meter_stop_wh) for s in summaries] == stops
    assert csms.violations(station) == []
