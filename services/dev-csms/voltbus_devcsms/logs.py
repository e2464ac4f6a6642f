"""Logging for the central system: frames at DEBUG, and never a secret in a log line.

Every frame used to be logged at INFO (the ocpp package's default), including the
AuthorizationKey the central system sends: at a thousand connectors that logging was a large share
of the dev central system's CPU, and the key ended up in every log (issue 14).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import MutableMapping
from typing import Any

MASK = "<redacted>"

# 1.6 configuration keys whose value is a secret (ChangeConfiguration, GetConfiguration.conf).
SECRET_KEYS = frozenset({"AuthorizationKey"})
# 2.0.1 device-model variables whose value is a secret (SetVariables, NotifyReport).
SECRET_VARIABLES = frozenset({"BasicAuthPassword"})
_SECRET_FIELD = re.compile(r"password|authorizationkey|privatekey|secret", re.IGNORECASE)
_SECRET_WORDS = re.compile("|".join(sorted(SECRET_KEYS | SECRET_VARIABLES)), re.IGNORECASE)
_BASIC = re.compile(r"(Basic\s+)[A-Za-z0-9+/=._~-]+", re.IGNORECASE)


def _scrub(node: Any) -> Any:
    """A copy of a decoded frame with every secret value masked."""
    if isinstance(node, list):
        return [_scrub(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    variable = node.get("variable")
    secret_variable = isinstance(variable, dict) and variable.get("name") in SECRET_VARIABLES
    for key, value in node.items():
        if ((key == "value" and node.get("key") in SECRET_KEYS)
                or (key == "attributeValue" and secret_variable)
                or (isinstance(value, str) and _SECRET_FIELD.search(key))):
            out[key] = MASK
        else:
            out[key] = _scrub(value)
    return out


def redact(text: str) -> str:
    """A frame or log text with AuthorizationKey / BasicAuthPassword values and Basic auth masked.

    A frame that is not valid JSON (or was cut short by a logger) but names a secret is withheld
    whole: its value cannot be found reliably, so none of it is shown.
    """
    text = _BASIC.sub(rf"\1{MASK}", text)
    if not _SECRET_WORDS.search(text) and not _SECRET_FIELD.search(text):
        return text
    try:
        return json.dumps(_scrub(json.loads(text)), separators=(",", ":"))
    except (ValueError, RecursionError):
        if _SECRET_WORDS.search(text):
            return f"<{len(text)} characters withheld: they name a secret>"
        return text


def _redact_arg(arg: object) -> object:
    if isinstance(arg, bool | int | float) or arg is None:
        return arg
    return redact(arg if isinstance(arg, str) else str(arg))


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose arguments are redacted; the ocpp package's INFO frame lines go to DEBUG.

    The ocpp package logs a peer's bad frames with logger.exception: they are the peer's errors,
    not ours, so they are warnings (the test tripwire fails on our own errors only).
    """

    def __init__(self, logger: logging.Logger, *, info_to_debug: bool = False) -> None:
        super().__init__(logger, {})
        self.info_to_debug = info_to_debug

    def process(self, msg: Any,
                kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Unchanged (kept for the LoggerAdapter protocol)."""
        return msg, kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log with every argument redacted."""
        if level == logging.INFO and self.info_to_debug:
            level = logging.DEBUG
        if self.isEnabledFor(level):
            if isinstance(msg, str):
                msg = redact(msg)
            kwargs.setdefault("stacklevel", 3)  # the caller of debug()/info()/..., not us
            self.logger.log(level, msg, *(_redact_arg(a) for a in args), **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Redacted DEBUG."""
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Redacted INFO (DEBUG when info_to_debug)."""
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Redacted WARNING."""
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Redacted ERROR."""
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        """A peer's bad frame: a redacted WARNING without the traceback."""
        kwargs.pop("exc_info", None)
        self.log(logging.WARNING, msg, *args, **kwargs)


def ocpp_logger() -> RedactingLogger:
    """The logger each station session hands to the ocpp package."""
    return RedactingLogger(logging.getLogger("voltbus_devcsms.ocpp"), info_to_debug=True)


def websockets_logger() -> RedactingLogger:
    """websockets logs request headers (Authorization: Basic ...) and frames at DEBUG: redacted."""
    return RedactingLogger(logging.getLogger("websockets.server"))
