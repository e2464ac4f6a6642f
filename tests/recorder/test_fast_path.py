"""The meter fast path (points.meter_json) writes exactly what the model path writes, and never
accepts a payload the MeterReading model refuses: anything unusual goes to the model."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voltbus_common import channels as ch
from voltbus_common.channels import PayloadError
from voltbus_common.models import MeterReading
from voltbus_recorder import points

GOOD = {"energy_wh": 12345.6, "power_w": 7360.0, "current_a": [10.7, 10.6, 10.7],
        "voltage_v": [230.1, 229.8, 231.0], "ts": "2026-01-01T12:00:00.123456Z"}


def _model_line(raw: bytes) -> str | None:
    try:
        reading = ch.METER.decode(raw)
    except PayloadError:
        return None
    assert reading is not None
    return points.meter("CP1", 2, reading)


@pytest.mark.parametrize("change", [
    {}, {"ts": "2026-01-01T13:00:00+01:00"}, {"ts": "2026-01-01T12:00:00Z"},
    {"current_a": [16.0], "voltage_v": [230.0]}, {"current_a": [1.0], "voltage_v": [1.0, 2.0, 3.0]},
    {"extra": "ignored"}, {"power_w": -1.5e-7}, {"energy_wh": 0.0},
])
def test_canonical_payloads_take_the_fast_path_with_the_same_line(change: dict[str, object]
                                                                   ) -> None:
    raw = json.dumps({**GOOD, **change}).encode()
    fast = points.meter_json("CP1", 2, raw)
    assert fast is not None
    assert fast == _model_line(raw)


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b"{}", b'"x"',
    json.dumps({**GOOD, "energy_wh": -1.0}).encode(),         # model: >= 0
    json.dumps({**GOOD, "energy_wh": 5}).encode(),            # an int: the model converts it
    json.dumps({**GOOD, "power_w": "7360"}).encode(),         # a string: lax mode, the model's call
    json.dumps({**GOOD, "power_w": True}).encode(),
    json.dumps({**GOOD, "current_a": [1.0, 2.0]}).encode(),   # model: 1 or 3 phases
    json.dumps({**GOOD, "current_a": []}).encode(),
    json.dumps({**GOOD, "voltage_v": [1.0, 2.0, 3.0, 4.0]}).encode(),
    json.dumps({**GOOD, "ts": "2026-01-01T12:00:00"}).encode(),          # naive
    json.dumps({**GOOD, "ts": "2026-01-01"}).encode(),
    json.dumps({**GOOD, "ts": "2026-01-01T25:00:00Z"}).encode(),
    json.dumps({**GOOD, "ts": 1767268800}).encode(),
    json.dumps({k: v for k, v in GOOD.items() if k != "ts"}).encode(),   # default: now
    b'{"energy_wh": NaN, "power_w": 1.0, "current_a": [1.0], "voltage_v": [1.0], '
    b'"ts": "2026-01-01T12:00:00Z"}',
    b'{"energy_wh": 1e999, "power_w": 1.0, "current_a": [1.0], "voltage_v": [1.0], '
    b'"ts": "2026-01-01T12:00:00Z"}',
])
def test_anything_unusual_is_left_to_the_model(raw: bytes) -> None:
    assert points.meter_json("CP1", 2, raw) is None


finite = st.floats(allow_nan=False, allow_infinity=False)
phases = st.one_of(st.lists(finite, min_size=1, max_size=1), st.lists(finite, min_size=3,
                                                                        max_size=3))


# The machine is shared: no deadline, no speed health check.
RELAXED = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


@RELAXED
@given(energy=st.floats(min_value=0, allow_infinity=False), power=finite, current=phases,
       voltage=phases, ts=st.datetimes(min_value=datetime(1970, 1, 2), timezones=st.sampled_from(
           [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])))
def test_whatever_voltbus_publishes_gives_the_same_line_both_ways(
        energy: float, power: float, current: list[float], voltage: list[float],
        ts: datetime) -> None:
    reading = MeterReading(energy_wh=energy, power_w=power, current_a=current,
                           voltage_v=voltage, ts=ts)
    raw = ch.METER.encode(reading)
    fast = points.meter_json("CP1", 2, raw)
    assert fast == points.meter("CP1", 2, reading)


@RELAXED
@given(st.dictionaries(st.sampled_from(list(GOOD)), st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
    st.lists(st.floats(), max_size=4), st.sampled_from(
        ["2026-01-01T12:00:00Z", "2026-01-01T12:00:00.5+02:00", "2026-13-01T12:00:00Z"]))))
def test_the_fast_path_never_accepts_what_the_model_refuses(fields: dict[str, object]) -> None:
    raw = json.dumps({**GOOD, **fields}, allow_nan=True).encode()
    fast = points.meter_json("CP1", 2, raw)
    if fast is not None:
        assert fast == _model_line(raw)
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in fields.values())
