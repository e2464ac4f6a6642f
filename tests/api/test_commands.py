"""Every command round-trips through the bus to a gateway played by the test."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Peers, eventually
from voltbus_api.context import ApiContext
from voltbus_common import channels as ch
from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus
from voltbus_common.models import CommandResult, OcppConnectorStatus

API = tuple[httpx.AsyncClient, ApiContext]


async def connector_known(client: httpx.AsyncClient, peers: Peers, station: str) -> None:
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                          connector=1)

    async def known() -> bool:
        return (await client.get(f"/api/v1/stations/{station}/connectors/1")).status_code == 200

    await eventually(known)


@pytest.mark.parametrize(("path", "body", "command", "field", "value"), [
    ("start", {"id_tag": "04A1B2C3"}, CommandName.START, "id_tag", "04A1B2C3"),
    ("stop", None, CommandName.STOP, None, None),
    ("current_limit", {"amps": 10.5}, CommandName.SET_CURRENT_LIMIT, "amps", 10.5),
    ("charging", {"enabled": True}, CommandName.ENABLE_CHARGING, None, None),
    ("charging", {"enabled": False}, CommandName.DISABLE_CHARGING, None, None),
    ("availability", {"operative": False}, CommandName.CHANGE_AVAILABILITY, "operative", False),
    ("unlock", None, CommandName.UNLOCK, None, None),
])
async def test_command_round_trip(api: API, peers: Peers, station: str, path: str,
                                  body: dict[str, object] | None, command: CommandName,
                                  field: str | None, value: object) -> None:
    client, _ = api
    await connector_known(client, peers, station)
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/{path}", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "Accepted"
    assert answer["command"] == command.value
    [sent] = peers.commands
    assert sent.connector == 1
    assert sent.payload.command is command
    assert sent.payload.request_id == answer["request_id"]
    assert sent.payload.request_id.startswith("api-")
    if field is not None:
        assert getattr(sent.payload, field) == value


async def test_station_availability_goes_to_connector_0(api: API, peers: Peers,
                                                        station: str) -> None:
    client, _ = api
    r = await client.post(f"/api/v1/stations/{station}/availability", json={"operative": True})
    assert r.status_code == 200, r.text
    assert peers.commands[0].connector == 0


async def test_each_command_gets_its_own_request_id(api: API, peers: Peers, station: str) -> None:
    client, _ = api
    await connector_known(client, peers, station)
    ids = set()
    for _ in range(3):
        r = await client.post(f"/api/v1/stations/{station}/connectors/1/stop")
        ids.add(r.json()["request_id"])
    assert len(ids) == 3


async def test_silent_gateway_is_504(api: API, peers: Peers, station: str) -> None:
    client, ctx = api
    ctx.commands._timeout_s = 0.3
    await connector_known(client, peers, station)
    peers.policy = lambda msg: None
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/stop")
    assert r.status_code == 504
    assert "no answer from the gateway within 0.3 s" in r.json()["detail"]
    assert len(peers.commands) == 1


async def test_a_result_for_someone_else_is_not_taken(api: API, peers: Peers,
                                                      station: str) -> None:
    client, ctx = api
    ctx.commands._timeout_s = 0.5
    await connector_known(client, peers, station)
    peers.policy = lambda msg: CommandResult(request_id="someone-else", command=msg.payload.command,
                                             status=CommandStatus.ACCEPTED)
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/stop")
    assert r.status_code == 504


@pytest.mark.parametrize(("status", "http"), [
    (CommandStatus.REJECTED, 409), (CommandStatus.NOT_SUPPORTED, 501), (CommandStatus.FAILED, 502),
])
async def test_gateway_refusal_maps_to_status(api: API, peers: Peers, station: str,
                                              status: CommandStatus, http: int) -> None:
    client, _ = api
    await connector_known(client, peers, station)
    peers.policy = lambda msg: CommandResult(
        request_id=msg.payload.request_id, command=msg.payload.command, status=status,
        reason="no transaction on connector 1")
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/stop")
    assert r.status_code == http
    body = r.json()
    assert body["detail"] == f"the gateway answered {status.value}: no transaction on connector 1"
    assert body["result"]["status"] == status.value


@pytest.mark.parametrize(("path", "body", "words"), [
    ("start", {}, "id_tag: Field required"),
    ("start", {"id_tag": ""}, "id_tag: String should have at least 1 character"),
    ("start", {"id_tag": "has space"}, "id_tag: String should match pattern"),
    ("start", {"id_tag": "X" * 37}, "id_tag: String should have at most 36 characters"),
    ("current_limit", {"amps": 500}, "amps: Input should be less than or equal to 100"),
    ("current_limit", {"amps": -1}, "amps: Input should be greater than or equal to 0"),
    ("current_limit", {"amp": 6}, "amp: Extra inputs are not permitted"),
    ("current_limit", "sixteen", "Input should be a valid dictionary"),
    ("charging", {"enabled": "maybe"}, "enabled: Input should be a valid boolean"),
    ("availability", {}, "operative: Field required"),
    ("start", None, "body: Field required"),
    ("start", b"{not json", "body: not valid JSON (Expecting property name"),
])
async def test_bad_bodies_are_422_with_a_clear_message(api: API, peers: Peers, station: str,
                                                       path: str, body: object,
                                                       words: str) -> None:
    client, _ = api
    await connector_known(client, peers, station)
    if isinstance(body, bytes):
        r = await client.post(f"/api/v1/stations/{station}/connectors/1/{path}", content=body,
                              headers={"Content-Type": "application/json"})
    else:
        r = await client.post(f"/api/v1/stations/{station}/connectors/1/{path}", json=body)
    assert r.status_code == 422
    assert words in r.json()["detail"]
    assert r.json()["detail"].startswith("invalid request: ")
    assert peers.commands == []


async def test_command_to_unknown_connector_is_404(api: API, peers: Peers, station: str) -> None:
    client, _ = api
    await connector_known(client, peers, station)
    r = await client.post(f"/api/v1/stations/{station}/connectors/2/stop")
    assert r.status_code == 404
    r = await client.post("/api/v1/stations/ELSEWHERE/connectors/1/stop")
    assert r.status_code == 404
    assert peers.commands == []


async def test_offline_gateway_is_503(api: API, peers: Peers, station: str, mosquitto) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    await connector_known(client, peers, station)
    peers.gateway.publish_raw(f"{mosquitto.root}/{station}/service/gateway/status", b"offline",
                              retain=True)

    async def offline() -> bool:
        body = (await client.get("/api/v1/health")).json()
        return body["services"][station].get("gateway") == "offline"

    await eventually(offline)
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/stop")
    assert r.status_code == 503
    assert "offline" in r.json()["detail"]
    assert (await client.get("/api/v1/health")).json()["status"] == "degraded"


async def test_one_api_serves_several_stations(mosquitto, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from tests.api.conftest import accept_all, api_settings, running_api, running_buses
    from voltbus_common.bus import Bus

    stations = [f"M{uuid.uuid4().hex[:8]}" for _ in range(3)]
    gateways = {s: Bus(mosquitto.settings("gateway", stations=[s]), station=s, service="gateway")
                for s in stations}
    got: dict[str, list[int]] = {s: [] for s in stations}
    for s, gw in gateways.items():
        async def answer(msg, gw=gw, s=s) -> None:  # type: ignore[no-untyped-def]
            got[s].append(msg.connector)
            gw.publish(ch.COMMAND_RESULT, accept_all(msg), connector=msg.connector)
        gw.on(ch.COMMAND, answer)
    async with running_buses(*gateways.values()):
        for i, gw in enumerate(gateways.values()):
            gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                       connector=i + 1)
        settings = api_settings(mosquitto, stations[0], tmp_path, stations=stations)
        async with running_api(settings) as (client, ctx):
            assert set(ctx.buses) == set(stations)

            async def all_known() -> bool:
                body = (await client.get("/api/v1/stations")).json()
                return [[c["connector"] for c in st["connectors"]] for st in body] == [
                    [1], [2], [3]]

            await eventually(all_known)
            r = await client.post(f"/api/v1/stations/{stations[2]}/connectors/3/stop")
            assert r.status_code == 200
            r = await client.post(f"/api/v1/stations/{stations[0]}/connectors/3/stop")
            assert r.status_code == 404
    assert got == {stations[0]: [], stations[1]: [], stations[2]: [3]}
