"""Query parameters shared by the history and report routes, with the ranges the API can serve.

Every bound here turns what used to be a 500 into a 422 that says what was wrong: SQLite stores
64-bit integers, datetime arithmetic stops at years 1 and 9999, and InfluxDB stores nanoseconds
since 1970 in 64 bits (1677-09-21 .. 2262-04-11).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator

from voltbus_api.errors import ApiError

# InfluxDB's time range, less the week influx_reader.py widens a query by on the end side.
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 3, tzinfo=UTC)
MAX_CONNECTOR = 10_000  # the same bound as the {n} path parameter
_ID_TAG = re.compile(r"[\x21-\x7e]{1,36}")  # the bus contract's IdTag


def in_range(moment: datetime, zone: tzinfo = UTC) -> datetime:
    """The moment as an aware datetime if the API can query it; ValueError saying why not.

    A moment without an offset is read in `zone`.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        utc = EARLIEST - timedelta(days=1) if moment.year < 5000 else LATEST + timedelta(days=1)
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(f"{moment.isoformat()} is outside the time range history covers "
                         f"({EARLIEST:%Y-%m-%d} .. {LATEST:%Y-%m-%d} UTC)")
    return moment


def _moment(value: datetime) -> datetime:
    return in_range(value)


def _id_tag(value: str) -> str:
    if not _ID_TAG.fullmatch(value):
        raise ValueError("an id tag is 1..36 printable ASCII characters without spaces "
                         f"(got {value!r})")
    return value


def _station(value: str) -> str:
    if not value or len(value) > 48 or any(c in value for c in "/+# ") or not value.isprintable():
        raise ValueError("a station id is 1..48 printable characters without / + # or space "
                         f"(got {value!r})")
    return value


Station = Annotated[str | None, Query(description="station id", json_schema_extra={
    "minLength": 1, "maxLength": 48, "pattern": r"^[^/+# \x00-\x1f\x7f]+$"}), AfterValidator(
    lambda v: None if v is None else _station(v))]
Connector = Annotated[int | None, Query(ge=1, le=MAX_CONNECTOR, description="connector id")]
IdTagFilter = Annotated[str | None, Query(description="OCPP id tag (card)", json_schema_extra={
    "minLength": 1, "maxLength": 36, "pattern": r"^[\x21-\x7e]+$"}), AfterValidator(
    lambda v: None if v is None else _id_tag(v))]
From = Annotated[datetime | None, Query(
    alias="from", description="started at or after (ISO 8601; UTC when no offset is given)",
    examples=["2026-01-01T00:00:00Z"]), AfterValidator(lambda v: None if v is None else _moment(v))]
To = Annotated[datetime | None, Query(
    alias="to", description="started before (ISO 8601; UTC when no offset is given)"),
    AfterValidator(lambda v: None if v is None else _moment(v))]


def month_range(month: str, zone: tzinfo) -> tuple[datetime, datetime]:
    """YYYY-MM's first moment and the next month's, in zone; ApiError 422 saying what is wrong.

    Months outside the time range history covers are refused too (year 0, 9999-12, ...).
    """
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=zone)
    except ValueError:
        raise ApiError(422, f"invalid request: month {month!r} {_month_problem(month)}; "
                            "use the format YYYY-MM, e.g. 2026-01") from None
    try:
        following = first.replace(year=first.year + first.month // 12,
                                  month=first.month % 12 + 1)
        in_range(first, zone)
        in_range(following, zone)
    except ValueError:
        raise ApiError(422, f"invalid request: month {month!r} is outside the months history "
                            f"covers ({EARLIEST + timedelta(days=31):%Y-%m} .. "
                            f"{LATEST - timedelta(days=31):%Y-%m})") from None
    return first, following


def _month_problem(month: str) -> str:
    """What is wrong with a month that strptime refused."""
    if re.fullmatch(r"\d{4}-\d{2}", month):
        if not 1 <= int(month[5:]) <= 12:
            return f"has no month {month[5:]} (months are 01..12)"
        return f"has no year {month[:4]}"
    return "is not a year and month"
