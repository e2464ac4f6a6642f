"""Charging reports (Oppleo style): sessions with energy and cost, and totals, as CSV/XLSX/PDF.

A session's cost is the energy manager's at the tariff in force while it charged, where one was
recorded (`energy/{c}/cost`, kept by the recorder as `session_cost`); else its energy at the
fixed price. Each row says which ("Priced at"), and the title block (the CSV's Total line) counts
both. Cost is rounded per session and the total is the sum of the rounded rows, so a printed
report always adds up.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from voltbus_api.history import SessionRecord

HEADER = ("Start", "End", "Station", "Connector", "Id tag", "Duration (min)", "Energy (kWh)",
          "Cost", "Priced at")
TARIFF = "tariff"  # a row's priced_at: the energy manager's cost at the tariff in force


@dataclass(frozen=True)
class ReportRow:
    """One session as printed: local times, kWh to 3 decimals, cost to the cent."""

    start: str
    end: str
    station: str
    connector: int
    id_tag: str
    minutes: int
    energy_kwh: Decimal
    cost: Decimal
    priced_at: str = "fixed"  # TARIFF, or "fixed <price>"


@dataclass(frozen=True)
class Report:
    """A report's title, rows and totals."""

    title: str
    currency: str
    price_per_kwh: Decimal
    rows: list[ReportRow]

    @property
    def at_tariff(self) -> int:
        """Rows priced at the tariff in force."""
        return sum(1 for r in self.rows if r.priced_at == TARIFF)

    @property
    def pricing_note(self) -> str:
        """Which price the costs are at, e.g. for the title block."""
        fixed = f"the fixed price {self.price_per_kwh} {self.currency}/kWh"
        tariff, rest = self.at_tariff, len(self.rows) - self.at_tariff
        if not tariff:
            return f"Cost at {fixed} (no cost at the tariff in force was recorded)"
        if not rest:
            return "Cost at the tariff in force while charging (energy manager)"
        return (f"Cost at the tariff in force while charging for {tariff} "
                f"session{'s' if tariff != 1 else ''}, at {fixed} for {rest} "
                f"(no tariff cost recorded)")

    @property
    def total_kwh(self) -> Decimal:
        """Sum of the rows' energy."""
        return sum((r.energy_kwh for r in self.rows), Decimal("0.000"))

    @property
    def total_cost(self) -> Decimal:
        """Sum of the rows' cost."""
        return sum((r.cost for r in self.rows), Decimal("0.00"))


def billed_wh(r: SessionRecord) -> Decimal:
    """The session's energy as the central system bills it: OCPP 1.6 sends the registers in
    whole Wh (meterStop - meterStart), so the printed energy is their difference, not the
    fractional energy_wh, which can differ by up to 1 Wh (issue 10's billing exactness; a
    2.0.1 session, billed in fractions, is within 1 Wh of it too). A record whose registers do
    not match its energy (older data, a register reset) keeps energy_wh."""
    whole = Decimal(round(r.meter_stop_wh) - round(r.meter_start_wh))
    if whole >= 0 and abs(whole - Decimal(str(r.energy_wh))) < 1:
        return whole
    return Decimal(str(r.energy_wh))


def build(records: list[SessionRecord], *, title: str, price_per_kwh: float, currency: str,
          zone: tzinfo, tariff: Mapping[tuple[str, int, datetime], Decimal] | None = None
          ) -> Report:
    """Rows oldest first; cost at the tariff where `tariff` has the session, else the price."""
    price = Decimal(str(price_per_kwh))
    tariff = tariff or {}
    rows = []
    for r in sorted(records, key=lambda r: r.started_at):
        kwh = (billed_wh(r) / 1000).quantize(Decimal("0.001"), ROUND_HALF_UP)
        priced = tariff.get(r.key)
        rows.append(ReportRow(
            start=r.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            end=r.stopped_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            station=r.station, connector=r.connector, id_tag=r.id_tag or "",
            minutes=round(r.duration_s / 60), energy_kwh=kwh,
            cost=(kwh * price).quantize(Decimal("0.01"), ROUND_HALF_UP) if priced is None
            else priced.quantize(Decimal("0.01"), ROUND_HALF_UP),
            priced_at=f"fixed {price}" if priced is None else TARIFF))
    return Report(title, currency, price, rows)


def _cells(row: ReportRow) -> list[str | int]:
    return [row.start, row.end, row.station, row.connector, row.id_tag, row.minutes,
            f"{row.energy_kwh:.3f}", f"{row.cost:.2f}", row.priced_at]


def _header(report: Report) -> list[str]:
    return [*HEADER[:7], f"Cost ({report.currency})", HEADER[8]]


def to_csv(report: Report) -> bytes:
    """CSV with a header, one line per session and a Total line (UTF-8 with BOM for Excel)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_header(report))
    for row in report.rows:
        writer.writerow(_cells(row))
    writer.writerow(["Total", "", "", "", "", "", f"{report.total_kwh:.3f}",
                     f"{report.total_cost:.2f}", report.pricing_note])
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(report: Report) -> bytes:
    """An Excel workbook: numbers as numbers, a SUM row, the price in the title block."""
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Sessions"
    ws.append([report.title])
    ws.append([f"Price per kWh ({report.currency})", float(report.price_per_kwh)])
    ws.append([report.pricing_note])
    ws.append(_header(report))
    for cell in ws[4]:
        cell.font = Font(bold=True)
    first = ws.max_row + 1
    for row in report.rows:
        ws.append([row.start, row.end, row.station, row.connector, row.id_tag, row.minutes,
                   float(row.energy_kwh), float(row.cost), row.priced_at])
    last = ws.max_row
    total = ws.max_row + 1
    ws.append(["Total", None, None, None, None, None,
               f"=SUM(G{first}:G{last})" if report.rows else 0,
               f"=SUM(H{first}:H{last})" if report.rows else 0])
    for cell in ws[total]:
        cell.font = Font(bold=True)
    for r in range(first, total + 1):
        ws[f"G{r}"].number_format = "0.000"
        ws[f"H{r}"].number_format = "0.00"
    for col, width in zip("ABCDEFGHI", (17, 17, 12, 10, 14, 14, 13, 11, 12), strict=True):
        ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_pdf(report: Report) -> bytes:
    """A one-table A4 PDF with the totals line."""
    from reportlab.lib import colors  # type: ignore[import-untyped]
    from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
    from reportlab.lib.styles import getSampleStyleSheet  # type: ignore[import-untyped]
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]

    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), title=report.title,
                            author="voltbus")
    styles = getSampleStyleSheet()
    data: list[list[str | int]] = [list(_header(report))]
    data += [_cells(r) for r in report.rows]
    data.append(["Total", "", "", "", "", "", f"{report.total_kwh:.3f}",
                 f"{report.total_cost:.2f}", ""])
    table = Table(data, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
        ("ALIGN", (3, 1), (-2, -1), "RIGHT"),
    ]))
    doc.build([
        Paragraph(report.title, styles["Title"]),
        Paragraph(f"Price per kWh: {report.price_per_kwh} {report.currency}", styles["Normal"]),
        Paragraph(report.pricing_note, styles["Normal"]),
        Spacer(1, 12), table,
    ])
    return out.getvalue()
