"""SecurityEventNotification.req: the same payload in the 1.6 security extension and 2.0.1."""

from __future__ import annotations

from typing import Any

from voltbus_ocpp.protocol.wire_time import iso
from voltbus_ocpp.records import SecurityEventRecord


def security_event(record: SecurityEventRecord) -> dict[str, Any]:
    """The request's camelCase payload."""
    payload: dict[str, Any] = {"type": record.kind, "timestamp": iso(record.ts)}
    if record.tech_info:
        payload["techInfo"] = record.tech_info[:255]
    return payload
