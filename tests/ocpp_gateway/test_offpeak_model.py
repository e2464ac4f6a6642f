"""The off-peak policy inside the station model (pure, fake clock): held sessions, the window
opening and closing, the override per transaction, other limits still in force."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.ocpp_gateway.test_model import FakeClock, build
from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus, PilotState
from voltbus_ocpp.model.authorisation import Authoriser
from voltbus_ocpp.model.events import (
    AnswerCommand,
    AuthorizeAnswered,
    Command,
    Effect,
    LinkChanged,
    PilotChanged,
    PublishCharging,
    SendTransactionUpdate,
    SetCurrentLimit,
)
from voltbus_ocpp.model.offpeak import OffPeakChanged
from voltbus_ocpp.model.results import AuthStatus, TxUpdate
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.protocol.v16.config_store import ConfigStore
from voltbus_ocpp.protocol.v201.variables import Variables

OPENS = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
CLOSED = OffPeakChanged(True, False, OPENS)
OPEN = OffPeakChanged(True, True, None)


def limits(effects: list[Effect]) -> list[float]:
    return [e.amps for e in effects if isinstance(e, SetCurrentLimit)]


def news(effects: list[Effect]) -> list[PublishCharging]:
    return [e for e in effects if isinstance(e, PublishCharging)]


def charging_session(model: StationModel, request_id: str = "s") -> list[Effect]:
    """Plugged in and drawing; a start command authorised by the central system."""
    model.handle(PilotChanged(1, PilotState.C))
    asked = model.handle(Command(1, CommandName.START, request_id, id_tag="TAG"))
    return asked + model.handle(AuthorizeAnswered("TAG", AuthStatus.ACCEPTED))


def test_closed_window_holds_a_new_session_at_zero_then_opens() -> None:
    model, _ = build()
    idle = news(model.handle(CLOSED))
    assert [(n.limit_a, n.offpeak_waiting, n.offpeak_until) for n in idle] == [(0.0, False, OPENS)]
    effects = charging_session(model)
    assert limits(effects) == [0.0]
    assert model.connectors[1].status is ConnectorStatus.SUSPENDED_EVSE
    [held] = news(effects)
    assert (held.offpeak_waiting, held.offpeak_until, held.offpeak_override) == (True, OPENS, False)
    opened = model.handle(OPEN)
    assert limits(opened) == [16.0]
    assert model.connectors[1].status is ConnectorStatus.CHARGING
    [free] = news(opened)
    assert (free.offpeak_waiting, free.offpeak_until) == (False, None)


def test_override_is_for_one_transaction_and_survives_window_changes() -> None:
    model, _ = build()
    model.handle(CLOSED)
    charging_session(model)
    effects = model.handle(Command(1, CommandName.OVERRIDE_OFFPEAK, "o"))
    assert limits(effects) == [16.0]
    assert [e for e in effects if isinstance(e, AnswerCommand)] == [AnswerCommand(
        1, "o", CommandName.OVERRIDE_OFFPEAK, CommandStatus.ACCEPTED, None)]
    assert model.connectors[1].status is ConnectorStatus.CHARGING
    # the window opening and closing again does not touch the EVSE of the overridden session
    assert limits(model.handle(OPEN)) == []
    again = model.handle(CLOSED)
    assert limits(again) == []
    assert [n.offpeak_override for n in news(again)] == [True]
    # the next transaction waits again
    model.handle(Command(1, CommandName.STOP, "x"))
    assert limits(charging_session(model, "s2")) == [0.0]
    assert model.connectors[1].status is ConnectorStatus.SUSPENDED_EVSE


def test_other_limits_still_apply_and_disabled_charging_wins() -> None:
    model, _ = build()
    model.handle(CLOSED)
    charging_session(model)
    model.handle(Command(1, CommandName.SET_CURRENT_LIMIT, "l", amps=10))
    assert limits(model.handle(OPEN)) == [10.0]
    model.handle(Command(1, CommandName.DISABLE_CHARGING, "d"))
    assert model.connectors[1].effective_limit_a == 0.0
    assert limits(model.handle(CLOSED)) == []  # already at 0


def test_policy_off_never_holds() -> None:
    model, _ = build()
    model.handle(OffPeakChanged(False, True, None))
    effects = charging_session(model)
    assert limits(effects) == [16.0]
    assert [(n.offpeak_waiting, n.offpeak_until) for n in news(effects)] == [(False, None)]
    answer = model.handle(Command(1, CommandName.OVERRIDE_OFFPEAK, "o"))
    assert answer == [AnswerCommand(1, "o", CommandName.OVERRIDE_OFFPEAK,
                                    CommandStatus.REJECTED, "off-peak charging is not enabled")]


def test_override_on_connector_0_or_unknown_is_rejected() -> None:
    model, _ = build()
    model.handle(CLOSED)
    [zero] = model.handle(Command(0, CommandName.OVERRIDE_OFFPEAK, "o"))
    assert isinstance(zero, AnswerCommand)
    assert zero.status is CommandStatus.REJECTED
    [unknown] = model.handle(Command(3, CommandName.OVERRIDE_OFFPEAK, "u"))
    assert isinstance(unknown, AnswerCommand)
    assert unknown.reason == "unknown connector 3"


def rate_updates(effects: list[Effect]) -> list[SendTransactionUpdate]:
    return [e for e in effects if isinstance(e, SendTransactionUpdate)
            and e.reason is TxUpdate.CHARGING_RATE_CHANGED]


@pytest.mark.parametrize("version", ["2.0.1", "1.6"])
def test_the_window_moving_a_running_transactions_rate_is_reported_in_201_only(
        version: str) -> None:
    """The off-peak window is an external limit (K11/K13): closing it holds a running session
    at 0 A, opening it frees it; each moves the rate, so each is a ChargingRateChanged update
    of that transaction under 2.0.1 (LimitChangeSignificance 10 %); 1.6 has no such report.
    Closed with no transaction running, or an override's session (its rate stays), none."""
    clock = FakeClock()
    cfg = Variables(None) if version == "2.0.1" else ConfigStore(None)
    model = StationModel(1, cfg, Authoriser(cfg, local_list={}, cache={}),
                         max_current_a=16.0, clock=clock)
    model.startup()
    model.handle(LinkChanged(True))
    assert rate_updates(model.handle(CLOSED)) == []  # no transaction
    model.handle(OPEN)
    started = charging_session(model)
    assert rate_updates(started) == []
    tx = model.connectors[1].facts.tx
    assert tx is not None
    closed, opened = model.handle(CLOSED), model.handle(OPEN)
    expected = 1 if version == "2.0.1" else 0
    for effects in (closed, opened):
        assert [(u.connector, u.local_id) for u in rate_updates(effects)] == [
            (1, tx.local_id)] * expected
    model.handle(CLOSED)
    overridden = model.handle(Command(1, CommandName.OVERRIDE_OFFPEAK, "o"))
    assert rate_updates(overridden) == []  # the driver's own doing, not an external limit
    assert rate_updates(model.handle(OPEN)) == []  # overridden: the rate stays at 16 A
