"""Parsers for dynamic price feeds, pure: bytes in, sorted price slots out.

* `awattar`: aWATTar's market data (`{"data": [{"start_timestamp": ms, "end_timestamp": ms,
  "marketprice": 98.5, "unit": "Eur/MWh"}]}`), the EPEX day-ahead price.
* `energycharts`: EPEX-style arrays (`{"unix_seconds": [...], "price": [...], "unit":
  "EUR / MWh"}`) as energy-charts publishes them; each slot lasts until the next one.
* `tibber`: Tibber's GraphQL answer, or just its `priceInfo` (`today`/`tomorrow` lists of
  `{"total", "startsAt"}`); `total` already includes tax.
* `generic`: CSV with a header (`start,end,price_per_kwh[,co2_g_per_kwh]`) or JSON (a list of
  such objects, or `{"prices": [...]}`); times ISO 8601 (UTC when naive) or Unix seconds.

Market prices (per MWh) become currency per kWh; a feed's factor and offset (VAT, grid fees)
are applied by the feed, not here.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from voltbus_energy.tariff.prices import PriceSlot

Format = Literal["awattar", "energycharts", "tibber", "generic"]
_UNITS = {"eur/mwh": 0.001, "eur/kwh": 1.0, "ct/kwh": 0.01, "cent/kwh": 0.01}


class FeedFormatError(ValueError):
    """The answer is not in the expected format; the message says what is wrong."""


def _unit_factor(unit: object) -> float:
    key = str(unit).replace(" ", "").lower()
    if key not in _UNITS:
        raise FeedFormatError(f"unknown price unit {unit!r} (known: Eur/MWh, EUR/kWh, ct/kWh)")
    return _UNITS[key]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FeedFormatError(f"{what}: not a number: {str(value)[:40]!r}")
    try:
        number = float(value)
    except ValueError:
        raise FeedFormatError(f"{what}: not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise FeedFormatError(f"{what}: not a finite number: {value!r}")
    return number


def _time(value: object, what: str) -> datetime:
    """ISO 8601 (naive is UTC) or Unix seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str):
        raise FeedFormatError(f"{what}: not a time: {str(value)[:40]!r}")
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(text), UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FeedFormatError(f"{what}: not an ISO 8601 time: {text[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FeedFormatError(f"not JSON: {exc}") from None


def _tidy(slots: list[PriceSlot]) -> list[PriceSlot]:
    """Sorted by start; a slot that overlaps the one before it is cut to start at its end."""
    out: list[PriceSlot] = []
    for slot in sorted(slots, key=lambda s: s.start):
        if slot.end <= slot.start:
            raise FeedFormatError(f"slot at {slot.start.isoformat()} ends before it starts")
        if out and slot.start < out[-1].end:
            if slot.end <= out[-1].end:
                continue
            slot = PriceSlot(out[-1].end, slot.end, slot.price_per_kwh, slot.co2_g_per_kwh)
        out.append(slot)
    if not out:
        raise FeedFormatError("no prices in the answer")
    return out


def _until_next(starts: list[datetime], values: list[tuple[float | None, float | None]]
                ) -> list[PriceSlot]:
    """Slots that last until the next start; the last as long as the one before (or 1 h)."""
    order = sorted(range(len(starts)), key=lambda i: starts[i])
    out = []
    for n, i in enumerate(order):
        if n + 1 < len(order):
            end = starts[order[n + 1]]
        else:
            end = starts[i] + (starts[i] - starts[order[n - 1]] if n else timedelta(hours=1))
        out.append(PriceSlot(starts[i], end, values[i][0], values[i][1]))
    return out


def parse_awattar(raw: bytes) -> list[PriceSlot]:
    """aWATTar market data."""
    doc = _json(raw)
    rows = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise FeedFormatError("expected an object with a 'data' list (aWATTar market data)")
    slots = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not {"start_timestamp", "end_timestamp",
                                             "marketprice"} <= row.keys():
            raise FeedFormatError(f"data[{n}]: needs start_timestamp, end_timestamp, marketprice")
        factor = _unit_factor(row.get("unit", "Eur/MWh"))
        slots.append(PriceSlot(
            _time(_number(row["start_timestamp"], f"data[{n}]") / 1000, f"data[{n}]"),
            _time(_number(row["end_timestamp"], f"data[{n}]") / 1000, f"data[{n}]"),
            _number(row["marketprice"], f"data[{n}].marketprice") * factor))
    return _tidy(slots)


def parse_energycharts(raw: bytes) -> list[PriceSlot]:
    """EPEX-style parallel arrays of Unix seconds and prices."""
    doc = _json(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("unix_seconds"), list) \
            or not isinstance(doc.get("price"), list):
        raise FeedFormatError("expected an object with 'unix_seconds' and 'price' lists")
    times, prices = doc["unix_seconds"], doc["price"]
    if len(times) != len(prices):
        raise FeedFormatError(f"{len(times)} times but {len(prices)} prices")
    factor = _unit_factor(doc.get("unit", "EUR / MWh"))
    starts = [_time(_number(t, f"unix_seconds[{n}]"), "") for n, t in enumerate(times)]
    values: list[tuple[float | None, float | None]] = [
        (None if p is None else _number(p, f"price[{n}]") * factor, None)
        for n, p in enumerate(prices)]
    return _tidy(_until_next(starts, values))


def _tibber_price_info(doc: Any) -> dict[str, Any]:
    """The priceInfo object of the first home, or the document itself when it is one."""
    if isinstance(doc, dict) and ("today" in doc or "tomorrow" in doc):
        return doc
    try:
        homes = doc["data"]["viewer"]["homes"]
        info = homes[0]["currentSubscription"]["priceInfo"]
    except (KeyError, IndexError, TypeError):
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if errors:
            raise FeedFormatError(f"Tibber: {str(errors[0].get('message', errors))[:120]}"
                                  ) from None
        raise FeedFormatError("expected data.viewer.homes[0].currentSubscription.priceInfo"
                              ) from None
    if not isinstance(info, dict):
        raise FeedFormatError("priceInfo is not an object")
    return info


def parse_tibber(raw: bytes) -> list[PriceSlot]:
    """Tibber priceInfo: today's and tomorrow's prices (total, tax included)."""
    info = _tibber_price_info(_json(raw))
    rows = [*(info.get("today") or []), *(info.get("tomorrow") or [])]
    starts: list[datetime] = []
    values: list[tuple[float | None, float | None]] = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or "startsAt" not in row or "total" not in row:
            raise FeedFormatError(f"price {n}: needs startsAt and total")
        starts.append(_time(row["startsAt"], f"price {n}"))
        values.append((_number(row["total"], f"price {n}.total"), None))
    return _tidy(_until_next(starts, values))


def _generic_rows(raw: bytes) -> Iterator[dict[str, Any]]:
    text = raw.decode("utf-8-sig", errors="replace").strip()
    if text.startswith(("[", "{")):
        doc = _json(raw)
        rows = doc.get("prices", doc.get("data")) if isinstance(doc, dict) else doc
        if not isinstance(rows, list):
            raise FeedFormatError("expected a JSON list of {start, end, price_per_kwh}")
        for row in rows:
            if not isinstance(row, dict):
                raise FeedFormatError(f"not an object: {str(row)[:40]}")
            yield row
        return
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    if reader.fieldnames is None or not {"start", "end"} <= {f.strip().lower()
                                                             for f in reader.fieldnames}:
        raise FeedFormatError("CSV needs a header with start,end,price_per_kwh")
    for row in reader:
        yield {k.strip().lower(): v for k, v in row.items() if k is not None}


def _optional(row: dict[str, Any], keys: tuple[str, ...], what: str) -> float | None:
    for key in keys:
        if row.get(key) not in (None, ""):
            return _number(row[key], what)
    return None


def parse_generic(raw: bytes) -> list[PriceSlot]:
    """start,end,price_per_kwh (or price) and optional co2_g_per_kwh, as CSV or JSON."""
    slots = []
    for n, row in enumerate(_generic_rows(raw)):
        if "start" not in row or "end" not in row:
            raise FeedFormatError(f"row {n + 1}: needs start and end")
        price = _optional(row, ("price_per_kwh", "price"), f"row {n + 1} price")
        co2 = _optional(row, ("co2_g_per_kwh", "co2"), f"row {n + 1} co2")
        if price is None and co2 is None:
            raise FeedFormatError(f"row {n + 1}: needs price_per_kwh or co2_g_per_kwh")
        slots.append(PriceSlot(_time(row["start"], f"row {n + 1} start"),
                               _time(row["end"], f"row {n + 1} end"), price, co2))
    return _tidy(slots)


PARSERS: dict[str, Callable[[bytes], list[PriceSlot]]] = {
    "awattar": parse_awattar, "energycharts": parse_energycharts, "tibber": parse_tibber,
    "generic": parse_generic,
}
