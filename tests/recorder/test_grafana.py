"""The provisioned Grafana dashboards: every panel's InfluxQL query, with Grafana's macros
substituted, runs against real InfluxDB 1.6 after a simulated run was recorded through the bus
and the recorder, and shows the numbers that run implies (e.g. the session energy in kWh)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from tests.recorder.helpers import recorder, settings, wait_for
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ConnectorStatus, RegistrationStatus, StopReason
from voltbus_common.models import MeterReading, OcppConnection, OcppConnectorStatus, SessionSummary

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "voltbus-charging.json"
FEB28 = datetime(2026, 2, 28, tzinfo=UTC)
MAR1 = datetime(2026, 3, 1, tzinfo=UTC)
TWO_DAYS = (FEB28, MAR1 + timedelta(days=1))
LINK_HOUR = (FEB28 + timedelta(hours=10), FEB28 + timedelta(hours=11, milliseconds=-1))


def at(day: datetime, hh: int, mm: int) -> datetime:
    return day + timedelta(hours=hh, minutes=mm)


@dataclass(frozen=True)
class Run:
    """A recorded simulated run: which station and database it is in."""

    station: str
    db: str


def _simulate(hw: Bus, gw: Bus) -> None:
    """Two days: link drops for 15 min, three sessions on two connectors, two days, two months."""
    for since, up in ((at(FEB28, 10, 0), True), (at(FEB28, 10, 30), False),
                      (at(FEB28, 10, 45), True)):
        gw.publish(ch.OCPP_CONNECTION, OcppConnection(
            connected=up, registration=RegistrationStatus.ACCEPTED if up else None, since=since))
    for ts, status in ((at(FEB28, 9, 59), ConnectorStatus.AVAILABLE),
                       (at(FEB28, 10, 1), ConnectorStatus.PREPARING),
                       (at(FEB28, 10, 2), ConnectorStatus.CHARGING),
                       (at(FEB28, 10, 32), ConnectorStatus.FINISHING),
                       (at(FEB28, 10, 35), ConnectorStatus.AVAILABLE)):
        gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=status, ts=ts), connector=1)
    for minute in range(31):  # 11 kW for 30 minutes: 5.5 kWh
        hw.publish(ch.METER, MeterReading(
            energy_wh=1000 + minute * 11000 / 60, power_w=11000.0, current_a=[16.0] * 3,
            voltage_v=[230.0] * 3, ts=at(FEB28, 10, 2 + minute)), connector=1)
    for step in range(7):  # 3 kW single phase for an hour: 3 kWh
        hw.publish(ch.METER, MeterReading(
            energy_wh=20000 + step * 500, power_w=3000.0, current_a=[13.0], voltage_v=[230.0],
            ts=at(MAR1, 8, 10 * step)), connector=2)
    for connector, tag, start, minutes, wh, reason in (
            (1, "CARD-A", at(FEB28, 10, 2), 30, 5500.0, StopReason.LOCAL),
            (2, "CARD-B", at(MAR1, 8, 0), 60, 3000.0, StopReason.EV_DISCONNECTED),
            (1, "CARD-A", at(MAR1, 20, 0), 60, 2000.0, StopReason.REMOTE)):
        gw.publish(ch.SESSION, SessionSummary(
            transaction_id=connector * 100 + minutes, id_tag=tag, started_at=start,
            stopped_at=start + timedelta(minutes=minutes), meter_start_wh=0.0,
            meter_stop_wh=wh, energy_wh=wh, stop_reason=reason), connector=connector)


async def _record(mosquitto: Broker, influxdb: InfluxServer, run: Run, data: Path) -> None:
    cfg = settings(mosquitto, run.station, data, influx_url=influxdb.url, influx_database=run.db,
                   recorder_link_sample_s=3600)
    hw = Bus(mosquitto.settings("hardware"), station=run.station, service=None)
    gw = Bus(mosquitto.settings("gateway"), station=run.station, service=None)
    counts = ("SELECT count(energy_wh) FROM meter", "SELECT count(energy_kwh) FROM session",
              "SELECT count(status) FROM connector_status", "SELECT count(up) FROM ocpp_connection")

    def totals() -> list[int]:
        return [sum(r["count"] for r in influxdb.rows(q, db=run.db)) for q in counts]

    async with recorder(cfg), running(hw, gw):
        await asyncio.sleep(0.3)
        _simulate(hw, gw)
        await wait_for(totals, lambda t: t == [38, 3, 5, 3], what="the run in InfluxDB")


@pytest.fixture(scope="module")
def recorded(mosquitto: Broker, influxdb: InfluxServer,
             tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The simulated run, recorded once for every panel test of this module."""
    run = Run(station=f"G{uuid.uuid4().hex[:8]}", db=influxdb.create_database())
    asyncio.run(_record(mosquitto, influxdb, run, tmp_path_factory.mktemp("grafana-run")))
    return run


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def render(query: str, run: Run, span: tuple[datetime, datetime], interval: str = "1m") -> str:
    """Substitute Grafana's macros and variables as Grafana does for InfluxQL."""
    q = query.replace("$timeFilter", f"time >= {_ms(span[0])}ms and time <= {_ms(span[1])}ms")
    q = q.replace("$__interval", interval).replace("$station", re.escape(run.station))
    q = q.replace("$connector", "(1|2)").replace("$tz", "UTC")
    left = re.findall(r"\$(?!/)\w+", q)
    assert not left, f"unsubstituted Grafana variables {left} in {q}"
    return q


def run_panel(influxdb: InfluxServer, run: Run, panel: dict[str, Any],
              span: tuple[datetime, datetime] = TWO_DAYS) -> list[dict[str, Any]]:
    """Run the panel's query; every series as {tags, rows: [dict per row]}."""
    (target,) = panel["targets"]
    out = []
    for series in influxdb.query(render(target["query"], run, span), db=run.db, epoch="ms"):
        rows = [dict(zip(series["columns"], v, strict=True)) for v in series["values"]]
        out.append({"tags": series.get("tags", {}), "rows": rows})
    return out


def value_at(series: dict[str, Any], ts: datetime, column: str = "last") -> Any:
    return next(r[column] for r in series["rows"] if r["time"] == _ms(ts))


def by_tag(result: list[dict[str, Any]], tag: str, column: str) -> dict[str, Any]:
    return {s["tags"][tag]: s["rows"][0][column] for s in result}


def _panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def _panel(title: str) -> dict[str, Any]:
    return next(p for p in _panels() if p["title"] == title)


def _check_power_now(r: list[dict[str, Any]]) -> None:
    assert by_tag(r, "connector", "last") == {"1": 11000.0, "2": 3000.0}


def _check_energy_in_range(r: list[dict[str, Any]]) -> None:
    assert by_tag(r, "connector", "spread") == pytest.approx({"1": 5.5, "2": 3.0})


def _check_power(r: list[dict[str, Any]]) -> None:
    one = next(s for s in r if s["tags"]["connector"] == "1")
    assert [row["mean"] for row in one["rows"]] == [11000.0] * 31
    assert one["rows"][0]["time"] == _ms(at(FEB28, 10, 2))


def _check_current(r: list[dict[str, Any]]) -> None:
    rows = {s["tags"]["connector"]: s["rows"][0] for s in r}
    assert (rows["1"]["L1"], rows["1"]["L2"], rows["1"]["L3"]) == (16.0, 16.0, 16.0)
    assert (rows["2"]["L1"], rows["2"]["L2"]) == (13.0, None)


def _check_per_day(r: list[dict[str, Any]]) -> None:
    (series,) = r
    assert [(row["time"], row["sum"]) for row in series["rows"]] == [
        (_ms(FEB28), pytest.approx(5.5)), (_ms(MAR1), pytest.approx(5.0)),
        (_ms(MAR1 + timedelta(days=1)), 0)]


def _check_per_month(r: list[dict[str, Any]]) -> None:
    assert by_tag(r, "month", "sum") == pytest.approx({"2026-02": 5.5, "2026-03": 5.0})


def _check_per_id_tag(r: list[dict[str, Any]]) -> None:
    assert by_tag(r, "id_tag", "sum") == pytest.approx({"CARD-A": 7.5, "CARD-B": 3.0})


def _check_sessions(r: list[dict[str, Any]]) -> None:
    (series,) = r
    got = [(row["energy_kwh"], row["minutes"], row["id_tag"], row["stop_reason"],
            row["connector"]) for row in series["rows"]]
    assert got == [(5.5, 30.0, "CARD-A", "Local", "1"),
                   (3.0, 60.0, "CARD-B", "EVDisconnected", "2"),
                   (2.0, 60.0, "CARD-A", "Remote", "1")]


# Panels over the two-day range; each with the check of what the run implies.
TWO_DAY_CHECKS = {
    "Power now": _check_power_now,
    "Energy charged in range": _check_energy_in_range,
    "Power": _check_power,
    "Current per phase": _check_current,
    "Energy per day": _check_per_day,
    "Energy per month": _check_per_month,
    "Energy per id tag": _check_per_id_tag,
    "Sessions": _check_sessions,
}
# Panels about the link and status, checked over the hour in which the link dropped.
HOUR_PANELS = ("OCPP uptime", "Connector status", "OCPP connection")


def test_every_panel_is_checked_and_uses_the_provisioned_datasource() -> None:
    titles = {p["title"] for p in _panels()}
    assert titles == set(TWO_DAY_CHECKS) | set(HOUR_PANELS)
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/voltbus.yaml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in _panels():
        assert panel["datasource"]["uid"] == uid
        assert all(t["datasource"]["uid"] == uid and t["rawQuery"] for t in panel["targets"])
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/voltbus.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/voltbus"


@pytest.mark.parametrize("title", sorted(TWO_DAY_CHECKS))
def test_panel_shows_the_recorded_run(title: str, recorded: Run, influxdb: InfluxServer) -> None:
    TWO_DAY_CHECKS[title](run_panel(influxdb, recorded, _panel(title)))


def test_uptime_counts_the_fifteen_minutes_offline(recorded: Run, influxdb: InfluxServer) -> None:
    (series,) = run_panel(influxdb, recorded, _panel("OCPP uptime"), LINK_HOUR)
    assert series["rows"][0]["mean"] == pytest.approx(75.0)


def test_status_and_link_timelines(recorded: Run, influxdb: InfluxServer) -> None:
    (status,) = run_panel(influxdb, recorded, _panel("Connector status"), LINK_HOUR)
    assert status["tags"]["connector"] == "1"
    assert [value_at(status, at(FEB28, 10, m)) for m in (0, 1, 10, 33, 40)] == [
        None, "Preparing", "Charging", "Finishing", "Available"]
    (link,) = run_panel(influxdb, recorded, _panel("OCPP connection"), LINK_HOUR)
    assert [value_at(link, at(FEB28, 10, m)) for m in (0, 29, 30, 44, 45, 59)] == [
        1, 1, 0, 0, 1, 1]


def test_template_variable_queries_list_the_station(recorded: Run,
                                                    influxdb: InfluxServer) -> None:
    variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    stations = influxdb.query(variables["station"]["query"], db=recorded.db)
    assert [v[1] for v in stations[0]["values"]] == [recorded.station]
    connectors = influxdb.query(
        variables["connector"]["query"].replace("$station", recorded.station), db=recorded.db)
    assert [v[1] for v in connectors[0]["values"]] == ["1", "2"]
