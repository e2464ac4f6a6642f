"""The OCPP 1.6 CALLERROR codes for bad frames from the central system (OCPP-J 1.6 4.2.3); the
checks themselves are shared with 2.0.1 (protocol/frames.py)."""

from __future__ import annotations

import json

from ocpp.v16.enums import Action

from voltbus_ocpp.protocol import frames
from voltbus_ocpp.protocol.frames import call_error as call_error

DIALECT = frames.Dialect(
    name="OCPP 1.6", version="1.6", actions=frozenset(a.value for a in Action),
    format="FormationViolation", occurrence="OccurenceConstraintViolation",  # 1.6's spelling
    rpc="FormationViolation", message_type="FormationViolation")


def check_frame(raw: str | bytes, handled: set[str]) -> str | None:
    """None if the frame may be routed, else the CALLERROR frame to answer (or "" for none).

    Beyond the schema: a negative connectorId (1.6 numbers connectors from 0, the station as a
    whole) is a PropertyConstraintViolation, whatever the operation (ChangeAvailability -1 was
    Rejected, others answered as if it were a connector)."""
    error = frames.check_frame(raw, handled, DIALECT)
    if error is not None:
        return error
    frame = json.loads(raw)
    if frame[0] == 2 and isinstance(frame[3], dict):
        connector = frame[3].get("connectorId")
        if isinstance(connector, int) and not isinstance(connector, bool) and connector < 0:
            return call_error(frame[1], "PropertyConstraintViolation",
                              f"{frame[2]}: connectorId {connector} is negative")
    return None
