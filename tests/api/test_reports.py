"""Reports: the downloaded CSV, Excel and PDF files hold the right sessions, cost and totals."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import openpyxl
import pypdf

from tests.api.conftest import Peers, api_settings, running_api
from tests.api.test_history import SESSIONS, publish_sessions
from tests.fixtures.mosquitto import Broker

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
                       "Energy (kWh)", "Cost (EUR)"]
    assert [(row[0], row[4], row[6], row[7]) for row in rows[1:-1]] == JANUARY
    assert rows[1][1] == "2026-01-05 09:00"
    assert rows[1][5] == "60"
    assert rows[-1] == ["Total", "", "", "", "", "", "21.500", "6.67"]


async def test_csv_report_per_id_tag(mosquitto: Broker, peers: Peers, station: str,
                                     tmp_path: Path) -> None:
    r = await download(mosquitto, peers, station, tmp_path,
                       "/api/v1/reports/2026-01.csv?id_tag=04A1B2C3")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row[4] for row in rows[1:-1]] == ["04A1B2C3", "04A1B2C3"]
    assert rows[-1][6:] == ["18.000", "5.58"]
    assert "voltbus-2026-01-04A1B2C3.csv" in r.headers["content-disposition"]


async def test_excel_report(mosquitto: Broker, peers: Peers, station: str,
                            tmp_path: Path) -> None:
    r = await download(mosquitto, peers, station, tmp_path, "/api/v1/reports/2026-01.xlsx")
    assert r.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    rows = [list(row) for row in ws.iter_rows(values_only=True)]
    assert rows[0][0] == "Charging report 2026-01 (all id tags)"
    assert rows[1][:2] == ["Price per kWh (EUR)", 0.31]
    assert rows[3][6:8] == ["Energy (kWh)", "Cost (EUR)"]
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
        assert rows[-1] == ["Total", "", "", "", "", "", "0.000", "0.00"]
