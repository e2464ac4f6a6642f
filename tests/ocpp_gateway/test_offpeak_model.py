"""The off-peak policy inside the station model (pure, fake clock): held sessions, the window
opening and closing, the override per transaction, other limits still in force."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.ocpp_gateway.test_model import build
from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus, PilotState
from voltbus_ocpp.model.events import (
    AnswerCommand,
    AuthorizeAnswered,
    Command,
    Effect,
    PilotChanged,
    PublishCharging,
    SetCurrentLimit,
)
from voltbus_ocpp.model.offpeak import OffPeakChanged
from voltbus_ocpp.model.results import AuthStatus
from voltbus_ocpp.model.station import StationModel

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
