"""SecurityEventNotification.req: the same payload in the 1.6 security extension and 2.0.1."""

from __future__ import annotations

from typing import Any

from voltbus_ocpp.protocol.wire_time import iso
from voltbus_ocpp.records import SecurityEventRecord


def security_event(record: SecurityEventRecord) -> dict[str, Any]:
    """The request's camelCase payload."""
    # techInfo None is left out of the frame (the ocpp package's 1.6 dataclass requires the
    # argument although the schema makes it optional)
    return {"type": record.kind, "timestamp": iso(record.ts),
            "techInfo": record.tech_info[:255] if record.tech_info else None}
