"""Session history and energy totals: from SESSION events on the bus and from InfluxDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Peers, api_settings, eventually, running_api
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from voltbus_api.context import ApiContext
from voltbus_common import channels as ch
from voltbus_common.enums import StopReason
from voltbus_common.models import SessionSummary
from voltbus_recorder import points

API = tuple[httpx.AsyncClient, ApiContext]


def summary(start: str, minutes: int, energy_wh: float, id_tag: str = "04A1B2C3",
            tid: int | None = 1) -> SessionSummary:
    started = datetime.fromisoformat(start).replace(tzinfo=UTC)
    return SessionSummary(transaction_id=tid, id_tag=id_tag, started_at=started,
                          stopped_at=started + timedelta(minutes=minutes),
                          meter_start_wh=10_000, meter_stop_wh=10_000 + energy_wh,
                          energy_wh=energy_wh, stop_reason=StopReason.LOCAL)


SESSIONS = [  # (connector, summary)
    (1, summary("2026-01-05T08:00:00", 60, 7000.0, "04A1B2C3", 1)),
    (1, summary("2026-01-06T23:30:00", 90, 11000.0, "04A1B2C3", 2)),
    (2, summary("2026-01-12T10:00:00", 30, 3500.5, "CAFE0001", 3)),
    (1, summary("2026-02-01T00:30:00", 45, 5000.0, "CAFE0001", 4)),
]


async def publish_sessions(client: httpx.AsyncClient, peers: Peers,
                           sessions: list[tuple[int, SessionSummary]]) -> None:
    for connector, s in sessions:
        peers.gateway.publish(ch.SESSION, s, connector=connector)

    async def stored() -> bool:
        r = await client.get("/api/v1/sessions")
        return r.json()["total"] == len(sessions)

    await eventually(stored)


async def test_sessions_from_the_bus_filtered_and_paged(api: API, peers: Peers,
                                                        station: str) -> None:
    client, _ = api
    await publish_sessions(client, peers, SESSIONS)
    body = (await client.get("/api/v1/sessions")).json()
    assert body["total_energy_wh"] == 26500.5
    assert [s["transaction_id"] for s in body["items"]] == [4, 3, 2, 1]  # newest first
    assert body["items"][3]["duration_s"] == 3600
    assert body["items"][3]["station"] == station

    page = (await client.get("/api/v1/sessions", params={"limit": 2, "offset": 1})).json()
    assert [s["transaction_id"] for s in page["items"]] == [3, 2]
    assert page["total"] == 4

    tag = (await client.get("/api/v1/sessions", params={"id_tag": "CAFE0001"})).json()
    assert [s["transaction_id"] for s in tag["items"]] == [4, 3]
    conn = (await client.get("/api/v1/sessions", params={"connector": 2})).json()
    assert conn["total"] == 1
    january = (await client.get("/api/v1/sessions", params={
        "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"})).json()
    assert january["total"] == 3
    assert january["total_energy_wh"] == 21500.5
    assert (await client.get("/api/v1/sessions", params={"limit": 0})).status_code == 422


async def test_the_same_session_twice_is_stored_once(api: API, peers: Peers) -> None:
    client, _ = api
    await publish_sessions(client, peers, SESSIONS[:1])
    peers.gateway.publish(ch.SESSION, SESSIONS[0][1], connector=1)
    peers.gateway.publish(ch.SESSION, SESSIONS[1][1], connector=1)
    await publish_sessions(client, peers, SESSIONS[:2])


async def test_local_history_survives_a_restart(mosquitto: Broker, peers: Peers, station: str,
                                                tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, _):
        await publish_sessions(client, peers, SESSIONS)
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, _):
        assert (await client.get("/api/v1/sessions")).json()["total"] == 4


@pytest.mark.parametrize(("period", "zone", "expected"), [
    ("day", "UTC", [("2026-01-05", 7000.0, 1), ("2026-01-06", 11000.0, 1),
                    ("2026-01-12", 3500.5, 1), ("2026-02-01", 5000.0, 1)]),
    # In Berlin the 23:30 UTC session starts on the 7th and the 00:30 UTC one still on 1 Feb.
    ("day", "Europe/Berlin", [("2026-01-05", 7000.0, 1), ("2026-01-07", 11000.0, 1),
                              ("2026-01-12", 3500.5, 1), ("2026-02-01", 5000.0, 1)]),
    ("week", "UTC", [("2026-W02", 18000.0, 2), ("2026-W03", 3500.5, 1),
                     ("2026-W05", 5000.0, 1)]),
    ("month", "UTC", [("2026-01", 21500.5, 3), ("2026-02", 5000.0, 1)]),
])
async def test_energy_per_period(mosquitto: Broker, peers: Peers, station: str, tmp_path: Path,
                                 period: str, zone: str,
                                 expected: list[tuple[str, float, int]]) -> None:
    settings = api_settings(mosquitto, station, tmp_path, api_timezone=zone)
    async with running_api(settings) as (client, _):
        await publish_sessions(client, peers, SESSIONS)
        body = (await client.get("/api/v1/energy", params={"period": period})).json()
    assert [(b["period"], b["energy_wh"], b["sessions"]) for b in body["buckets"]] == expected
    assert body["total_energy_wh"] == 26500.5
    assert body["timezone"] == zone


async def test_sessions_from_influxdb_merge_with_the_local_copy(
        mosquitto: Broker, influxdb: InfluxServer, peers: Peers, station: str,
        tmp_path: Path) -> None:
    db = influxdb.create_database()
    # The recorder stored three sessions before this API ever ran (its own line format).
    lines = "\n".join(points.session(station, c, s) for c, s in SESSIONS[:3])
    lines += "\n" + points.session("OTHER", 1, SESSIONS[3][1])
    assert influxdb.write(db, lines).status_code == 204
    settings = api_settings(mosquitto, station, tmp_path, influx_url=influxdb.url,
                            influx_database=db)
    async with running_api(settings) as (client, _):
        # ... and the API sees the last one itself, plus one InfluxDB also has.
        peers.gateway.publish(ch.SESSION, SESSIONS[3][1], connector=1)
        peers.gateway.publish(ch.SESSION, SESSIONS[0][1], connector=1)

        async def all_there() -> bool:
            r = await client.get("/api/v1/sessions", params={"station": station})
            return r.json()["total"] == 4

        await eventually(all_there)
        body = (await client.get("/api/v1/sessions", params={"station": station})).json()
        assert body["influx_error"] is None
        assert body["total_energy_wh"] == 26500.5
        first = body["items"][-1]
        assert first["started_at"] == "2026-01-05T08:00:00Z"
        assert first["stopped_at"] == "2026-01-05T09:00:00Z"
        assert first["id_tag"] == "04A1B2C3"
        assert first["transaction_id"] == 1
        other = (await client.get("/api/v1/sessions", params={"station": "OTHER"})).json()
        assert other["total"] == 1
        month = (await client.get("/api/v1/energy", params={"period": "month",
                                                            "station": station})).json()
        assert [(b["period"], b["energy_wh"]) for b in month["buckets"]] == [
            ("2026-01", 21500.5), ("2026-02", 5000.0)]


async def test_influxdb_down_falls_back_to_the_local_copy(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    from voltbus_common.devbroker import free_port
    settings = api_settings(mosquitto, station, tmp_path,
                            influx_url=f"http://127.0.0.1:{free_port()}")
    async with running_api(settings) as (client, _):
        await publish_sessions(client, peers, SESSIONS[:2])
        body = (await client.get("/api/v1/sessions")).json()
        assert body["total"] == 2
        assert "ConnectError" in body["influx_error"]


async def test_sessions_that_end_while_the_api_is_down_are_not_lost(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, _):
        await publish_sessions(client, peers, SESSIONS[:1])
    # The API is stopped: the gateway finishes two more sessions meanwhile.
    for connector, s in SESSIONS[1:3]:
        peers.gateway.publish(ch.SESSION, s, connector=connector)
    await peers.gateway.drain()
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, _):
        async def all_three() -> bool:
            return (await client.get("/api/v1/sessions")).json()["total"] == 3

        await eventually(all_three)


async def test_influx_api_2_reads_the_bucket_through_the_1x_query_api(
        mosquitto: Broker, influxdb: InfluxServer, peers: Peers, station: str,
        tmp_path: Path) -> None:
    """InfluxDB 2.x/3.x answer InfluxQL on /query with a token; 1.6 (auth off) takes the same."""
    bucket = influxdb.create_database()
    lines = "\n".join(points.session(station, c, s) for c, s in SESSIONS)
    assert influxdb.write(bucket, lines).status_code == 204
    token_file = tmp_path / "influx_token"
    token_file.write_text("a-token\n")
    settings = api_settings(mosquitto, station, tmp_path, influx_url=influxdb.url, influx_api=2,
                            influx_bucket=bucket, influx_org="home",
                            influx_token_file=token_file)
    async with running_api(settings) as (client, ctx):
        body = (await client.get("/api/v1/sessions", params={"id_tag": "CAFE0001"})).json()
        reader = ctx.sessions.influx
        assert reader is not None
        assert reader._headers == {"Authorization": "Token a-token"}
        assert reader._params["db"] == bucket
    assert body["influx_error"] is None
    assert [s["energy_wh"] for s in body["items"]] == [5000.0, 3500.5]


async def test_a_session_never_authorised_has_no_id_tag(
        mosquitto: Broker, influxdb: InfluxServer, peers: Peers, station: str,
        tmp_path: Path) -> None:
    """An OCPP 2.0.1 session started at plug-in and never authorised (SessionSummary id_tag
    null): the recorder's point has no id_tag tag, the API's local copy and InfluxDB both give
    it back with id_tag null, beside a session with a card, and an id_tag filter skips it."""
    db = influxdb.create_database()
    anonymous = SessionSummary.model_validate({
        **summary("2026-01-07T10:00:00", 5, 0.0, tid=None).model_dump(mode="json"),
        "id_tag": None})
    line = points.session(station, 1, anonymous)
    assert "id_tag" not in line.split(" ", 1)[0]
    assert influxdb.write(db, line).status_code == 204
    settings = api_settings(mosquitto, station, tmp_path, influx_url=influxdb.url,
                            influx_database=db)
    async with running_api(settings) as (client, _):
        peers.gateway.publish(ch.SESSION, anonymous, connector=2)  # the local copy's
        peers.gateway.publish(ch.SESSION, SESSIONS[0][1], connector=1)

        async def all_there() -> bool:
            r = await client.get("/api/v1/sessions", params={"station": station})
            return r.json()["total"] == 3

        await eventually(all_there)
        items = (await client.get("/api/v1/sessions", params={"station": station})).json()[
            "items"]
        assert sorted((s["connector"], str(s["id_tag"])) for s in items) == [
            (1, "04A1B2C3"), (1, "None"), (2, "None")]
        tagged = (await client.get("/api/v1/sessions", params={"id_tag": "04A1B2C3"})).json()
        assert tagged["total"] == 1
