"""Monthly reports per id tag (or all) as CSV, Excel or PDF, with cost at the tariff in force
(where the energy manager recorded one) or else at the configured price."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from voltbus_api import reports
from voltbus_api.deps import SessionsDep, SettingsDep
from voltbus_api.history import SessionFilter
from voltbus_api.query import IdTagFilter, Station, month_range
from voltbus_api.schemas import error_responses
from voltbus_api.sessions import tariff_costs

router = APIRouter(tags=["reports"])


class Format(StrEnum):
    """Report file formats."""

    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"


_MEDIA = {Format.CSV: "text/csv; charset=utf-8",
          Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          Format.PDF: "application/pdf"}


@router.get("/reports/{month}.{fmt}", responses={
    200: {"content": {m: {} for m in _MEDIA.values()}, "description": "the report file"},
    **error_responses(401, 422)}, response_class=Response)
async def report(
    request: Request, source: SessionsDep, settings: SettingsDep,
    month: Annotated[str, "YYYY-MM"], fmt: Format,
    id_tag: IdTagFilter = None,
    station: Station = None,
    price_per_kwh: Annotated[float | None, Query(ge=0, le=100, description="overrides "
                                                 "VOLTBUS_API_PRICE_PER_KWH for the sessions "
                                                 "without a cost at the tariff")] = None,
) -> Response:
    """Sessions that started in the month (local time) with energy, cost and totals.

    A session's cost is the energy manager's at the tariff in force while it charged where one
    was recorded, else at the fixed price; the "Priced at" column says which."""
    first, following = month_range(month, settings.zone)
    found = await source.sessions(SessionFilter(station=station, id_tag=id_tag, start=first,
                                                end=following))
    who = f"id tag {id_tag}" if id_tag else "all id tags"
    title = f"Charging report {month} ({who})" + (f", station {station}" if station else "")
    price = settings.api_price_per_kwh if price_per_kwh is None else price_per_kwh
    energy = getattr(request.app.state, "energy", None)
    tariff = await tariff_costs(source, energy.finals if energy else None, found)
    data = reports.build(found, title=title, price_per_kwh=price,
                         currency=settings.api_currency, zone=settings.zone, tariff=tariff)
    body = {Format.CSV: reports.to_csv, Format.XLSX: reports.to_xlsx,
            Format.PDF: reports.to_pdf}[fmt](data)
    return Response(body, media_type=_MEDIA[fmt],
                    headers={"Content-Disposition": _attachment(month, id_tag, fmt)})


def _attachment(month: str, id_tag: str | None, fmt: Format) -> str:
    """Content-Disposition with a file name that cannot break the header or a file system.

    month is YYYY-MM and id_tag printable ASCII by now; quotes, backslashes and path separators
    become '_' all the same, so the name is safe wherever it is saved.
    """
    name = f"voltbus-{month}" + (f"-{id_tag}" if id_tag else "") + f".{fmt.value}"
    return f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]", "_", name)}"'
