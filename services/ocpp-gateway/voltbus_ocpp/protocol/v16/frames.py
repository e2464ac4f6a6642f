"""Checks an incoming frame before the ocpp package routes it, so every bad frame gets the OCPP 1.6
CALLERROR code the spec names (OCPP-J 1.6 section 4.2.3) and the connection stays up."""

from __future__ import annotations

import decimal
import json
import re
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError  # type: ignore[import-untyped]
from ocpp.messages import get_validator
from ocpp.v16.enums import Action


def call_error(unique_id: str, code: str, description: str) -> str:
    """A CALLERROR frame."""
    return json.dumps([4, unique_id, code, description[:255], {}])


def _schema_code(error: SchemaError) -> str:
    if error.validator == "type":
        return "TypeConstraintViolation"
    if error.validator == "required":
        return "OccurenceConstraintViolation"
    if error.validator == "additionalProperties":
        return "FormationViolation"
    return "PropertyConstraintViolation"  # enum, maxLength, minimum, pattern, format...


_CALL_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')


def check_frame(raw: str | bytes, handled: set[str]) -> str | None:
    """None if the frame may be routed, else the CALLERROR frame to answer (or "" for none)."""
    try:
        frame: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return ""  # no unique id to answer to
    except RecursionError:  # nested too deep for the parser: answer if the CALL's id is readable
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        found = _CALL_ID.match(text[:64])
        return call_error(found.group(1), "FormationViolation",
                          "frame nested too deep") if found else ""
    unique_id = frame[1] if isinstance(frame, list) and len(frame) > 1 and isinstance(
        frame[1], str) else None
    if not isinstance(frame, list) or not frame or frame[0] not in (2, 3, 4):
        return call_error(unique_id, "FormationViolation",
                          "frame is not [MessageTypeId, ...]") if unique_id else ""
    if frame[0] != 2:
        return None
    if unique_id is None:
        return ""
    if len(frame) != 4 or not isinstance(frame[2], str):
        return call_error(unique_id, "FormationViolation",
                          "a CALL is [2, uniqueId, action, payload]")
    action, payload = frame[2], frame[3]
    if action not in handled:
        known = action in {a.value for a in Action}
        return call_error(unique_id, "NotImplemented" if known else "NotSupported",
                          f"{action} is not {'implemented' if known else 'an OCPP 1.6 action'}")
    if not isinstance(payload, dict):
        return call_error(unique_id, "FormationViolation", "payload must be a JSON object")
    try:
        get_validator(2, action, "1.6", parse_float=decimal.Decimal).validate(
            json.loads(json.dumps(payload), parse_float=decimal.Decimal))
    except SchemaError as exc:
        return call_error(unique_id, _schema_code(exc), f"{action}: {exc.message}")
    return None
