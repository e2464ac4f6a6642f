"""Monthly reports per id tag (or all) as CSV, Excel or PDF, with cost at the configured price."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from voltbus_api import reports
from voltbus_api.deps import SessionsDep, SettingsDep
from voltbus_api.errors import ApiError
from voltbus_api.history import SessionFilter
from voltbus_api.schemas import error_responses

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
    source: SessionsDep, settings: SettingsDep,
    month: Annotated[str, "YYYY-MM"], fmt: Format,
    id_tag: Annotated[str | None, Query(max_length=20, description="one card, or all")] = None,
    station: Annotated[str | None, Query()] = None,
    price_per_kwh: Annotated[float | None, Query(ge=0, le=100, description="overrides "
                                                 "VOLTBUS_API_PRICE_PER_KWH")] = None,
) -> Response:
    """Sessions that started in the month (local time) with energy, cost and totals."""
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=settings.zone)
    except ValueError:
        raise ApiError(422, f"invalid request: month {month!r} {_month_problem(month)}; "
                            "use the format YYYY-MM, e.g. 2026-01") from None
    following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    found = await source.sessions(SessionFilter(station=station, id_tag=id_tag, start=first,
                                                end=following))
    who = f"id tag {id_tag}" if id_tag else "all id tags"
    title = f"Charging report {month} ({who})" + (f", station {station}" if station else "")
    price = settings.api_price_per_kwh if price_per_kwh is None else price_per_kwh
    data = reports.build(found, title=title, price_per_kwh=price,
                         currency=settings.api_currency, zone=settings.zone)
    body = {Format.CSV: reports.to_csv, Format.XLSX: reports.to_xlsx,
            Format.PDF: reports.to_pdf}[fmt](data)
    name = f"voltbus-{month}" + (f"-{id_tag}" if id_tag else "") + f".{fmt.value}"
    return Response(body, media_type=_MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _month_problem(month: str) -> str:
    """What is wrong with a month that strptime refused."""
    if re.fullmatch(r"\d{4}-\d{2}", month):
        return f"has no month {month[5:]} (months are 01..12)"
    return "is not a year and month"
