"""Bus payloads -> InfluxDB line protocol, pure. The schema is documented in docs/influxdb.md.

Every point carries the timestamp of the event it records (never the time it was written), so a
point written twice is the same point: InfluxDB keeps one value per series and timestamp. That
makes replays after a crash idempotent.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TypeGuard

from pydantic_core import from_json

from voltbus_common.enums import ConnectorStatus, ServiceState
from voltbus_common.models import (
    ChargingState,
    HardwareError,
    MeterReading,
    OcppConnection,
    OcppConnectorStatus,
    PilotEvent,
    RelayState,
    SessionCost,
    SessionSummary,
    SiteState,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
FieldValue = float | int | bool | str
# Stable numbers for the status timeline (Grafana value mappings use them).
STATUS_CODES: dict[ConnectorStatus, int] = {s: i for i, s in enumerate(ConnectorStatus)}


def _tag(value: str) -> str:
    # A backslash in a tag value stays literal in InfluxDB 1.x; only these three are escaped.
    return value.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def ns(ts: datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond (no float rounding)."""
    return (ts - _EPOCH) // _US * 1000


def line(measurement: str, tags: dict[str, str], fields: dict[str, FieldValue | None],
         ts: datetime) -> str:
    """One line of line protocol; None fields are left out, tags sorted (InfluxDB's advice)."""
    tag_part = "".join(f",{_tag(k)}={_tag(v)}" for k, v in sorted(tags.items()) if v)
    field_part = ",".join(f"{_tag(k)}={_field(v)}" for k, v in fields.items() if v is not None)
    return f"{_tag(measurement)}{tag_part} {field_part} {ns(ts)}"


@functools.lru_cache(maxsize=8192)
def _connector_series(measurement: str, station: str, connector: int) -> str:
    """Measurement and sorted tags of a per-connector series (cached: the hot path)."""
    return f"{measurement},connector={connector},station={_tag(station)}"


def meter(station: str, connector: int, r: MeterReading) -> str:
    """measurement `meter`: energy register, power, per-phase current and voltage."""
    return _meter_line(_connector_series("meter", station, connector), float(r.energy_wh),
                       float(r.power_w), [float(v) for v in r.current_a],
                       [float(v) for v in r.voltage_v], ns(r.ts))


def _meter_line(series: str, energy_wh: float, power_w: float, current_a: list[float],
                voltage_v: list[float], ts_ns: int) -> str:
    """Written out by hand rather than through line(): it runs once per reading."""
    if len(current_a) == 3 and len(voltage_v) == 3:  # the usual case, in one f-string
        (c1, c2, c3), (v1, v2, v3) = current_a, voltage_v
        return (f"{series} energy_wh={energy_wh!r},power_w={power_w!r},"
                f"current_a={max(current_a)!r},phases=3i,current_l1_a={c1!r},"
                f"current_l2_a={c2!r},current_l3_a={c3!r},voltage_l1_v={v1!r},"
                f"voltage_l2_v={v2!r},voltage_l3_v={v3!r} {ts_ns}")
    fields = [f"energy_wh={energy_wh!r}", f"power_w={power_w!r}",
              f"current_a={max(current_a)!r}", f"phases={len(current_a)}i"]
    fields += [f"current_l{i}_a={v!r}" for i, v in enumerate(current_a, start=1)]
    fields += [f"voltage_l{i}_v={v!r}" for i, v in enumerate(voltage_v, start=1)]
    return f"{series} {','.join(fields)} {ts_ns}"


# RFC 3339 with a zone and at most microseconds: what MeterReading.model_dump_json() writes.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


def _finite(v: object) -> TypeGuard[float]:
    return type(v) is float and math.isfinite(v)


def _phases(v: object) -> TypeGuard[list[float]]:
    return type(v) is list and len(v) in (1, 3) and all(_finite(x) for x in v)


def meter_json(station: str, connector: int, raw: bytes) -> str | None:
    """meter() straight from the wire bytes, or None to take the MeterReading model's path.

    The fast path for the one message that arrives by the thousand (issue 14): a JSON parse and
    a few checks instead of building a pydantic model (4x cheaper). It accepts only payloads in
    the exact shape voltbus publishes (floats, 1 or 3 phases, an RFC 3339 `ts` with its zone), all
    of which MeterReading accepts with the same values; anything else (ints, strings, missing or
    naive `ts`, errors) returns None, and the model decides (tests/recorder/test_points.py).
    """
    try:
        d = from_json(raw)  # the JSON parser pydantic itself uses, without building a model
    except ValueError:
        return None
    if type(d) is not dict:
        return None
    energy, power, current, voltage, ts = (d.get("energy_wh"), d.get("power_w"),
                                           d.get("current_a"), d.get("voltage_v"), d.get("ts"))
    if not (_finite(energy) and energy >= 0 and _finite(power)
            and _phases(current) and _phases(voltage)):
        return None
    if type(ts) is not str or not _RFC3339.fullmatch(ts):
        return None
    try:
        at = datetime.fromisoformat(ts).astimezone(UTC)
    except ValueError:  # e.g. 25:00 or an offset of 24 h: the model's error message is better
        return None
    return _meter_line(_connector_series("meter", station, connector), energy, power,
                       current, voltage, ns(at))


def status(station: str, connector: int, s: OcppConnectorStatus) -> str:
    """measurement `connector_status`: OCPP status (and its number) with the error code."""
    return line("connector_status", {"station": station, "connector": str(connector)},
                {"status": s.status.value, "status_code": STATUS_CODES[s.status],
                 "error_code": s.error_code.value}, s.ts)


def session(station: str, connector: int, s: SessionSummary, zone: tzinfo = UTC) -> str:
    """measurement `session`: a finished transaction, at its stop time."""
    tags = {"station": station, "connector": str(connector), "id_tag": s.id_tag or "",
            "stop_reason": s.stop_reason.value,
            "month": s.stopped_at.astimezone(zone).strftime("%Y-%m")}
    duration_s = max(0.0, (s.stopped_at - s.started_at).total_seconds())
    return line("session", tags, {
        "energy_wh": float(s.energy_wh), "energy_kwh": float(s.energy_wh) / 1000.0,
        "duration_s": duration_s, "meter_start_wh": float(s.meter_start_wh),
        "meter_stop_wh": float(s.meter_stop_wh), "transaction_id": s.transaction_id,
        "transaction_ref": s.transaction_ref,  # the OCPP id as text (2.0.1's UUID too)
        "started_at": s.started_at.isoformat(), "started_at_ns": ns(s.started_at),
    }, s.stopped_at)


def connection(station: str, c: OcppConnection) -> str:
    """measurement `ocpp_connection`: link up/down (and registration) since `since`."""
    return line("ocpp_connection", {"station": station},
                {"connected": c.connected, "up": int(c.connected),
                 "registration": c.registration.value if c.registration else None}, c.since)


def connection_sample(station: str, c: OcppConnection, at: datetime, *,
                      gateway_online: bool | None) -> str:
    """The link state re-recorded at `at`, so uptime queries find a state in every range.

    A gateway whose service is offline (its MQTT Last Will) counts as down whatever its last
    retained connection message said.
    """
    up = c.connected and gateway_online is not False
    return line("ocpp_connection", {"station": station},
                {"connected": up, "up": int(up), "sampled": True,
                 "registration": c.registration.value if c.registration else None}, at)


def service_status(station: str, service: str, state: ServiceState, at: datetime) -> str:
    """measurement `service_status`: a voltbus service went online/offline (seen at `at`)."""
    online = state is ServiceState.ONLINE
    return line("service_status", {"station": station, "service": service},
                {"online": online, "up": int(online)}, at)


def pilot(station: str, connector: int, p: PilotEvent) -> str:
    """measurement `pilot`: IEC 61851 control-pilot state."""
    return line("pilot", {"station": station, "connector": str(connector)},
                {"state": p.state.value}, p.ts)


def relay(station: str, connector: int, r: RelayState) -> str:
    """measurement `relay`: the relay position actually switched."""
    return line("relay", {"station": station, "connector": str(connector)},
                {"closed": r.closed, "closed_int": int(r.closed)}, r.ts)


def hw_error(station: str, connector: int, e: HardwareError) -> str:
    """measurement `hw_error`: hardware fault code (NoError clears)."""
    return line("hw_error", {"station": station, "connector": str(connector)},
                {"code": e.code.value, "info": e.info}, e.ts)


def charging(station: str, connector: int, c: ChargingState) -> str:
    """measurement `charging`: charging enabled and the current limit in force."""
    return line("charging", {"station": station, "connector": str(connector)},
                {"enabled": c.enabled, "current_limit_a": c.current_limit_a}, c.ts)


def _opt(v: float | None) -> float | None:
    return None if v is None else float(v)


def site(site_id: str, s: SiteState) -> str:
    """measurement `site` (tag `site`): the energy manager's site state, once a period.

    `house_power_w` is what the rest of the house uses (grid + PV + battery - the cars), as the
    page draws it; absent while the grid meter is silent. The price is the one in force at `ts`.
    """
    fields: dict[str, FieldValue | None] = {
        "grid_power_w": _opt(s.grid_power_w),
        "pv_power_w": _opt(s.pv_power_w), "battery_power_w": _opt(s.battery_power_w),
        "battery_soc_pct": _opt(s.battery_soc_pct), "charge_power_w": float(s.charge_power_w),
        "surplus_w": float(s.surplus_w),
        "house_power_w": _opt(s.house_power_w()),
        "fuse_limit_a": float(s.fuse_limit_a), "max_import_w": _opt(s.max_import_w),
        "price_per_kwh": _opt(s.price_per_kwh), "co2_g_per_kwh": _opt(s.co2_g_per_kwh),
        "fail_safe": s.fail_safe, "fail_safe_int": int(s.fail_safe),
        "price_status": s.price_status,
    }
    for i, amps in enumerate(s.grid_current_a or [], start=1):
        fields[f"grid_current_l{i}_a"] = float(amps)
    return line("site", {"site": site_id}, fields, s.ts)


def session_cost(station: str, connector: int, c: SessionCost) -> str | None:
    """measurement `session_cost`: a finished session's cost at the live tariff (the energy
    manager's), at its stop time like `session`; None for a running session's count."""
    if not c.final or c.stopped_at is None:
        return None
    return line("session_cost", {"station": station, "connector": str(connector)}, {
        "cost": float(c.cost), "energy_wh": float(c.energy_wh),
        "unpriced_wh": float(c.unpriced_wh), "transaction_id": c.transaction_id,
        "transaction_ref": c.transaction_ref, "started_at_ns": ns(c.started_at),
    }, c.stopped_at)
