"""Off-peak charging in the running gateway, against the real dev central system and Mosquitto.

The station gets an injected clock (real time plus an offset the test moves), so a window can
open a second into the test while time still flows normally for the timer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.ocpp_gateway.conftest import Rig
from voltbus_common.bus import Bus
from voltbus_ocpp.station import Station

WINDOW = "daily 12:00-13:00"


def today_at(hour: int) -> datetime:
    """Today (UTC) at hour:00, aware."""
    return datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)


@dataclass
class OffsetClock:
    """Real time shifted by an offset the test can move."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, when: datetime) -> None:
        """From now on the clock reads `when` (and runs on in real time)."""
        self.offset += when - self()


async def start(rig: Rig, clock: OffsetClock, **extra: Any) -> Station:
    """The gateway under test with the injected clock."""
    settings = rig.settings(offpeak_windows=WINDOW, **extra)
    rig.csms.behaviour.clock = clock  # its timestamp checks read the station's shifted time
    rig.gateway = Station(settings, rig.id, Bus(settings, station=rig.id, service="gateway"),
                          clock=clock)
    rig._gw_task = asyncio.create_task(rig.gateway.run())
    await rig.gateway.bus.wait_connected(5)
    await rig.csms.wait_for(rig.id, "StatusNotification")
    return rig.gateway


async def waiting_session(rig: Rig, clock: OffsetClock, closed_at: datetime,
                          tag: str = "TAG") -> None:
    """Off-peak on, the window closed: a started session waits at 0 A in SuspendedEVSE."""
    clock.set(closed_at)
    rig.pilot("C")
    rig.meter(500.0)
    await start(rig, clock, offpeak_enabled=True)
    rig.command(1, command="start", id_tag=tag, request_id="s")
    assert (await rig.wait("result", lambda p: p.request_id == "s")).status.value == "Accepted"
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.status("SuspendedEVSE")
    assert (await rig.wait("limit_set")).amps == 0.0
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["status"] == "SuspendedEVSE")


async def test_session_waits_for_the_window_and_starts_by_itself(rig: Rig) -> None:
    clock = OffsetClock()
    opens = today_at(12)
    await waiting_session(rig, clock, opens - timedelta(seconds=30))
    held = await rig.wait("charging", lambda p: p.offpeak_waiting)
    assert (held.current_limit_a, held.offpeak_until, held.offpeak_override) == (0.0, opens, False)
    assert rig.seen["status"][-1].payload.status.value == "SuspendedEVSE"
    # two seconds before the window: nothing yet; then the window opens by itself
    clock.set(opens - timedelta(seconds=2))
    await asyncio.sleep(0.3)
    # 0 A only (also at start-up: the gateway keeps the hardware at the limit in force)
    assert {p.payload.amps for p in rig.seen["limit_set"]} == {0.0}
    await rig.status("Charging", timeout=5)
    assert (await rig.wait("limit_set", lambda p: p.amps > 0)).amps == 16.0
    free = await rig.wait("charging", lambda p: not p.offpeak_waiting and p.current_limit_a)
    assert (free.current_limit_a, free.offpeak_until) == (16.0, None)
    assert clock() >= opens
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Charging")
    # and closes again at 13:00: the running session is paused (SuspendedEVSE, 0 A)
    clock.set(today_at(13) - timedelta(seconds=0.5))
    await rig.status("SuspendedEVSE", count=2)
    assert (await rig.wait("limit_set", count=2, where=lambda p: p.amps == 0.0)).amps == 0.0
    again = await rig.wait("charging", lambda p: p.offpeak_waiting, count=2)
    assert again.offpeak_until == opens + timedelta(days=1)


async def test_override_lets_one_waiting_session_charge_now(rig: Rig) -> None:
    clock = OffsetClock()
    await waiting_session(rig, clock, today_at(12) - timedelta(hours=2))
    rig.command(1, command="override_offpeak", request_id="o")
    answer = await rig.wait("result", lambda p: p.request_id == "o")
    assert (answer.status.value, answer.command.value) == ("Accepted", "override_offpeak")
    assert (await rig.wait("limit_set", lambda p: p.amps > 0)).amps == 16.0
    await rig.status("Charging")
    state = await rig.wait("charging", lambda p: p.offpeak_override)
    assert (state.offpeak_waiting, state.current_limit_a) == (False, 16.0)
    # a second override of the same session says so
    rig.command(1, command="override_offpeak", request_id="o2")
    twice = await rig.wait("result", lambda p: p.request_id == "o2")
    assert (twice.status.value, twice.reason) == ("Rejected", "connector 1 already has an override")
    # the override ends with the transaction: the next session waits again
    rig.command(1, command="stop", request_id="x")
    await rig.csms.wait_for(rig.id, "StopTransaction")
    rig.command(1, command="start", id_tag="TAG", request_id="s2")
    assert (await rig.wait("result", lambda p: p.request_id == "s2")).status.value == "Accepted"
    await rig.csms.wait_for(rig.id, "StartTransaction", count=2)
    await rig.status("SuspendedEVSE", count=2)
    # Finishing -> Preparing -> SuspendedEVSE (4.9); the offset clock breaks other rules
    assert rig.csms.violations(rig.id, "status-transition") == []
    held = await rig.wait("charging", lambda p: p.offpeak_waiting, count=2)
    assert (held.offpeak_override, held.current_limit_a) == (False, 0.0)
    # stopped while waiting: the retained charging state no longer says it waits
    before = {id(m.payload) for m in rig.seen["charging"]}
    rig.command(1, command="stop", request_id="x2")
    await rig.csms.wait_for(rig.id, "StopTransaction", count=2)
    after = await rig.wait("charging", lambda p: id(p) not in before)
    assert (after.offpeak_waiting, after.offpeak_override) == (False, False)
    assert after.offpeak_until == today_at(12)


async def test_override_with_nothing_waiting_is_rejected(rig: Rig) -> None:
    clock = OffsetClock()
    clock.set(today_at(12) - timedelta(hours=2))
    await start(rig, clock, offpeak_enabled=True)
    idle = await rig.wait("charging")
    assert (idle.offpeak_waiting, idle.offpeak_until) == (False, today_at(12))
    rig.command(1, command="override_offpeak", request_id="o")
    answer = await rig.wait("result", lambda p: p.request_id == "o")
    assert (answer.status.value, answer.reason) == (
        "Rejected", "no transaction on connector 1 is waiting for off-peak")
    # inside the window a running session is not waiting either
    clock.set(today_at(12) + timedelta(minutes=5))
    await rig.wait("charging", lambda p: p.offpeak_until is None)
    rig.pilot("C")
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    await rig.status("Charging")
    rig.command(1, command="override_offpeak", request_id="o2")
    open_now = await rig.wait("result", lambda p: p.request_id == "o2")
    assert open_now.status.value == "Rejected"
    assert "window is open" in (open_now.reason or "")
    rig.command(2, command="override_offpeak", request_id="o3")
    unknown = await rig.wait("result", lambda p: p.request_id == "o3")
    assert (unknown.status.value, unknown.reason) == ("Rejected", "unknown connector 2")


async def test_disabled_policy_changes_nothing(rig: Rig) -> None:
    clock = OffsetClock()
    clock.set(today_at(12) - timedelta(hours=2))  # outside the window
    rig.pilot("C")
    await start(rig, clock, offpeak_enabled=False)
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.status("Charging")
    # 16 A at start-up (the hardware kept at the limit in force) and at the start: never held
    assert {p.payload.amps for p in rig.seen["limit_set"]} == {16.0}
    assert all(not m.payload.offpeak_waiting and m.payload.offpeak_until is None
               for m in rig.seen["charging"])
    rig.command(1, command="override_offpeak", request_id="o")
    answer = await rig.wait("result", lambda p: p.request_id == "o")
    assert (answer.status.value, answer.reason) == ("Rejected",
                                                    "off-peak charging is not enabled")
