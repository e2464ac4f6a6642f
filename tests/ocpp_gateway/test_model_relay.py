"""Relay reconciliation in the model, as tables: wanted vs reported, grace, backoff, safety.

No I/O, fake clock (the helpers of test_model)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.ocpp_gateway.test_model import FakeClock, build, kinds
from voltbus_common.enums import ChargePointErrorCode, PilotState
from voltbus_ocpp.model.events import (
    AuthorizeAnswered,
    CardPresented,
    Effect,
    HardwareFault,
    HardwareStatus,
    PilotChanged,
    RelayChanged,
    RelayMismatch,
    SetCurrentLimit,
    SetLed,
    SetRelay,
    Tick,
)
from voltbus_ocpp.model.relay import MAX_RESENDS, RelayKeeper, Verdict, verdict
from voltbus_ocpp.model.results import AuthStatus
from voltbus_ocpp.model.station import StationModel

GRACE = 3.0


@pytest.mark.parametrize(("want", "reported", "may_close", "expected"), [
    (True, None, True, Verdict.AGREE),  # nothing reported yet: nothing to compare
    (False, None, False, Verdict.AGREE),
    (True, True, True, Verdict.AGREE),
    (False, False, False, Verdict.AGREE),
    (True, True, False, Verdict.AGREE),  # closed and wanted so: the hardware decides opening
    (True, False, True, Verdict.RESEND),  # a lost close command
    (True, False, False, Verdict.HOLD),  # fault or no EV: never fight the hardware
    (False, True, True, Verdict.RESEND),  # closed without a transaction: opening is safe
    (False, True, False, Verdict.RESEND),
])
def test_verdict_table(want: bool, reported: bool | None, may_close: bool,
                       expected: Verdict) -> None:
    assert verdict(want_closed=want, reported=reported, may_close=may_close) is expected


def test_keeper_waits_the_grace_then_backs_off_and_gives_up() -> None:
    clock = FakeClock()
    keeper = RelayKeeper(grace_s=GRACE)
    keeper.commanded(clock.now)
    sent: list[datetime] = []
    for _ in range(400):  # 100 s in 0.25 s ticks
        if keeper.due(clock.now, Verdict.RESEND):
            sent.append(clock.now)
        clock.advance(0.25)
    offsets = [(t - sent[0]).total_seconds() for t in sent]
    assert len(sent) == MAX_RESENDS
    assert (sent[0] - FakeClock().now).total_seconds() == GRACE
    assert offsets == [0.0, 6.0, 18.0, 42.0]  # 3, then 6, 12, 24 s after the previous one


def test_keeper_agreement_resets_and_hold_never_sends() -> None:
    clock = FakeClock()
    keeper = RelayKeeper(grace_s=GRACE)
    keeper.commanded(clock.now)
    keeper.observe(clock.now, Verdict.RESEND)
    clock.advance(GRACE)
    assert keeper.due(clock.now, Verdict.RESEND)
    assert not keeper.due(clock.now, Verdict.AGREE)
    assert keeper.resends == 0
    assert keeper.since is None
    clock.advance(1000)
    assert not any(keeper.due(clock.now, Verdict.HOLD) for _ in range(3))
    assert keeper.resends == 0


def started(**config: str) -> tuple[StationModel, FakeClock]:
    """A transaction started on connector 1 with the EV plugged (pilot B); no relay report yet."""
    model, clock = build(**config)
    model.handle(PilotChanged(1, PilotState.B))
    model.handle(CardPresented("TAG"))
    effects = model.handle(AuthorizeAnswered("TAG", AuthStatus.ACCEPTED))
    assert SetRelay(1, True) in effects
    return model, clock


def ticks(model: StationModel, clock: FakeClock, seconds: float) -> list[Effect]:
    """Tick every 0.25 s for that long; all effects."""
    effects: list[Effect] = []
    for _ in range(int(seconds / 0.25)):
        clock.advance(0.25)
        effects += model.handle(Tick())
    return effects


def relay_sets(effects: list[Effect]) -> list[SetRelay]:
    return [e for e in effects if isinstance(e, SetRelay)]


def test_lost_close_in_a_transaction_is_sent_again_after_the_grace() -> None:
    model, clock = started()
    model.handle(RelayChanged(1, False))  # retained: the close never arrived
    assert relay_sets(ticks(model, clock, GRACE - 0.5)) == []
    effects = ticks(model, clock, 0.5)
    assert relay_sets(effects) == [SetRelay(1, True)]
    mismatch = next(e for e in effects if isinstance(e, RelayMismatch))
    assert (mismatch.wanted_closed, mismatch.attempt, mismatch.last) == (True, 1, False)
    model.handle(RelayChanged(1, True))
    assert relay_sets(ticks(model, clock, 60)) == []


def test_a_confirmed_close_needs_nothing() -> None:
    model, clock = started()
    model.handle(RelayChanged(1, True))
    assert relay_sets(ticks(model, clock, 30)) == []


def test_relay_closed_without_a_transaction_gets_open() -> None:
    model, clock = build()
    model.handle(RelayChanged(1, True))
    effects = ticks(model, clock, GRACE)
    assert relay_sets(effects) == [SetRelay(1, False)]


def test_resends_are_bounded() -> None:
    model, clock = started()
    model.handle(RelayChanged(1, False))
    effects = ticks(model, clock, 600)
    assert len(relay_sets(effects)) == MAX_RESENDS
    last = [e for e in effects if isinstance(e, RelayMismatch)][-1]
    assert last.last
    assert last.attempt == MAX_RESENDS


@pytest.mark.parametrize("pilot", [PilotState.A, PilotState.E, PilotState.F])
def test_no_reclose_while_the_pilot_says_no(pilot: PilotState) -> None:
    model, clock = started(StopTransactionOnEVSideDisconnect="false")
    model.handle(RelayChanged(1, True))
    model.handle(PilotChanged(1, pilot))  # the hardware opens the relay on its own
    model.handle(RelayChanged(1, False))
    assert relay_sets(ticks(model, clock, 60)) == []
    # A: the transaction goes on (the EV may come back); E/F: it stopped (EmergencyStop)
    assert (model.connectors[1].facts.tx is not None) is (pilot is PilotState.A)


def test_replugged_ev_in_a_kept_transaction_gets_the_relay_back() -> None:
    model, clock = started(StopTransactionOnEVSideDisconnect="false")
    model.handle(RelayChanged(1, True))
    model.handle(PilotChanged(1, PilotState.A))
    model.handle(RelayChanged(1, False))
    assert relay_sets(ticks(model, clock, 30)) == []
    model.handle(PilotChanged(1, PilotState.B))
    assert relay_sets(ticks(model, clock, 0.25)) == [SetRelay(1, True)]


def test_no_reclose_after_a_hardware_fault() -> None:
    model, clock = started()
    model.handle(RelayChanged(1, True))
    model.handle(RelayChanged(1, False))  # overcurrent: the hardware opens, then reports why
    effects = model.handle(HardwareFault(1, ChargePointErrorCode.OVER_CURRENT_FAILURE, "20 A"))
    assert SetRelay(1, False) in effects  # the transaction ended: open is wanted now
    assert model.connectors[1].facts.tx is None
    assert relay_sets(ticks(model, clock, 60)) == []


def test_fault_with_the_relay_still_reported_closed_only_opens() -> None:
    model, clock = started()
    model.handle(RelayChanged(1, True))
    model.handle(HardwareFault(1, ChargePointErrorCode.GROUND_FAILURE, None))
    effects = ticks(model, clock, 60)
    assert relay_sets(effects)
    assert all(not e.closed for e in relay_sets(effects))


def test_hardware_online_resyncs_limit_relay_and_led() -> None:
    model, _clock = started()
    effects = model.handle(HardwareStatus(True))
    assert kinds(effects) == ["SetCurrentLimit", "SetRelay", "SetLed"]
    assert effects[0] == SetCurrentLimit(1, 16.0)
    assert effects[1] == SetRelay(1, True)
    assert isinstance(effects[2], SetLed)


def test_resync_without_transaction_opens_and_shows_the_led() -> None:
    """Issue 13: the limit goes too, also without a transaction (a restarted hardware service
    starts at its rating: a limit set or restored meanwhile must reach it at once)."""
    model, _ = build(connectors=2)
    model.connectors[2].facts.command_limit_a = 10.0
    effects = model.handle(HardwareStatus(True))
    assert relay_sets(effects) == [SetRelay(1, False), SetRelay(2, False)]
    assert [e.connector for e in effects if isinstance(e, SetLed)] == [1, 2]
    assert [e for e in effects if isinstance(e, SetCurrentLimit)] == [
        SetCurrentLimit(1, 16.0), SetCurrentLimit(2, 10.0)]


def test_resync_does_not_close_on_a_faulted_connector() -> None:
    model, _ = started(StopTransactionOnEVSideDisconnect="false")
    model.handle(PilotChanged(1, PilotState.A))
    effects = model.handle(HardwareStatus(True))
    assert relay_sets(effects) == []
    assert kinds(effects) == ["SetCurrentLimit", "SetLed"]


def test_no_resends_while_the_hardware_is_offline() -> None:
    model, clock = started()
    model.handle(RelayChanged(1, False))
    model.handle(HardwareStatus(False))
    assert relay_sets(ticks(model, clock, 60)) == []
    effects = model.handle(HardwareStatus(True))
    assert SetRelay(1, True) in effects


def test_a_limit_outside_a_transaction_reaches_the_hardware_at_once() -> None:
    """Issue 13: a restored command limit goes out at start-up; set, profile or energy limits
    while no session runs go out when the effective limit moves (once, not on every event)."""
    from voltbus_common.enums import CommandName
    from voltbus_ocpp.model.energy_limit import EnergyLimit
    from voltbus_ocpp.model.events import Command, ProfileLimit

    model, _ = build(connectors=2)
    model.connectors[1].facts.command_limit_a = 10.0  # as CommandLimits.restore leaves it
    limits = [e for e in model.startup() if isinstance(e, SetCurrentLimit)]
    assert limits == [SetCurrentLimit(1, 10.0), SetCurrentLimit(2, 16.0)]

    effects = model.handle(Command(2, CommandName.SET_CURRENT_LIMIT, "r", amps=8.0))
    assert [e for e in effects if isinstance(e, SetCurrentLimit)] == [SetCurrentLimit(2, 8.0)]
    effects = model.handle(ProfileLimit(1, 7.0))
    assert [e for e in effects if isinstance(e, SetCurrentLimit)] == [SetCurrentLimit(1, 7.0)]
    assert not any(isinstance(e, SetCurrentLimit) for e in model.handle(ProfileLimit(1, 7.0)))
    effects = model.handle(EnergyLimit(1, 6.0))
    assert [e for e in effects if isinstance(e, SetCurrentLimit)] == [SetCurrentLimit(1, 6.0)]
    effects = model.handle(Command(1, CommandName.DISABLE_CHARGING, "d"))
    assert [e for e in effects if isinstance(e, SetCurrentLimit)] == [SetCurrentLimit(1, 0.0)]
