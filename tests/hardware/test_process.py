"""`python -m voltbus_hardware` as a real process: state on the bus, sim control, clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures.mosquitto import Broker
from tests.fixtures.rapi_peer import RapiBoard
from tests.hardware.helpers import Watch
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import PilotState, ServiceState
from voltbus_common.models import RelayCommand, SimPlug


async def test_service_process_runs_and_stops_cleanly_on_sigterm(
    mosquitto: Broker, station: str
) -> None:
    other = station + "b"
    env = {**os.environ, **mosquitto.env("hardware"), "VOLTBUS_STATIONS": f"{station},{other}",
           "VOLTBUS_CONNECTORS": "2", "VOLTBUS_METER_INTERVAL_S": "0.2"}
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    status = Watch(watcher, ch.SERVICE_STATUS, service="hardware")
    pilots = Watch(watcher, ch.PILOT)
    relays = Watch(watcher, ch.RELAY)
    meters = Watch(watcher, ch.METER)
    other_meters = Watch(watcher, ch.METER, station=other)
    operator = Bus(mosquitto.settings("operator"), station=station, service=None)
    gateway = Bus(mosquitto.settings("gateway"), station=station, service=None)
    tasks = [asyncio.create_task(b.run()) for b in (watcher, operator, gateway)]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "voltbus_hardware",
                                                env=env, stderr=subprocess.PIPE)
    try:
        await status.until(lambda m: m.payload is ServiceState.ONLINE, within=15)
        assert {(await pilots.next()).connector for _ in range(2)} == {1, 2}
        await other_meters.next()  # the second station runs in the same process
        operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=2)
        await pilots.until(lambda m: m.payload.state is PilotState.B and m.connector == 2)
        gateway.publish(ch.RELAY_SET, RelayCommand(closed=True), connector=2)
        await relays.until(lambda m: m.payload.closed and m.connector == 2)
        await meters.until(lambda m: m.connector == 2 and m.payload.power_w > 0)

        proc.send_signal(signal.SIGTERM)
        opened = await relays.until(lambda m: not m.payload.closed, within=10)
        await status.until(lambda m: m.payload is ServiceState.OFFLINE, within=10)
        code = await asyncio.wait_for(proc.wait(), 10)
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert code == 0, stderr
    assert opened.connector == 2  # the relay opens when the service stops
    assert "Traceback" not in stderr


def test_invalid_settings_exit_with_a_readable_message(mosquitto: Broker) -> None:
    env = {**os.environ, **mosquitto.env("hardware"), "VOLTBUS_CONNECTORS": "0"}
    proc = subprocess.run([sys.executable, "-m", "voltbus_hardware"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "VOLTBUS_CONNECTORS" in proc.stderr


async def test_service_process_with_a_station_file(mosquitto: Broker, station: str,
                                                   rapi_board: RapiBoard, tmp_path: Path) -> None:
    path = tmp_path / "station.yaml"
    path.write_text(
        f"id: {station}\n"
        "connectors:\n"
        f"  - evse: {{type: openevse, port: {rapi_board.port}, timeout_s: 0.3}}\n"
        "    relay: {type: evse}\n"
        "    meter: {type: evse}\n"
        "    led: {type: gpio_rgb, red: 13, green: 19, blue: 26}\n"
        "buzzer: {type: gpio, pin: 23}\n")
    env = {**os.environ, **mosquitto.env("hardware"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_STATION_FILE": str(path), "VOLTBUS_METER_INTERVAL_S": "0.2",
           "GPIOZERO_PIN_FACTORY": "mock", "VOLTBUS_DATA_DIR": str(tmp_path / "data")}
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    status = Watch(watcher, ch.SERVICE_STATUS, service="hardware")
    pilots, relays = Watch(watcher, ch.PILOT), Watch(watcher, ch.RELAY)
    meters = Watch(watcher, ch.METER)
    gateway = Bus(mosquitto.settings("gateway"), station=station, service=None)
    tasks = [asyncio.create_task(b.run()) for b in (watcher, gateway)]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "voltbus_hardware",
                                                env=env, stderr=subprocess.PIPE)
    try:
        await status.until(lambda m: m.payload is ServiceState.ONLINE, within=15)
        await pilots.until(lambda m: m.payload.state is PilotState.A)
        rapi_board.plug(True)
        await pilots.until(lambda m: m.payload.state is PilotState.B)
        gateway.publish(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await relays.until(lambda m: m.payload.closed)
        rapi_board.milliamps = 10_000
        reading = await meters.until(lambda m: m.payload.current_a == [10.0])
        assert rapi_board.enabled
        proc.send_signal(signal.SIGTERM)
        await relays.until(lambda m: not m.payload.closed, within=10)
        code = await asyncio.wait_for(proc.wait(), 10)
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert code == 0, stderr
    assert not rapi_board.enabled  # the board was put to sleep on the way out
    assert reading.payload.energy_wh == rapi_board.wh_total
