"""Session history carries the OCPP transaction id as text (transaction_ref): a 2.0.1 session's
UUID, which the integer transaction_id cannot hold, from the bus (the API's local copy) and from
InfluxDB (what the recorder wrote); a local history file from before the column still opens."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.api.conftest import Peers, api_settings, eventually, running_api
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.enums import StopReason
from voltbus_common.models import SessionSummary
from voltbus_recorder import points

UUID = "3c6db7f3-20a4-576b-9dbd-6e8bba5b17b1"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def summary(start: datetime, tid: int | None, ref: str | None) -> SessionSummary:
    return SessionSummary(transaction_id=tid, transaction_ref=ref, id_tag="04A1B2C3",
                          started_at=start, stopped_at=start + timedelta(minutes=30),
                          meter_start_wh=1000, meter_stop_wh=2000, energy_wh=1000,
                          stop_reason=StopReason.EV_DISCONNECTED)


async def test_transaction_ref_from_the_bus_and_from_influxdb(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path,
        influxdb: InfluxServer) -> None:
    db = influxdb.create_database()
    recorded = summary(T0, None, UUID)  # 2.0.1, stored by the recorder before the API ran
    assert influxdb.write(db, points.session(station, 1, recorded)).status_code == 204
    row = influxdb.rows("SELECT * FROM session", db=db)[0]
    assert (row["transaction_ref"], row.get("transaction_id")) == (UUID, None)
    settings = api_settings(mosquitto, station, tmp_path, influx_url=influxdb.url,
                            influx_database=db)
    async with running_api(settings) as (client, _):
        peers.gateway.publish(ch.SESSION, summary(T0 + timedelta(hours=2), 7, "7"), connector=1)

        async def both() -> bool:
            r = await client.get("/api/v1/sessions", params={"station": station})
            return bool(r.json()["total"] == 2)

        await eventually(both)
        items = (await client.get("/api/v1/sessions", params={"station": station})).json()[
            "items"]
    assert [(s["transaction_id"], s["transaction_ref"]) for s in items] == [
        (7, "7"), (None, UUID)]  # newest first: 1.6's from the bus, 2.0.1's from InfluxDB


async def test_a_history_file_from_before_transaction_ref_opens_and_keeps_its_sessions(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    settings = api_settings(mosquitto, station, tmp_path)
    settings.api_dir.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(settings.api_dir / "history.sqlite")
    old.executescript("""
        CREATE TABLE sessions (
            station TEXT NOT NULL, connector INTEGER NOT NULL, transaction_id INTEGER,
            id_tag TEXT NOT NULL, started_at TEXT NOT NULL, stopped_at TEXT NOT NULL,
            meter_start_wh REAL NOT NULL, meter_stop_wh REAL NOT NULL, energy_wh REAL NOT NULL,
            stop_reason TEXT NOT NULL, PRIMARY KEY (station, connector, started_at));""")
    old.execute("INSERT INTO sessions VALUES (?, 1, 3, '04A1B2C3', ?, ?, 0, 500, 500, 'Local')",
                (station, T0.isoformat(), (T0 + timedelta(minutes=5)).isoformat()))
    old.commit()
    old.close()
    async with running_api(settings) as (client, _):
        peers.gateway.publish(ch.SESSION, summary(T0 + timedelta(hours=1), None, UUID),
                              connector=1)

        async def both() -> bool:
            return bool((await client.get("/api/v1/sessions")).json()["total"] == 2)

        await eventually(both)
        items = (await client.get("/api/v1/sessions")).json()["items"]
    assert [(s["transaction_id"], s["transaction_ref"]) for s in items] == [
        (None, UUID), (3, None)]
