"""State from retained bus topics appears in the API; bad bus payloads never break it."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Peers, eventually
from tests.fixtures.mosquitto import Broker
from voltbus_api.context import ApiContext
from voltbus_common import channels as ch
from voltbus_common.enums import ConnectorStatus, PilotState, RegistrationStatus
from voltbus_common.models import (
    ChargingState,
    HardwareError,
    MeterReading,
    OcppConnection,
    OcppConnectorStatus,
    PilotEvent,
    RelayState,
    TransactionState,
)

API = tuple[httpx.AsyncClient, ApiContext]


def publish_session_state(peers: Peers) -> None:
    """A connector in the middle of a charging session, as hardware and gateway publish it."""
    hw, gw = peers.hardware, peers.gateway
    hw.publish(ch.PILOT, PilotEvent(state=PilotState.C), connector=1)
    hw.publish(ch.RELAY, RelayState(closed=True), connector=1)
    hw.publish(ch.METER, MeterReading(energy_wh=12345.5, power_w=7360.0,
                                      current_a=[10.7, 10.6, 10.7],
                                      voltage_v=[230.0, 230.0, 230.0]), connector=1)
    hw.publish(ch.HW_ERROR, HardwareError(code="NoError"), connector=1)
    gw.publish(ch.OCPP_CONNECTION, OcppConnection(connected=True,
                                                  registration=RegistrationStatus.ACCEPTED))
    gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING), connector=1)
    gw.publish(ch.TRANSACTION, TransactionState(
        transaction_id=42, id_tag="04A1B2C3", started_at="2026-01-01T12:00:00Z",
        meter_start_wh=12000.0, energy_wh=345.5), connector=1)
    gw.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=16.0), connector=1)


async def test_retained_state_appears(api: API, peers: Peers, station: str) -> None:
    client, _ = api
    publish_session_state(peers)

    async def complete() -> bool:
        r = await client.get(f"/api/v1/stations/{station}/connectors/1")
        return r.status_code == 200 and all(
            r.json()[k] is not None for k in ("status", "pilot", "relay", "meter", "error",
                                              "transaction", "charging"))

    await eventually(complete)
    c = (await client.get(f"/api/v1/stations/{station}/connectors/1")).json()
    assert c["status"]["status"] == "Charging"
    assert c["pilot"]["state"] == "C"
    assert c["relay"]["closed"] is True
    assert c["meter"]["energy_wh"] == 12345.5
    assert c["meter"]["power_w"] == 7360.0
    assert c["error"]["code"] == "NoError"
    assert c["transaction"] == {"transaction_id": 42, "id_tag": "04A1B2C3",
                                "started_at": "2026-01-01T12:00:00Z",
                                "meter_start_wh": 12000.0, "energy_wh": 345.5,
                                "transaction_ref": None}  # additive (issue 13)
    assert c["charging"]["current_limit_a"] == 16.0

    stations = (await client.get("/api/v1/stations")).json()
    assert [s["station"] for s in stations] == [station]
    assert stations[0]["ocpp"]["registration"] == "Accepted"
    assert [c["connector"] for c in stations[0]["connectors"]] == [1]
    assert (await client.get(f"/api/v1/stations/{station}/connectors")).json()[0]["connector"] == 1

    # The empty retained transaction clears it.
    peers.gateway.publish(ch.TRANSACTION, None, connector=1)

    async def cleared() -> bool:
        r = await client.get(f"/api/v1/stations/{station}/connectors/1")
        return r.json()["transaction"] is None

    await eventually(cleared)


async def test_state_published_before_the_api_started_is_there(
        mosquitto: Broker, peers: Peers, station: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.api.conftest import api_settings, running_api
    publish_session_state(peers)
    await peers.gateway.drain()
    await peers.hardware.drain()
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, _):
        async def seen() -> bool:
            r = await client.get(f"/api/v1/stations/{station}/connectors/1")
            return r.status_code == 200 and r.json()["charging"] is not None

        await eventually(seen)


async def test_health_lists_every_service(api: API, peers: Peers, station: str) -> None:
    client, _ = api

    async def services_seen() -> bool:
        body = (await client.get("/api/v1/health")).json()
        return {"gateway", "hardware", "api"} <= set(body["services"][station])

    await eventually(services_seen)
    r = await client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["api"] == {"status": "online", "mqtt_connected": {station: True}}
    assert body["services"][station]["gateway"] == "online"


async def test_unknown_station_and_connector_are_404(api: API, station: str) -> None:
    client, _ = api
    r = await client.get("/api/v1/stations/NOPE/connectors")
    assert r.status_code == 404
    assert "NOPE" in r.json()["detail"]
    r = await client.get(f"/api/v1/stations/{station}/connectors/7")
    assert r.status_code == 404
    assert "no connector 7" in r.json()["detail"]
    r = await client.get(f"/api/v1/stations/{station}/connectors/abc")
    assert r.status_code == 422
    assert r.json()["detail"].startswith("invalid request: path.n")


@pytest.mark.parametrize(("topic", "raw"), [
    ("hw/1/meter", b"not json"),
    ("hw/1/meter", b'{"energy_wh": -5, "power_w": 1, "current_a": [1], "voltage_v": [230]}'),
    ("ocpp/1/status", b'{"status": "Dancing"}'),
    ("hw/x/pilot", b'{"state": "A"}'),
    ("ocpp/connection", b"[]"),
])
async def test_bad_bus_payloads_keep_the_api_running(
        api: API, peers: Peers, station: str, mosquitto: Broker, topic: str, raw: bytes) -> None:
    client, ctx = api
    bus = peers.hardware if topic.startswith("hw/") else peers.gateway
    bus.publish_raw(f"{mosquitto.root}/{station}/{topic}", raw, retain=True)
    bus.publish(ch.PILOT, PilotEvent(state=PilotState.B), connector=1)  # the hardware's next one
    peers.hardware.publish(ch.PILOT, PilotEvent(state=PilotState.B), connector=1)

    async def good_state_arrived() -> bool:
        r = await client.get(f"/api/v1/stations/{station}/connectors/1")
        return r.status_code == 200 and r.json()["pilot"]["state"] == "B"

    await eventually(good_state_arrived)
    assert ctx.buses[station].invalid_count >= 1
    connector = (await client.get(f"/api/v1/stations/{station}/connectors/1")).json()
    assert connector["meter"] is None
    assert connector["status"] is None
    assert (await client.get("/api/v1/health")).status_code == 200


async def test_recorder_health_shows_in_health_and_station(
        api: API, peers: Peers, station: str, mosquitto: Broker) -> None:
    from tests.api.conftest import running_buses
    from voltbus_common.bus import Bus
    from voltbus_common.models import RecorderHealth

    client, _ = api
    recorder = Bus(mosquitto.settings("recorder", stations=[station]), station=station,
                   service="recorder")
    async with running_buses(recorder):
        recorder.publish(ch.RECORDER_HEALTH, RecorderHealth(
            ok=False, influx_reachable=False, target="1 http://influxdb:8086", spooled=120_000,
            spool_max=2_000_000, spool_near_full=False, dropped=0, dead_letters=0, written=5,
            last_error="ConnectError"))

        async def reported() -> bool:
            return station in (await client.get("/api/v1/health")).json()["recorder"]

        await eventually(reported)
    body = (await client.get("/api/v1/health")).json()
    assert body["status"] == "degraded"
    assert body["recorder"][station]["spooled"] == 120_000
    assert body["recorder"][station]["influx_reachable"] is False
    st = (await client.get(f"/api/v1/stations/{station}")).json()
    assert st["recorder"]["last_error"] == "ConnectError"
