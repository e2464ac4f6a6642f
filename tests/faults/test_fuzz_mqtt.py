"""Hostile MQTT command payloads: the gateway's salvage of request_id never raises."""

from __future__ import annotations

from voltbus_ocpp.bus_bridge import _salvage


def test_salvage_survives_deep_nesting() -> None:
    raw = b'{"request_id": "r1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _salvage(raw) == (None, None)
