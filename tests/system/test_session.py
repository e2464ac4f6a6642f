"""System test: every service as its own process walks one charging session end to end.

Real Mosquitto (with the generated passwords and ACL), real InfluxDB 1.6, the development central
system as a process over a real WebSocket, the hardware simulator, the gateway, the recorder and
the API. The test plugs in and taps a card through the simulator's bus topics (as `voltbus sim`
does), stops the session from the central system, and checks what the central system received,
what the bus and the API showed at each step, and what landed in InfluxDB.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, wait_online
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import free_port, wait_for_port
from voltbus_common.enums import ConnectorStatus
from voltbus_common.models import MeterReading, SimPlug, SimTap

pytestmark = pytest.mark.system
TAG = "04A1B2C3"


class Observer:
    """Plays a user's script on the bus: sees statuses, relay states, meter readings, sessions."""

    def __init__(self, broker: Broker, station: str) -> None:
        self.bus = Bus(broker.settings("operator", stations=[station]), station=station,
                       service=None)
        self.statuses: list[ConnectorStatus] = []
        self.relay: list[bool] = []
        self.meter: list[tuple[float, MeterReading]] = []
        self.sessions: list[Any] = []
        self.changed = asyncio.Event()
        self.bus.on(ch.OCPP_STATUS, self._status, connector=1)
        self.bus.on(ch.RELAY, self._relay, connector=1)
        self.bus.on(ch.METER, self._meter, connector=1)
        self.bus.on(ch.SESSION, self._session, connector=1)

    async def _status(self, msg: Received) -> None:
        self.statuses.append(msg.payload.status)
        self.changed.set()

    async def _relay(self, msg: Received) -> None:
        self.relay.append(msg.payload.closed)
        self.changed.set()

    async def _meter(self, msg: Received) -> None:
        self.meter.append((asyncio.get_running_loop().time(), msg.payload))
        self.changed.set()

    async def _session(self, msg: Received) -> None:
        self.sessions.append(msg.payload)
        self.changed.set()

    async def until(self, what: str, predicate: Any, timeout: float = 20) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


class ApiWatcher:
    """Polls the API like the web page does and keeps every distinct state it showed."""

    def __init__(self, client: httpx.AsyncClient, station: str) -> None:
        self.client = client
        self.path = f"/api/v1/stations/{station}/connectors/1"
        self.seen: list[dict[str, Any]] = []

    async def run(self) -> None:
        while True:
            response = await self.client.get(self.path)
            if response.status_code == 200:
                body = response.json()
                if not self.seen or body != self.seen[-1]:
                    self.seen.append(body)
            await asyncio.sleep(0.03)

    async def until_status(self, status: str, timeout: float = 20) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not self.statuses() or self.statuses()[-1] != status:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    def statuses(self) -> list[str]:
        out: list[str] = []
        for body in self.seen:
            status = (body.get("status") or {}).get("status")
            if status and (not out or out[-1] != status):
                out.append(status)
        return out


def in_order(seen: list[str], expected: list[str]) -> bool:
    it = iter(seen)
    return all(any(s == e for s in it) for e in expected)


async def csms_messages(http: httpx.AsyncClient, station: str, action: str) -> list[dict[str, Any]]:
    response = await http.get(f"/chargers/{station}/messages", params={"action": action})
    response.raise_for_status()
    return response.json()


async def wait_csms(http: httpx.AsyncClient, station: str, action: str, count: int = 1,
                    timeout: float = 20) -> list[dict[str, Any]]:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while len(found := await csms_messages(http, station, action)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return found


async def test_a_whole_session_through_every_service(
    mosquitto: Broker, influxdb: InfluxServer, services: ServiceGroup, station: str, tmp_path: Path
) -> None:
    database = influxdb.create_database(f"system_{station.lower()}")
    ws_port, http_port, api_port = free_port(), free_port(), free_port()
    token_file = tmp_path / "api_token"
    token_file.write_text(secrets.token_urlsafe(24))
    base = {"VOLTBUS_STATIONS": station, "VOLTBUS_DATA_DIR": str(tmp_path / "data")}
    influx = {"VOLTBUS_INFLUX_API": "1", "VOLTBUS_INFLUX_URL": influxdb.url,
              "VOLTBUS_INFLUX_DATABASE": database}

    services.start("devcsms", {"VOLTBUS_DEVCSMS_PORT": str(ws_port),
                               "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port)})
    wait_for_port(ws_port, 30)
    wait_for_port(http_port, 30)
    services.start("hardware", {**base, **mosquitto.env("hardware"),
                                "VOLTBUS_METER_INTERVAL_S": "0.2"})
    services.start("gateway", {**base, **mosquitto.env("gateway"),
                               "VOLTBUS_CSMS_URL": f"ws://127.0.0.1:{ws_port}/ocpp"})
    services.start("recorder", {**base, **mosquitto.env("recorder"), **influx,
                                "VOLTBUS_RECORDER_BATCH_MAX_AGE_S": "0.2"})
    services.start("api", {**base, **mosquitto.env("api"), **influx,
                           "VOLTBUS_API_PORT": str(api_port),
                           "VOLTBUS_API_ADMIN_TOKEN_FILE": str(token_file)})
    wait_for_port(api_port, 30)
    await wait_online(mosquitto, station, ("hardware", "gateway", "recorder", "api"))

    observer = Observer(mosquitto, station)
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    bus_tasks = [asyncio.create_task(observer.bus.run()), asyncio.create_task(operator.run())]
    csms = httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10)
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10,
                            headers={"Authorization": f"Bearer {token_file.read_text().strip()}"})
    watcher = ApiWatcher(api, station)
    api_task = asyncio.create_task(watcher.run())
    try:
        await observer.bus.wait_connected(10)
        await operator.wait_connected(10)
        await wait_csms(csms, station, "BootNotification")
        await observer.until("Available", lambda: ConnectorStatus.AVAILABLE in observer.statuses)
        changed = await csms.post("/changeconfig", json={"id": station,
                                                         "key": "MeterValueSampleInterval",
                                                         "value": "1"})
        assert changed.json()[station]["status"] == "Accepted"
        await watcher.until_status("Available")

        # Plug in -> Preparing.
        operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await observer.until("Preparing", lambda: ConnectorStatus.PREPARING in observer.statuses)
        await watcher.until_status("Preparing")  # what a driver sees before tapping the card

        # Tap -> Authorize -> StartTransaction -> relay closed -> Charging.
        operator.publish(ch.SIM_TAP, SimTap(id_tag=TAG))
        authorize = await wait_csms(csms, station, "Authorize")
        assert authorize[0]["payload"]["idTag"] == TAG
        start = (await wait_csms(csms, station, "StartTransaction"))[0]["payload"]
        assert start["idTag"] == TAG
        assert start["connectorId"] == 1
        await observer.until("relay closed", lambda: observer.relay and observer.relay[-1])
        await observer.until("Charging", lambda: ConnectorStatus.CHARGING in observer.statuses)

        # MeterValues at the sample interval, with the measurands the meter has.
        meter_values = await wait_csms(csms, station, "MeterValues", count=2)
        sampled = {v["measurand"] for mv in meter_values for s in mv["payload"]["meterValue"]
                   for v in s["sampledValue"] if "measurand" in v}
        assert {"Energy.Active.Import.Register", "Power.Active.Import",
                "Current.Import"} <= sampled
        await observer.until("energy flowing", lambda: len(observer.meter) > 5 and
                             observer.meter[-1][1].energy_wh > start["meterStart"])

        # RemoteStopTransaction from the central system -> StopTransaction -> relay open.
        stopped = await csms.post("/remotestop", json={"id": station})
        assert stopped.json()["status"] == "Accepted"
        stop = (await wait_csms(csms, station, "StopTransaction"))[0]["payload"]
        await observer.until("relay open", lambda: observer.relay[-1] is False)
        assert stop["transactionId"] > 0
        assert stop["reason"] == "Remote"
        # meterStop is the register of the last reading the gateway had; it may have seen at
        # most one reading more or less than this observer at that instant.
        registers = [r.energy_wh for _, r in observer.meter]
        assert any(stop["meterStop"] in (math.floor(e), round(e)) for e in registers[-8:]), (
            stop["meterStop"], registers[-8:])
        assert stop["meterStop"] > start["meterStart"]
        await observer.until("session summary", lambda: observer.sessions)
        session = observer.sessions[0]
        assert session.stop_reason == "Remote"
        assert session.energy_wh == pytest.approx(session.meter_stop_wh - session.meter_start_wh)
        assert session.energy_wh > 0

        # Unplug -> Available.
        operator.publish(ch.SIM_PLUG, SimPlug(plugged=False), connector=1)
        await observer.until("Available again", lambda: observer.statuses[-1] is
                             ConnectorStatus.AVAILABLE)
        await asyncio.sleep(0.3)  # one more API poll

        # The API showed each step.
        shown = watcher.statuses()
        assert in_order(shown, ["Available", "Preparing", "Charging", "Available"]), shown
        charging_views = [b for b in watcher.seen
                          if (b.get("status") or {}).get("status") == "Charging"]
        assert any(b.get("transaction") and b["transaction"]["id_tag"] == TAG
                   for b in charging_views)
        assert any((b.get("relay") or {}).get("closed") for b in charging_views)
        assert any((b.get("meter") or {}).get("power_w", 0) > 0 for b in charging_views)

        # The readings and the session are in InfluxDB.
        async with asyncio.timeout(20):
            while True:
                rows = influxdb.rows(
                    f"SELECT count(energy_wh) FROM meter WHERE station='{station}'", db=database)
                sessions = influxdb.rows(
                    f"SELECT energy_wh, id_tag, stop_reason FROM session "
                    f"WHERE station='{station}'", db=database)
                if rows and rows[0]["count"] >= len(observer.meter) - 2 and sessions:
                    break
                await asyncio.sleep(0.2)
        assert sessions[0]["id_tag"] == TAG
        assert sessions[0]["energy_wh"] == pytest.approx(session.energy_wh)

        # Issue 10's billing exactness: what the API and the monthly report show for the
        # session is what the central system bills, meterStop - meterStart, within 1 Wh.
        billed = stop["meterStop"] - start["meterStart"]
        assert abs(session.energy_wh - billed) <= 1.0, (session, billed)
        listed = (await api.get("/api/v1/sessions", params={"station": station})).json()
        assert [round(i["meter_stop_wh"]) - round(i["meter_start_wh"])
                for i in listed["items"]] == [billed], listed
        assert abs(listed["items"][0]["energy_wh"] - billed) <= 1.0, listed
        assert abs(listed["total_energy_wh"] - billed) <= 1.0, listed
        month = f"{session.started_at:%Y-%m}"
        report = await api.get(f"/api/v1/reports/{month}.csv", params={"station": station})
        assert report.status_code == 200, report.text
        rows = list(csv.reader(io.StringIO(report.text)))
        kwh = [r[6] for r in rows if r and r[4] == TAG]
        assert kwh == [f"{billed / 1000:.3f}"], (rows, billed)  # exactly the billed Wh
        for proc in services.started:
            assert proc.alive(), f"{proc.name} died:\n{proc.log()[-3000:]}"
    except BaseException:
        print(services.logs())
        raise
    finally:
        api_task.cancel()
        for task in bus_tasks:
            task.cancel()
        await asyncio.gather(api_task, *bus_tasks, return_exceptions=True)
        await csms.aclose()
        await api.aclose()
    # Every service stops cleanly on SIGTERM.
    for proc in reversed(services.started):
        assert proc.stop() == 0, f"{proc.name} did not exit cleanly:\n{proc.log()[-3000:]}"
