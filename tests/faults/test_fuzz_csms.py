"""Hostile frames from a central system: the frame check answers or drops them, it never raises."""

from __future__ import annotations

import json

import pytest

from voltbus_ocpp.protocol.v16.frames import check_frame

DEEP = 100_000


@pytest.mark.parametrize("raw", [
    '[2, "m1", "Heartbeat", {"a": ' + "[" * DEEP + "]" * DEEP + "}]",
    ('[2, "m1", "Heartbeat", {"a": ' + "[" * DEEP + "]" * DEEP + "}]").encode(),
])
def test_deep_nesting_with_readable_id_gets_formation_violation(raw: str | bytes) -> None:
    answer = check_frame(raw, {"Heartbeat"})
    assert answer is not None
    assert json.loads(answer)[:3] == [4, "m1", "FormationViolation"]


def test_deep_nesting_without_id_is_dropped() -> None:
    assert check_frame("[" * DEEP + "]" * DEEP, {"Heartbeat"}) == ""
