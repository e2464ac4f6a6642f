"""OCPP dateTime on the wire (the same in 1.6 and 2.0.1): ISO 8601 UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: datetime) -> str:
    """OCPP dateTime: ISO 8601 UTC with a Z."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """An OCPP dateTime (Z or offset) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
