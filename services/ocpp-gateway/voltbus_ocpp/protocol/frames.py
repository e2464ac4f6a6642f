"""Checks an incoming frame before the ocpp package routes it, so every bad frame gets the
CALLERROR code its OCPP version names and the connection stays up.

The checks are the same in 1.6 (OCPP-J 1.6 section 4.2.3) and 2.0.1 (OCPP-J 2.0.1 section 4.3);
the codes differ (1.6 "FormationViolation"/"OccurenceConstraintViolation", 2.0.1
"FormatViolation"/"OccurrenceConstraintViolation", "RpcFrameworkError",
"MessageTypeNotSupported"), so each version passes its `Dialect`.
"""

from __future__ import annotations

import decimal
import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError  # type: ignore[import-untyped]
from ocpp.messages import get_validator


@dataclass(frozen=True)
class Dialect:
    """One version's schema set, action names and CALLERROR codes."""

    name: str  # "OCPP 1.6", in descriptions
    version: str  # the ocpp package's schema version: "1.6", "2.0.1"
    actions: frozenset[str]  # every action of the version (unknown ones are NotSupported)
    format: str  # payload syntactically wrong, nested too deep, unknown properties
    occurrence: str  # a required property missing
    rpc: str  # not a valid RPC frame (no readable message id, wrong shape)
    message_type: str  # a message type id other than 2, 3, 4


def call_error(unique_id: str, code: str, description: str) -> str:
    """A CALLERROR frame."""
    return json.dumps([4, unique_id, code, description[:255], {}])


def _schema_code(error: SchemaError, dialect: Dialect) -> str:
    if error.validator == "type":
        return "TypeConstraintViolation"
    if error.validator == "required":
        return dialect.occurrence
    if error.validator == "additionalProperties":
        return dialect.format
    return "PropertyConstraintViolation"  # enum, maxLength, minimum, pattern, format...


_CALL_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')


def check_frame(raw: str | bytes, handled: set[str], dialect: Dialect) -> str | None:
    """None if the frame may be routed, else the CALLERROR frame to answer (or "" for none)."""
    try:
        frame: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return ""  # no unique id to answer to
    except RecursionError:  # nested too deep for the parser: answer if the CALL's id is readable
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        found = _CALL_ID.match(text[:64])
        return call_error(found.group(1), dialect.format,
                          "frame nested too deep") if found else ""
    unique_id = frame[1] if isinstance(frame, list) and len(frame) > 1 and isinstance(
        frame[1], str) else None
    if not isinstance(frame, list) or not frame:
        return ""
    if frame[0] not in (2, 3, 4):
        return call_error(unique_id, dialect.message_type,
                          "frame is not [MessageTypeId, ...]") if unique_id else ""
    if frame[0] != 2:
        return None
    if unique_id is None:
        return ""
    if len(frame) != 4 or not isinstance(frame[2], str):
        return call_error(unique_id, dialect.rpc, "a CALL is [2, uniqueId, action, payload]")
    action, payload = frame[2], frame[3]
    if action not in handled:
        known = action in dialect.actions
        what = "implemented" if known else f"an {dialect.name} action"
        return call_error(unique_id, "NotImplemented" if known else "NotSupported",
                          f"{action} is not {what}")
    if not isinstance(payload, dict):
        return call_error(unique_id, dialect.format, "payload must be a JSON object")
    try:
        get_validator(2, action, dialect.version, parse_float=decimal.Decimal).validate(
            json.loads(json.dumps(payload), parse_float=decimal.Decimal))
    except SchemaError as exc:
        return call_error(unique_id, _schema_code(exc, dialect), f"{action}: {exc.message}")
    return None
