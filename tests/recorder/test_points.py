"""Line protocol from bus payloads: escaping and exact timestamps, checked by real InfluxDB 1.6."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fixtures.influxdb import InfluxServer
from tests.recorder.helpers import T0, ns, reading
from voltbus_common.enums import ChargePointErrorCode, StopReason
from voltbus_common.models import HardwareError, SessionSummary
from voltbus_recorder import points


def test_awkward_ids_and_texts_survive_the_round_trip(influxdb: InfluxServer) -> None:
    db = influxdb.create_database()
    tag = 'A,B=C"D\\E'  # every character line protocol treats specially, all valid in an idTag
    session = SessionSummary(transaction_id=None, id_tag=tag, started_at=T0,
                             stopped_at=T0 + timedelta(seconds=90.5), meter_start_wh=0,
                             meter_stop_wh=12, energy_wh=12, stop_reason=StopReason.OTHER)
    error = HardwareError(code=ChargePointErrorCode.OTHER_ERROR, info='said "no", then \\ left',
                          ts=T0)
    lines = [points.session("CP 1,x", 1, session), points.hw_error("CP 1,x", 1, error),
             points.meter("CP 1,x", 1, reading(0))]
    assert influxdb.write(db, "\n".join(lines)).status_code == 204
    (s,) = influxdb.rows("SELECT * FROM session", db=db)
    assert (s["id_tag"], s["station"], s["duration_s"], s["time"]) == (
        tag, "CP 1,x", 90.5, ns(session.stopped_at))
    assert "transaction_id" not in s or s["transaction_id"] is None
    (e,) = influxdb.rows("SELECT * FROM hw_error", db=db)
    assert e["info"] == 'said "no", then \\ left'
    (m,) = influxdb.rows("SELECT * FROM meter", db=db)
    assert m["time"] == ns(T0)


def test_timestamps_are_exact_to_the_microsecond_and_fields_keep_their_type() -> None:
    ts = datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=UTC)
    assert points.ns(ts) == 1795305599999999000
    line = points.meter("CP1", 2, reading(0).model_copy(update={"energy_wh": 5.0, "ts": ts}))
    assert line.startswith("meter,connector=2,station=CP1 energy_wh=5.0,")
    assert "phases=3i" in line
    assert line.endswith(" 1795305599999999000")


def test_session_month_follows_the_configured_zone() -> None:
    from zoneinfo import ZoneInfo

    late = SessionSummary(transaction_id=1, id_tag="X", started_at=T0,
                          stopped_at=datetime(2026, 1, 31, 23, 30, tzinfo=UTC), meter_start_wh=0,
                          meter_stop_wh=1, energy_wh=1, stop_reason=StopReason.LOCAL)
    assert ",month=2026-01," in points.session("CP1", 1, late)
    assert ",month=2026-02," in points.session("CP1", 1, late, ZoneInfo("Europe/Berlin"))
