"""The OCPP 2.0.1 CALLERROR codes for bad frames from the central system (OCPP-J 2.0.1 4.3)."""

from __future__ import annotations

from ocpp.v201.enums import Action

from voltbus_ocpp.protocol import frames

DIALECT = frames.Dialect(
    name="OCPP 2.0.1", version="2.0.1", actions=frozenset(a.value for a in Action),
    format="FormatViolation", occurrence="OccurrenceConstraintViolation",
    rpc="RpcFrameworkError", message_type="MessageTypeNotSupported")


def check_frame(raw: str | bytes, handled: set[str]) -> str | None:
    """None if the frame may be routed, else the CALLERROR frame to answer (or "" for none)."""
    return frames.check_frame(raw, handled, DIALECT)
