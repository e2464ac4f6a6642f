"""Reports: the downloaded CSV, Excel and PDF files hold the right sessions, cost and totals."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import openpyxl
import pypdf

from tests.api.conftest import Peers, api_settings, eventually, running_api
from tests.api.test_history import SESSIONS, publish_sessions
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import SessionCost, SessionSummary
from voltbus_recorder import points

# January 2026 at 0.31 EUR/kWh: 7.000 kWh -> 2.17, 11.000 -> 3.41, 3.5005 -> 3.501 kWh -> 1.09
JANUARY = [("2026-01-05 08:00", "04A1B2C3", "7.000", "2.17"),
           ("2026-01-06 23:30", "04A1B2C3", "11.000", "3.41"),
           # 3500.5 Wh from registers 10000 and 13500.5: OCPP 1.6 sent meterStart 10000 and
           # meterStop 13500 (whole Wh, as the gateway rounds), so 3.500 kWh was billed
           ("2026-01-12 10:00", "CAFE0001", "3.500", "1.09")]


async def download(mosquitto: Broker, peers: Peers, station: str, tmp_path: Path,
                   path: str) -> httpx.Response:
    settings = api_settings(mosquitto, station, tmp_path, api_price_per_kwh=0.31)
    async with running_api(settings) as (client, _):
        await publish_sessions(client, peers, SESSIONS)
        return await client.get(path)


async def test_csv_report(mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    r = await download(mosquitto, peers, station, tmp_path, "/api/v1/reports/2026-01.csv")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="voltbus-2026-01.csv"'
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["Start", "End", "Station", "Connector", "Id tag", "Duration (min)",
                       "Energy (kWh)", "Cost (EUR)", "Priced at"]
    assert [(row[0], row[4], row[6], row[7]) for row in rows[1:-1]] == JANUARY
    assert {row[8] for row in rows[1:-1]} == {"fixed 0.31"}
    assert rows[1][1] == "2026-01-05 09:00"
    assert rows[1][5] == "60"
    assert rows[-1] == ["Total", "", "", "", "", "", "21.500", "6.67",
                        "Cost at the fixed price 0.31 EUR/kWh (no cost at the tariff in force "
                        "was recorded)"]


async def test_csv_report_per_id_tag(mosquitto: Broker, peers: Peers, station: str,
                                     tmp_path: Path) -> None:
    r = await download(mosquitto, peers, station, tmp_path,
                       "/api/v1/reports/2026-01.csv?id_tag=04A1B2C3")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row[4] for row in rows[1:-1]] == ["04A1B2C3", "04A1B2C3"]
    assert rows[-1][6:8] == ["18.000", "5.58"]
    assert "voltbus-2026-01-04A1B2C3.csv" in r.headers["content-disposition"]


async def test_excel_report(mosquitto: Broker, peers: Peers, station: str,
                            tmp_path: Path) -> None:
    r = await download(mosquitto, peers, station, tmp_path, "/api/v1/reports/2026-01.xlsx")
    assert r.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    rows = [list(row) for row in ws.iter_rows(values_only=True)]
    assert rows[0][0] == "Charging report 2026-01 (all id tags)"
    assert rows[1][:2] == ["Price per kWh (EUR)", 0.31]
    assert rows[2][0].startswith("Cost at the fixed price 0.31 EUR/kWh")
    assert rows[3][6:9] == ["Energy (kWh)", "Cost (EUR)", "Priced at"]
    data = rows[4:7]
    assert [(d[0], d[4], d[6], d[7]) for d in data] == [
        (s, t, float(kwh), float(cost)) for s, t, kwh, cost in JANUARY]
    assert rows[7][0] == "Total"
    assert rows[7][6] == "=SUM(G5:G7)"
    assert rows[7][7] == "=SUM(H5:H7)"
    # The formulas add up to the same totals as the CSV.
    assert round(sum(d[6] for d in data), 3) == 21.5
    assert round(sum(d[7] for d in data), 2) == 6.67


async def test_pdf_report(mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    r = await download(mosquitto, peers, station, tmp_path,
                       "/api/v1/reports/2026-02.pdf?price_per_kwh=0.5")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Charging report 2026-02 (all id tags)" in text
    assert "Price per kWh: 0.5 EUR" in text
    assert "2026-02-01 00:30" in text
    assert "CAFE0001" in text
    assert "5.000" in text
    assert "2.50" in text
    assert "Total" in text
    assert "04A1B2C3" not in text  # January's sessions are not in February's report


async def test_bad_month_and_format(mosquitto: Broker, peers: Peers, station: str,
                                    tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, _):
        r = await client.get("/api/v1/reports/2026-13.csv")
        assert r.status_code == 422
        assert r.json()["detail"] == ("invalid request: month '2026-13' has no month 13 (months "
                                      "are 01..12); use the format YYYY-MM, e.g. 2026-01")
        r = await client.get("/api/v1/reports/Jan-2026.csv")
        assert r.status_code == 422
        assert "'Jan-2026' is not a year and month; use the format YYYY-MM" in r.json()["detail"]
        r = await client.get("/api/v1/reports/2026-01.doc")
        assert r.status_code == 422
        empty = await client.get("/api/v1/reports/2025-01.csv")
        rows = list(csv.reader(io.StringIO(empty.content.decode("utf-8-sig"))))
        assert rows[-1][:8] == ["Total", "", "", "", "", "", "0.000", "0.00"]


def _final(s: SessionSummary, cost: float) -> SessionCost:
    return SessionCost(transaction_ref=s.transaction_ref, transaction_id=s.transaction_id,
                       started_at=s.started_at, stopped_at=s.stopped_at, energy_wh=s.energy_wh,
                       cost=cost, final=True)


async def test_reports_use_the_cost_at_the_tariff_where_one_was_recorded(
        mosquitto: Broker, peers: Peers, influxdb: InfluxServer, station: str,
        tmp_path: Path) -> None:
    """January: session 1 priced in InfluxDB (the recorder's session_cost), session 2 by a final
    energy/{c}/cost on the bus, session 3 not priced (the fixed price). The page's month tile
    (GET /costs) adds up to the same total as the report."""
    (c1, s1), (c2, s2) = SESSIONS[:2]
    db = influxdb.create_database()
    assert influxdb.write(db, points.session_cost(station, c1, _final(s1, 1.234)) or ""
                          ).status_code == 204
    settings = api_settings(mosquitto, station, tmp_path, api_price_per_kwh=0.31,
                            influx_url=influxdb.url, influx_database=db, ha_discovery=False)
    energy = Bus(mosquitto.settings("energy"), station=station, service=None)
    async with running_api(settings) as (client, _), running(energy):
        await publish_sessions(client, peers, SESSIONS)
        energy.publish(ch.ENERGY_COST, _final(s2, 2.005), connector=c2)

        async def priced() -> bool:
            page = (await client.get("/api/v1/costs/sessions")).json()
            return sum(1 for s in page["items"] if s["tariff_cost"] is not None) == 2

        await eventually(priced)
        csv_file = await client.get("/api/v1/reports/2026-01.csv")
        xlsx = await client.get("/api/v1/reports/2026-01.xlsx")
        pdf = await client.get("/api/v1/reports/2026-01.pdf")
        month = (await client.get("/api/v1/costs", params={"month": "2026-01"})).json()
    rows = list(csv.reader(io.StringIO(csv_file.content.decode("utf-8-sig"))))
    # 1.234 -> 1.23, 2.005 -> 2.01 (half up), 3.501 kWh x 0.31 -> 1.09
    assert [(row[0], row[7], row[8]) for row in rows[1:-1]] == [
        ("2026-01-05 08:00", "1.23", "tariff"), ("2026-01-06 23:30", "2.01", "tariff"),
        ("2026-01-12 10:00", "1.09", "fixed 0.31")]
    note = ("Cost at the tariff in force while charging for 2 sessions, at the fixed price "
            "0.31 EUR/kWh for 1 (no tariff cost recorded)")
    assert rows[-1] == ["Total", "", "", "", "", "", "21.500", "4.33", note]
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    sheet = [list(row) for row in ws.iter_rows(values_only=True)]
    assert sheet[2][0] == note
    assert [(d[7], d[8]) for d in sheet[4:7]] == [(1.23, "tariff"), (2.01, "tariff"),
                                                  (1.09, "fixed 0.31")]
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(
        io.BytesIO(pdf.content)).pages).split())
    assert note in text
    assert "4.33" in text
    assert (month["cost"], month["tariff_sessions"], month["sessions"]) == (4.33, 2, 3)
