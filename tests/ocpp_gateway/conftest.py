"""A gateway station in-process against the real dev central system and the real Mosquitto,
with the test playing the hardware role on the bus (as the `hardware` MQTT user) and watching
the rest."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import PilotState, ServiceState
from voltbus_common.models import (
    BayOccupancy,
    GatewayCommand,
    MeterReading,
    PilotEvent,
    RelayState,
    RfidSeen,
)
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.station import Station

WATCHED = {
    "relay_set": ch.RELAY_SET, "limit_set": ch.CURRENT_LIMIT_SET, "led_set": ch.LED_SET,
    "status": ch.OCPP_STATUS, "transaction": ch.TRANSACTION, "session": ch.SESSION,
    "charging": ch.CHARGING, "result": ch.COMMAND_RESULT, "connection": ch.OCPP_CONNECTION,
    "display": ch.DISPLAY,
}


class Rig:
    """Hardware peer + watcher on the bus, and the gateway station under test."""

    def __init__(self, broker: Broker, csms: Csms, station: str, data_dir: Path) -> None:
        self.broker = broker
        self.csms = csms
        self.id = station
        self.data_dir = data_dir
        self.hw = Bus(broker.settings("hardware", stations=[station]), station=station,
                      service=None)
        self.op = Bus(broker.settings("operator", stations=[station]), station=station,
                      service=None)
        self.seen: dict[str, list[Received[Any]]] = {name: [] for name in WATCHED}
        self.rejected: list[Received[Any]] = []
        self._changed = asyncio.Event()
        for name, channel in WATCHED.items():
            self.op.on(channel, self._keeper(name))
        self.op.on(ch.SERVICE_REJECTED, self._keep_rejected, service="gateway")
        self._tasks: list[asyncio.Task[None]] = []
        self.gateway: Station | None = None
        self._gw_task: asyncio.Task[None] | None = None
        self.energy_wh = 1000.0
        self.plugged_at: dict[int, datetime] = {}
        self.last_pilot: dict[int, PilotState] = {}

    def _keeper(self, name: str) -> Callable[[Received[Any]], Any]:
        async def keep(msg: Received[Any]) -> None:
            self.seen[name].append(msg)
            self._changed.set()
        return keep

    async def _keep_rejected(self, msg: Received[Any]) -> None:
        self.rejected.append(msg)
        self._changed.set()

    def settings(self, **extra: Any) -> GatewaySettings:
        """Gateway settings for this rig: fast OCPP time (1 s = 0.01 s)."""
        b = self.broker
        values: dict[str, Any] = {
            "mqtt_host": "127.0.0.1", "mqtt_port": b.port, "mqtt_username": "gateway",
            "mqtt_password": b.passwords["gateway"], "root": b.root, "stations": [self.id],
            "csms_url": self.csms.url, "data_dir": self.data_dir, "time_scale": 0.01,
            "reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "response_timeout_s": 3,
            "ocpp_config": {"MeterValueSampleInterval": "20"}}
        values.update(extra)
        return GatewaySettings(**values)

    async def start_buses(self) -> None:
        """Hardware and watcher connected."""
        for bus in (self.hw, self.op):
            self._tasks.append(asyncio.create_task(bus.run()))
        await self.hw.wait_connected(5)
        await self.op.wait_connected(5)

    async def start_gateway(self, **extra: Any) -> Station:
        """Start the station under test (again after stop/kill, with the same data dir)."""
        settings = self.settings(**extra)
        self.csms.behaviour.time_scale = settings.time_scale  # its retry-interval checks
        self.gateway = Station(settings, self.id, Bus(settings, station=self.id,
                                                       service="gateway"))
        self._gw_task = asyncio.create_task(self.gateway.run())
        await self.gateway.bus.wait_connected(5)  # subscribed: commands will not be missed
        return self.gateway

    async def online_201(self, pilot: str = "A", energy_wh: float = 100.0) -> Station:
        """The station speaking 2.0.1 with the EV's pilot and meter given, its EVSE 1 reported."""
        self.meter(energy_wh)
        self.pilot(pilot)
        station = await self.start_gateway(ocpp_version="2.0.1")
        await self.csms.wait_for(self.id, "StatusNotification", where=lambda p: p["evseId"] == 1)
        return station

    async def stop_gateway(self) -> None:
        """Stop it cleanly (as SIGTERM would)."""
        if self._gw_task is not None:
            self._gw_task.cancel()
            done, _ = await asyncio.wait({self._gw_task}, timeout=5)
            if not done:
                stuck = io.StringIO()
                for task in asyncio.all_tasks():
                    task.print_stack(file=stuck)
                raise AssertionError("gateway did not stop within 5 s:\n" + stuck.getvalue())
            self._gw_task = None
            assert self.gateway is not None
            self.gateway.store.close()

    async def close(self) -> None:
        """Stop everything the rig started."""
        await self.stop_gateway()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- playing the hardware -----------------------------------------------------------------

    def pilot(self, state: str, connector: int = 1) -> None:
        """Publish a pilot state (retained, like the hardware service), with the plug-in's
        identity as the hardware gives it: when the pilot left A, None while it is A."""
        pilot = PilotState(state)
        if pilot is PilotState.A:
            self.plugged_at.pop(connector, None)
        elif self.last_pilot.get(connector, PilotState.A) is PilotState.A:
            self.plugged_at[connector] = datetime.now(UTC)
        self.last_pilot[connector] = pilot
        self.hw.publish(ch.PILOT, PilotEvent(state=pilot,
                                             plugged_at=self.plugged_at.get(connector)),
                        connector=connector)

    def hardware_status(self, online: bool = True) -> None:
        """The hardware service's retained status (its `offline` is its Will)."""
        self.hw.publish(ch.SERVICE_STATUS, ServiceState.ONLINE if online
                        else ServiceState.OFFLINE, service="hardware")

    def meter(self, energy_wh: float | None = None, *, power_w: float = 3680.0,
              current_a: list[float] | None = None, connector: int = 1) -> float:
        """Publish a meter reading; returns the register."""
        if energy_wh is not None:
            self.energy_wh = energy_wh
        self.hw.publish(ch.METER, MeterReading(
            energy_wh=self.energy_wh, power_w=power_w, current_a=current_a or [16.0, 15.9, 16.1],
            voltage_v=[230.0, 231.0, 229.0]), connector=connector)
        return self.energy_wh

    def bay(self, occupied: bool, connector: int = 1) -> None:
        """Publish the parking bay detector (retained, like the hardware service)."""
        self.hw.publish(ch.BAY, BayOccupancy(occupied=occupied), connector=connector)

    def relay(self, closed: bool, connector: int = 1) -> None:
        """Publish the relay state actually switched."""
        self.hw.publish(ch.RELAY, RelayState(closed=closed), connector=connector)

    def tap(self, id_tag: str) -> None:
        """Present a card."""
        self.hw.publish(ch.RFID, RfidSeen(id_tag=id_tag))

    def command(self, connector: int = 1, **fields: Any) -> None:
        """Send a gateway command as the operator."""
        self.op.publish(ch.COMMAND, GatewayCommand(**fields), connector=connector)

    # --- waiting -------------------------------------------------------------------------------

    async def wait(self, name: str, where: Callable[[Any], bool] = lambda p: True, *,
                   count: int = 1, connector: int | None = None, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """The payload of the count-th message on a watched channel that matches `where`."""
        async def find() -> Any:
            while True:
                hits = [m.payload for m in self.seen[name] if where(m.payload) and (
                    connector is None or m.connector == connector)]
                if len(hits) >= count:
                    return hits[count - 1]
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)

    async def wait_rejected(self, fragment: str, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """A SERVICE_REJECTED note from the gateway whose reason contains fragment."""
        async def find() -> Any:
            while True:
                for m in self.rejected:
                    if fragment in m.payload.reason:
                        return m.payload
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)

    async def status(self, status: str, *, connector: int = 1, count: int = 1,
                     timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait for the gateway to publish this connector status."""
        return await self.wait("status", lambda p: p.status.value == status, count=count,
                               connector=connector, timeout=timeout)


@pytest.fixture
async def rig(mosquitto: Broker, csms: Csms, station: str, tmp_path: Path) -> AsyncIterator[Rig]:
    """A rig with buses running; the test starts the gateway (so it can pick settings)."""
    csms.behaviour.heartbeat_interval_s = 3600
    r = Rig(mosquitto, csms, station, tmp_path / "data")
    await r.start_buses()
    yield r
    await r.close()
