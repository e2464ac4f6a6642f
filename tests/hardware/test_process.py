"""`python -m voltbus_hardware` as a real process: state on the bus, sim control, clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from tests.fixtures.mosquitto import Broker
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
