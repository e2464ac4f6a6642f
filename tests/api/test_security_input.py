"""Hostile query values answer 422 with a sentence saying what is wrong, never 500 (issue 15)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Peers, api_settings, running_api
from tests.api.test_history import SESSIONS, publish_sessions
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from voltbus_api.auth_store import Role
from voltbus_api.context import ApiContext

API = tuple[httpx.AsyncClient, ApiContext]

BAD = [  # (path, params, words the message must contain)
    ("/api/v1/energy", {"connector": str(2**63)}, "connector"),
    ("/api/v1/sessions", {"connector": str(2**63)}, "connector"),
    ("/api/v1/sessions", {"connector": "9" * 40}, "connector"),
    ("/api/v1/sessions", {"connector": "10001"}, "connector"),
    ("/api/v1/sessions", {"from": "1500-01-01T00:00:00Z"}, "from"),
    ("/api/v1/sessions", {"to": "9999-12-31T23:59:59Z"}, "to"),
    ("/api/v1/energy", {"to": "9999-12-31T23:59:59+00:00"}, "to"),
    ("/api/v1/sessions", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
    ("/api/v1/energy", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
    ("/api/v1/sessions", {"from": "9999-12-31T23:59:59-14:00"}, "from"),
    ("/api/v1/sessions", {"to": "0001-01-01T00:00:00"}, "to"),
    ("/api/v1/reports/9999-12.csv", {}, "month"),
    ("/api/v1/reports/0000-01.csv", {}, "has no year 0000"),
    ("/api/v1/reports/0001-01.xlsx", {}, "month"),
    ("/api/v1/costs", {"month": "0000-01"}, "has no year 0000"),
    ("/api/v1/costs", {"month": "9999-12"}, "outside the months history covers"),
    ("/api/v1/reports/2026-01.csv", {"id_tag": "AB\r\nSet-Cookie: x=1"}, "id_tag"),
    ("/api/v1/reports/2026-01.pdf", {"id_tag": "A\nB"}, "id_tag"),
    ("/api/v1/sessions", {"id_tag": "A\x00B"}, "id_tag"),
    ("/api/v1/sessions", {"station": "x\r\ny"}, "station"),
]


@pytest.mark.parametrize(("path", "params", "word"), BAD)
async def test_out_of_range_input_is_a_422_with_a_reason(api: API, peers: Peers, path: str,
                                                         params: dict[str, str],
                                                         word: str) -> None:
    client, _ = api
    r = await client.get(path, params=params)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("invalid request"), detail
    assert word in detail, detail


GOOD = [
    ("/api/v1/sessions", {"connector": "10000"}),
    ("/api/v1/sessions", {"from": "1677-09-22T00:00:00Z", "to": "2262-04-01T00:00:00-14:00"}),
    ("/api/v1/energy", {"from": "2026-01-01T00:00:00+14:00", "period": "week"}),
    ("/api/v1/reports/2262-03.csv", {}),
    ("/api/v1/costs", {"month": "2262-03"}),
    ("/api/v1/reports/1677-10.csv", {}),
    ("/api/v1/reports/2026-01.csv", {"id_tag": "04A1B2C3"}),
]

# The ones that failed only when InfluxDB was configured (the query's time arithmetic).
BAD_BEFORE_INFLUX = [(p, q) for p, q, _ in BAD if "to" in q or "from" in q]


@pytest.mark.parametrize(("path", "params"), GOOD)
async def test_extreme_but_valid_input_is_answered(api: API, peers: Peers, path: str,
                                                   params: dict[str, str]) -> None:
    client, _ = api
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text


async def test_report_file_name_carries_a_safe_id_tag(api: API, peers: Peers) -> None:
    client, _ = api
    r = await client.get("/api/v1/reports/2026-01.csv", params={"id_tag": "04A1-b_2"})
    assert r.headers["content-disposition"] == 'attachment; filename="voltbus-2026-01-04A1-b_2.csv"'


async def test_a_time_without_offset_is_utc(api: API, peers: Peers) -> None:
    client, _ = api
    await publish_sessions(client, peers, SESSIONS)  # one starts 2026-01-06T23:30Z
    r = await client.get("/api/v1/sessions", params={"from": "2026-01-06T23:30:00",
                                                     "to": "2026-01-07T00:00:00"})
    assert r.status_code == 200, r.text
    assert [s["transaction_id"] for s in r.json()["items"]] == [2]


async def test_extreme_valid_times_reach_influxdb_without_error(
        mosquitto: Broker, influxdb: InfluxServer, peers: Peers, station: str,
        tmp_path: Path) -> None:
    settings = api_settings(mosquitto, station, tmp_path, influx_url=influxdb.url,
                            influx_database=influxdb.create_database())
    async with running_api(settings) as (client, _):
        for path, params in [*GOOD, *BAD_BEFORE_INFLUX]:
            r = await client.get(path, params=params)
            assert r.status_code in (200, 422), r.text
            if r.status_code == 200 and path == "/api/v1/sessions":
                assert r.json()["influx_error"] is None, (params, r.text)


async def test_token_id_beyond_sqlite_integer_is_a_422(api: API, peers: Peers) -> None:
    client, _ = api
    r = await client.delete(f"/api/v1/tokens/{2**70}")
    assert r.status_code == 422, r.text
    assert "token_id" in r.json()["detail"]


@pytest.mark.parametrize("body", [b"{not json", b"\xea\n\x19\xb9{"])
async def test_a_broken_body_tells_a_stranger_nothing_but_401(api: API, peers: Peers,
                                                              station: str, body: bytes) -> None:
    client, ctx = api
    path = f"/api/v1/stations/{station}/connectors/1/start"
    json_type = {"Content-Type": "application/json"}
    r = await client.post(path, content=body, headers={**json_type, "Authorization": ""})
    assert r.status_code == 401, r.text
    _, viewer = ctx.auth.create_api_token("v", Role.VIEWER)
    r = await client.post(path, content=body, headers={**json_type,
                                                        "Authorization": f"Bearer {viewer}"})
    assert r.status_code == 403, r.text
    r = await client.post("/api/v1/users", content=body, headers={
        **json_type, "Authorization": f"Bearer {viewer}"})
    assert r.status_code == 403, r.text
    r = await client.post(path, content=body, headers=json_type)  # the admin learns why
    assert r.status_code in (400, 422), r.text
