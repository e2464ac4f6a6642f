"""The connector/station model as tables: (facts, event) -> (status, effects).

No I/O, fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from voltbus_common.enums import (
    ChargePointErrorCode,
    CommandName,
    CommandStatus,
    ConnectorStatus,
    PilotState,
    StopReason,
)
from voltbus_ocpp.model.authorisation import AuthEntry, Authoriser
from voltbus_ocpp.model.connector import (
    TX_ENERGY_REFRESH_S,
    Facts,
    Reservation,
    Transaction,
    derive_status,
)
from voltbus_ocpp.model.events import (
    AnswerCommand,
    AuthorizeAnswered,
    CardPresented,
    ChangeAvailability,
    Command,
    Effect,
    Event,
    HardwareFault,
    LinkChanged,
    MeterSnapshot,
    MeterUpdated,
    PilotChanged,
    PublishSession,
    PublishTransaction,
    RemoteStart,
    RemoteStop,
    Reply,
    Reset,
    SendAuthorize,
    SendMeterValues,
    SendStartTransaction,
    SendStatus,
    SendStopTransaction,
    SetCurrentLimit,
    SetRelay,
    StartAnswered,
    Tick,
)
from voltbus_ocpp.model.results import AuthStatus, Outcome, ReadingContext
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.protocol.v16.config_store import ConfigStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """Time that moves only when the test says so."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def reading(energy_wh: float) -> MeterSnapshot:
    return MeterSnapshot(energy_wh, 3680.0, (16.0, 16.0, 16.0), (230.0, 230.0, 230.0), T0)


def build(connectors: int = 1, **config: str) -> tuple[StationModel, FakeClock]:
    clock = FakeClock()
    cfg = ConfigStore(None, overrides=config)
    model = StationModel(connectors, cfg, Authoriser(cfg, local_list={}, cache={}),
                         max_current_a=16.0, clock=clock)
    model.startup()
    model.handle(LinkChanged(True))
    return model, clock


def kinds(effects: list[Effect]) -> list[str]:
    return [type(e).__name__ for e in effects]


def status(model: StationModel, connector: int = 1) -> ConnectorStatus | None:
    return model.connectors[connector].status


# --- derive_status: the priority table ---------------------------------------------------------

TX = Transaction(1, "TAG", T0, 0.0, 0.0)


RESERVED = Reservation(1, "OWNER", None, datetime(2030, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("facts", "limit", "expected"), [
    (Facts(), 16, ConnectorStatus.AVAILABLE),
    (Facts(pilot=PilotState.B), 16, ConnectorStatus.PREPARING),
    (Facts(pilot=PilotState.B, tx=TX), 16, ConnectorStatus.SUSPENDED_EV),
    (Facts(pilot=PilotState.C, tx=TX), 16, ConnectorStatus.CHARGING),
    (Facts(pilot=PilotState.C, tx=TX), 0, ConnectorStatus.SUSPENDED_EVSE),
    (Facts(pilot=PilotState.B, finishing=True), 16, ConnectorStatus.FINISHING),
    (Facts(operative=False), 16, ConnectorStatus.UNAVAILABLE),
    (Facts(operative=False, pilot=PilotState.C, tx=TX), 16, ConnectorStatus.CHARGING),
    (Facts(fault=ChargePointErrorCode.GROUND_FAILURE, tx=TX), 16, ConnectorStatus.FAULTED),
    (Facts(pilot=PilotState.F), 16, ConnectorStatus.FAULTED),
    # an EV plugged into a reserved connector leaves it Reserved (1.6 4.9)
    (Facts(pilot=PilotState.B, reservation=RESERVED), 16, ConnectorStatus.RESERVED),
])
def test_status_priority(facts: Facts, limit: float, expected: ConnectorStatus) -> None:
    assert derive_status(facts, limit) is expected


# --- station transitions -----------------------------------------------------------------------

def test_tap_plug_authorize_start_meter_and_stop_by_second_tap() -> None:
    model, clock = build(MeterValueSampleInterval="10")
    model.handle(MeterUpdated(1, reading(500.0)))
    assert kinds(model.handle(PilotChanged(1, PilotState.B))) == ["SendStatus", "SetLed"]
    assert status(model) is ConnectorStatus.PREPARING
    assert model.handle(CardPresented("TAG")) == [SendAuthorize("TAG")]
    effects = model.handle(AuthorizeAnswered("TAG", AuthStatus.ACCEPTED))
    assert kinds(effects) == ["SendStartTransaction", "SetCurrentLimit", "SetRelay",
                              "PublishTransaction", "PublishCharging", "SendStatus", "SetLed"]
    start = effects[0]
    assert isinstance(start, SendStartTransaction)
    assert (start.id_tag, start.meter_start_wh, start.ts) == (IdToken("TAG"), 500.0, T0)
    assert SetRelay(1, True) in effects
    assert status(model) is ConnectorStatus.SUSPENDED_EV
    model.handle(PilotChanged(1, PilotState.C))
    assert status(model) is ConnectorStatus.CHARGING
    model.handle(StartAnswered(start.local_id, "77", AuthStatus.ACCEPTED))
    model.handle(MeterUpdated(1, reading(600.0)))
    clock.advance(9)
    assert model.handle(Tick()) == []
    clock.advance(1)
    ticked = model.handle(Tick())
    assert kinds(ticked) == ["PublishTransaction", "SendMeterValues"]  # 600 Wh on the bus too
    sample = ticked[1]
    assert isinstance(sample, SendMeterValues)
    assert sample.reading.energy_wh == 600.0
    model.handle(MeterUpdated(1, reading(650.0)))
    effects = model.handle(CardPresented("TAG"))
    stop = next(e for e in effects if isinstance(e, SendStopTransaction))
    assert (stop.meter_stop_wh, stop.reason, stop.id_tag) == (
        650.0, StopReason.LOCAL, IdToken("TAG"))
    assert SetRelay(1, False) in effects
    session = next(e for e in effects if isinstance(e, PublishSession))
    assert session.transaction.transaction_id == "77"
    assert status(model) is ConnectorStatus.FINISHING
    model.handle(PilotChanged(1, PilotState.A))
    assert status(model) is ConnectorStatus.AVAILABLE


def test_unplug_stops_with_ev_disconnected() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.B))
    model.handle(CardPresented("TAG"))
    model.handle(AuthorizeAnswered("TAG", AuthStatus.ACCEPTED))
    effects = model.handle(PilotChanged(1, PilotState.A))
    stop = next(e for e in effects if isinstance(e, SendStopTransaction))
    assert stop.reason is StopReason.EV_DISCONNECTED
    assert status(model) is ConnectorStatus.AVAILABLE


def test_rejected_tag_does_not_start() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.B))
    model.handle(CardPresented("BAD"))
    assert kinds(model.handle(AuthorizeAnswered("BAD", AuthStatus.INVALID))) == []
    assert model.connectors[1].facts.tx is None
    assert model.authoriser.cache[IdToken("BAD")].status is AuthStatus.INVALID


def test_remote_start_waits_for_plug_then_times_out() -> None:
    model, clock = build(ConnectionTimeOut="30")
    assert Reply(Outcome.ACCEPTED) in model.handle(RemoteStart("TAG", 1))
    assert status(model) is ConnectorStatus.PREPARING
    clock.advance(31)
    model.handle(Tick())
    assert status(model) is ConnectorStatus.AVAILABLE
    model.handle(RemoteStart("TAG", 1))
    clock.advance(5)
    effects = model.handle(PilotChanged(1, PilotState.B))
    assert "SendStartTransaction" in kinds(effects)


def test_remote_start_with_authorize_remote_tx_requests_asks_first() -> None:
    model, _ = build(AuthorizeRemoteTxRequests="true")
    model.handle(PilotChanged(1, PilotState.B))
    effects = model.handle(RemoteStart("TAG"))
    assert effects == [SendAuthorize("TAG"), Reply(Outcome.ACCEPTED)]


@pytest.mark.parametrize(("event", "answer"), [
    (RemoteStart("TAG", 2), Outcome.REJECTED),       # no connector 2
    (RemoteStop("999"), Outcome.REJECTED),           # no such transaction
    (ChangeAvailability(5, False), Outcome.REJECTED),
    (ChangeAvailability(0, False), Outcome.ACCEPTED),
    (Reset(False), Outcome.ACCEPTED),
])
def test_central_requests_answers(event: Event, answer: Outcome) -> None:
    model, _ = build()
    assert Reply(answer) in model.handle(event)


def test_change_availability_is_scheduled_during_a_transaction() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.C))
    model.handle(RemoteStart("TAG", 1))
    assert model.handle(ChangeAvailability(1, False)) == [Reply(Outcome.SCHEDULED)]
    assert status(model) is ConnectorStatus.CHARGING
    model.handle(Command(1, CommandName.STOP, "r"))
    model.handle(PilotChanged(1, PilotState.A))
    assert status(model) is ConnectorStatus.UNAVAILABLE


def test_remote_stop_uses_the_real_transaction_id() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.B))
    start = model.handle(RemoteStart("TAG", 1))[0]
    assert isinstance(start, SendStartTransaction)
    assert model.handle(RemoteStop("5")) == [Reply(Outcome.REJECTED)]  # not answered yet
    model.handle(StartAnswered(start.local_id, "5", AuthStatus.ACCEPTED))
    effects = model.handle(RemoteStop("5"))
    assert Reply(Outcome.ACCEPTED) in effects
    stop = next(e for e in effects if isinstance(e, SendStopTransaction))
    assert stop.reason is StopReason.REMOTE


def test_invalid_start_answer_stops_transaction() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.B))
    start = model.handle(RemoteStart("TAG", 1))[0]
    assert isinstance(start, SendStartTransaction)
    effects = model.handle(StartAnswered(start.local_id, "9", AuthStatus.BLOCKED))
    stop = next(e for e in effects if isinstance(e, SendStopTransaction))
    assert stop.reason is StopReason.DE_AUTHORIZED


def answers(effects: list[Effect]) -> list[tuple[CommandStatus, str | None]]:
    return [(e.status, e.reason) for e in effects if isinstance(e, AnswerCommand)]


@pytest.mark.parametrize(("command", "expected"), [
    (Command(1, CommandName.STOP, "r"), (CommandStatus.REJECTED,
                                         "no transaction running on connector 1")),
    (Command(3, CommandName.STOP, "r"), (CommandStatus.REJECTED, "unknown connector 3")),
    (Command(0, CommandName.STOP, "r"), (CommandStatus.REJECTED,
                                         "connector 0 is the whole station; stop needs a "
                                         "connector")),
    (Command(1, CommandName.SET_CURRENT_LIMIT, "r", amps=32), (
        CommandStatus.REJECTED, "amps 32 above the station maximum 16 A")),
    (Command(1, CommandName.SET_CURRENT_LIMIT, "r", amps=10), (CommandStatus.ACCEPTED, None)),
    (Command(1, CommandName.UNLOCK, "r"), (CommandStatus.NOT_SUPPORTED,
                                           "this station has no connector lock")),
    (Command(0, CommandName.CHANGE_AVAILABILITY, "r", operative=False), (
        CommandStatus.ACCEPTED, None)),
    (Command(2, CommandName.CHANGE_AVAILABILITY, "r", operative=False), (
        CommandStatus.REJECTED, "unknown connector 2")),
])
def test_commands_are_always_answered(command: Command, expected: tuple) -> None:
    model, _ = build()
    assert answers(model.handle(command)) == [expected]


def test_disable_charging_suspends_and_enable_restores_limit() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.C))
    model.handle(RemoteStart("TAG", 1))
    effects = model.handle(Command(1, CommandName.DISABLE_CHARGING, "r"))
    assert SetCurrentLimit(1, 0.0) in effects
    assert status(model) is ConnectorStatus.SUSPENDED_EVSE
    effects = model.handle(Command(1, CommandName.ENABLE_CHARGING, "r"))
    assert SetCurrentLimit(1, 16.0) in effects
    assert status(model) is ConnectorStatus.CHARGING
    effects = model.handle(Command(1, CommandName.SET_CURRENT_LIMIT, "r", amps=6))
    assert SetCurrentLimit(1, 6.0) in effects


def test_command_start_answers_after_authorize() -> None:
    model, _ = build()
    assert model.handle(Command(1, CommandName.START, "r1", id_tag="TAG")) == [
        SendAuthorize("TAG")]
    effects = model.handle(AuthorizeAnswered("TAG", AuthStatus.ACCEPTED))
    assert answers(effects) == [(CommandStatus.ACCEPTED, None)]
    assert status(model) is ConnectorStatus.PREPARING
    model.handle(Command(1, CommandName.STOP, "r2"))
    model.handle(Command(1, CommandName.START, "r3", id_tag="NOPE"))
    assert answers(model.handle(AuthorizeAnswered("NOPE", AuthStatus.BLOCKED))) == [
        (CommandStatus.REJECTED, "id tag NOPE: Blocked")]


@pytest.mark.parametrize(("config", "known", "accepted"), [
    ({}, None, False),
    ({"AllowOfflineTxForUnknownId": "true"}, None, True),
    ({}, AuthStatus.ACCEPTED, True),
    ({"LocalAuthorizeOffline": "false"}, AuthStatus.ACCEPTED, False),
    ({"AllowOfflineTxForUnknownId": "true"}, AuthStatus.BLOCKED, False),
])
def test_offline_authorisation(config: dict[str, str], known: AuthStatus | None,
                               accepted: bool) -> None:
    model, _ = build(**config)
    if known:
        model.authoriser.cache[IdToken("TAG")] = AuthEntry(known)
    model.handle(LinkChanged(False))
    model.handle(PilotChanged(1, PilotState.B))
    effects = model.handle(CardPresented("TAG"))
    assert ("SendStartTransaction" in kinds(effects)) is accepted
    assert "SendAuthorize" not in kinds(effects)


def test_local_pre_authorize_skips_authorize_for_cached_tag() -> None:
    model, _ = build(LocalPreAuthorize="true")
    model.authoriser.cache[IdToken("TAG")] = AuthEntry(AuthStatus.ACCEPTED, T0 + timedelta(days=1))
    model.handle(PilotChanged(1, PilotState.B))
    assert "SendStartTransaction" in kinds(model.handle(CardPresented("TAG")))


def test_authorize_without_answer_falls_back_to_offline_rules() -> None:
    model, _ = build(AllowOfflineTxForUnknownId="true")
    model.handle(PilotChanged(1, PilotState.B))
    model.handle(CardPresented("TAG"))
    assert "SendStartTransaction" in kinds(model.handle(AuthorizeAnswered("TAG", None)))


def test_hardware_fault_stops_and_reports_faulted() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.C))
    model.handle(RemoteStart("TAG", 1))
    effects = model.handle(HardwareFault(1, ChargePointErrorCode.GROUND_FAILURE, "RCD"))
    assert SetRelay(1, False) in effects
    sent = next(e for e in effects if isinstance(e, SendStatus))
    assert (sent.status, sent.error_code, sent.info) == (
        ConnectorStatus.FAULTED, ChargePointErrorCode.GROUND_FAILURE, "RCD")
    model.handle(HardwareFault(1, ChargePointErrorCode.NO_ERROR))
    assert status(model) is ConnectorStatus.FINISHING


def test_tap_goes_to_the_plugged_connector_of_two() -> None:
    model, _ = build(connectors=2)
    model.handle(PilotChanged(2, PilotState.B))
    model.handle(CardPresented("TAG"))
    effects = model.handle(AuthorizeAnswered("TAG", AuthStatus.ACCEPTED))
    start = next(e for e in effects if isinstance(e, SendStartTransaction))
    assert start.connector == 2


def test_clock_aligned_meter_values() -> None:
    model, clock = build(ClockAlignedDataInterval="900", MeterValueSampleInterval="0")
    model.handle(MeterUpdated(1, reading(10.0)))
    model.handle(PilotChanged(1, PilotState.C))
    model.handle(RemoteStart("TAG", 1))
    clock.advance(899)
    assert model.handle(Tick()) == []
    clock.advance(1)  # 12:15:00
    (aligned,) = model.handle(Tick())
    assert isinstance(aligned, SendMeterValues)
    assert aligned.context is ReadingContext.CLOCK


def test_reservation_accepts_a_tag_with_the_same_parent() -> None:
    model, _ = build()
    model.authoriser.cache[IdToken("CHILD")] = AuthEntry(AuthStatus.ACCEPTED, None, "FLEET")
    model.authoriser.cache[IdToken("STRANGER")] = AuthEntry(AuthStatus.ACCEPTED, None, "OTHER")
    assert model.reserve(1, Reservation(3, "OWNER", "FLEET", T0 + timedelta(hours=1))) == (
        Outcome.ACCEPTED)
    model.handle(PilotChanged(1, PilotState.B))
    assert model.handle(CardPresented("STRANGER")) == []
    assert model.handle(CardPresented("CHILD")) == [SendAuthorize("CHILD")]
    effects = model.handle(AuthorizeAnswered("CHILD", AuthStatus.ACCEPTED, None, "FLEET"))
    # Reserved (the EV plugged in) -> Preparing -> the start (4.9)
    assert isinstance(effects[0], SendStatus)
    assert effects[0].status is ConnectorStatus.PREPARING
    start = next(e for e in effects if isinstance(e, SendStartTransaction))
    assert start.reservation_id == 3


def test_another_tag_of_the_same_group_stops_the_transaction() -> None:
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.C))
    model.handle(CardPresented("DAD"))
    model.handle(AuthorizeAnswered("DAD", AuthStatus.ACCEPTED, None, "FAMILY"))
    assert model.connectors[1].facts.tx is not None
    assert model.handle(CardPresented("MUM")) == [SendAuthorize("MUM")]
    assert model.handle(AuthorizeAnswered("MUM", AuthStatus.ACCEPTED, None, "NEIGHBOURS")) == []
    assert model.connectors[1].facts.tx is not None
    model.handle(CardPresented("KID"))
    effects = model.handle(AuthorizeAnswered("KID", AuthStatus.ACCEPTED, None, "FAMILY"))
    stop = next(e for e in effects if isinstance(e, SendStopTransaction))
    assert (stop.id_tag, stop.reason) == (IdToken("KID"), StopReason.LOCAL)


def test_reader_failure_is_reported_but_does_not_stop_charging() -> None:
    """A failed card reader is a warning: the session goes on, the CSMS hears the error code."""
    model, _ = build()
    model.handle(PilotChanged(1, PilotState.C))
    model.handle(RemoteStart("TAG", 1))
    assert status(model) is ConnectorStatus.CHARGING
    effects = model.handle(HardwareFault(1, ChargePointErrorCode.READER_FAILURE, "reader gone"))
    assert SetRelay(1, False) not in effects
    assert "SendStopTransaction" not in kinds(effects)
    sent = next(e for e in effects if isinstance(e, SendStatus))
    assert (sent.status, sent.error_code) == (ConnectorStatus.CHARGING,
                                              ChargePointErrorCode.READER_FAILURE)
    cleared = model.handle(HardwareFault(1, ChargePointErrorCode.NO_ERROR))
    sent = next(e for e in cleared if isinstance(e, SendStatus))
    assert (sent.status, sent.error_code) == (ConnectorStatus.CHARGING,
                                              ChargePointErrorCode.NO_ERROR)


@pytest.mark.parametrize("code", [ChargePointErrorCode.READER_FAILURE,
                                  ChargePointErrorCode.WEAK_SIGNAL])
def test_warning_errors_leave_the_connector_usable(code: ChargePointErrorCode) -> None:
    assert derive_status(Facts(fault=code), 16) is ConnectorStatus.AVAILABLE
    assert derive_status(Facts(fault=code, pilot=PilotState.C, tx=TX), 16) is (
        ConnectorStatus.CHARGING)


def test_no_new_session_on_a_connector_whose_cut_short_transaction_is_not_stopped_yet() -> None:
    """The station marks connectors with a transaction on disk as recovering until Recovered
    queues its StopTransaction: a tap in that window must not queue a StartTransaction first
    (the central system saw a start on a connector with a transaction open: the SIGKILL suite's
    connector-has-transaction, once in CI)."""
    from voltbus_ocpp.model.events import Recovered

    model, _clock = build()
    model.connectors[1].facts.recovering = True
    model.handle(MeterUpdated(1, reading(900.0)))
    model.handle(PilotChanged(1, PilotState.B))
    assert model.handle(CardPresented("NEW")) == []  # no Authorize, no start
    effects = model.handle(Recovered(1, 7, "OLD", T0, 100.0, 850.0, "41", StopReason.POWER_LOSS))
    stop = next(e for e in effects if isinstance(e, SendStopTransaction))
    assert (stop.local_id, stop.meter_stop_wh) == (7, 900.0)
    assert model.handle(CardPresented("NEW")) == [SendAuthorize("NEW")]  # free again


def test_a_resumed_transaction_goes_on_without_a_relay_command_or_a_new_start() -> None:
    """Resumed (the hardware kept the same plug-in charging through a gateway restart): the
    transaction is back with its ids, tag and meterStart; nothing is sent to the central system,
    the relay is not commanded, neither while recovering (the hardware's `online` resync, the
    relay re-send) nor by the resume; the limit goes to the EVSE; the next sample is periodic."""
    from voltbus_ocpp.model.events import HardwareStatus, RelayChanged, Resumed

    model, clock = build(MeterValueSampleInterval="10")
    model.connectors[1].facts.recovering = True
    model.handle(MeterUpdated(1, reading(950.0)))
    model.handle(PilotChanged(1, PilotState.C, T0))
    model.handle(RelayChanged(1, True))
    before = model.handle(HardwareStatus(True)) + model.handle(Tick())
    clock.advance(10)
    before += model.handle(Tick())
    assert not [e for e in before if isinstance(e, SetRelay)], before
    effects = model.handle(Resumed(1, 7, "OLD", T0, 100.0, 900.0, "41"))
    tx = model.connectors[1].facts.tx
    assert tx is not None
    assert tx.id_tag is not None
    assert (tx.local_id, tx.transaction_id, tx.id_tag.value, tx.meter_start_wh,
            tx.energy_wh) == (7, "41", "OLD", 100.0, 950.0)
    assert not [e for e in effects if isinstance(e, SetRelay | SendStartTransaction
                                                 | SendStopTransaction)], effects
    assert model.connectors[1].status is ConnectorStatus.CHARGING
    assert model.handle(CardPresented("NEW")) != [SendAuthorize("NEW")]  # busy: no new session
    clock.advance(30)
    sample = [e for e in model.handle(Tick()) if isinstance(e, SendMeterValues)]
    assert [s.local_id for s in sample] == [7]


# --- an event of one connector re-derives that connector only (issue 14) -----------------------

def _count_refreshes(model: StationModel) -> dict[int, int]:
    counts = dict.fromkeys(model.connectors, 0)
    for n, c in model.connectors.items():
        def counted(real=c.refresh, n=n) -> list[Effect]:  # type: ignore[no-untyped-def]
            counts[n] += 1
            return real()
        c.refresh = counted  # type: ignore[method-assign]
    return counts


def test_a_reading_on_one_connector_re_derives_only_that_connector() -> None:
    model, _ = build(40)
    model.handle(PilotChanged(3, PilotState.C))
    model.handle(RemoteStart("TAG", 3))
    counts = _count_refreshes(model)
    assert model.handle(MeterUpdated(3, reading(700.0))) == []
    model.handle(PilotChanged(3, PilotState.B))  # the EV stops drawing: SuspendedEV
    assert status(model, 3) is ConnectorStatus.SUSPENDED_EV
    assert counts == {n: 2 if n == 3 else 0 for n in model.connectors}
    model.handle(Tick())  # time-driven changes: every connector
    assert set(counts.values()) == {1, 3}


def test_a_scheduled_station_availability_still_reaches_every_connector() -> None:
    model, _ = build(3)
    for n in (1, 2):
        model.handle(PilotChanged(n, PilotState.C))
        model.handle(RemoteStart(f"TAG{n}", n))
    assert Reply(Outcome.SCHEDULED) in model.handle(ChangeAvailability(0, False))
    assert status(model, 3) is ConnectorStatus.UNAVAILABLE  # idle: at once
    model.handle(PilotChanged(1, PilotState.A))  # unplugged: its transaction ends
    assert status(model, 1) is ConnectorStatus.UNAVAILABLE
    assert status(model, 2) is ConnectorStatus.CHARGING
    assert model.station_operative
    model.handle(PilotChanged(2, PilotState.A))
    assert [status(model, n) for n in (1, 2, 3)] == [ConnectorStatus.UNAVAILABLE] * 3
    assert not model.station_operative


def _published(effects: list[Effect]) -> list[float]:
    return [e.transaction.energy_wh for e in effects
            if isinstance(e, PublishTransaction) and e.transaction is not None]


def test_the_transaction_is_republished_at_a_bounded_rate_and_converges() -> None:
    """ocpp/{c}/transaction: at once on start, id and stop; a grown energy at most every
    TX_ENERGY_REFRESH_S, the latest at the latest then (the tick sends it), not per reading."""
    model, clock = build(MeterValueSampleInterval="0")
    model.handle(MeterUpdated(1, reading(1000.0)))
    model.handle(PilotChanged(1, PilotState.C))
    started = model.handle(RemoteStart("TAG", 1))
    assert _published(started) == [1000.0]
    local_id = next(e for e in started if isinstance(e, SendStartTransaction)).local_id
    assert _published(model.handle(StartAnswered(local_id, "9", AuthStatus.ACCEPTED))) == [
        1000.0]  # the id at once
    out: list[float] = []
    for second in range(1, 10):
        clock.advance(1)
        out += _published(model.handle(MeterUpdated(1, reading(1000.0 + 3 * second))))
        out += _published(model.handle(Tick()))
    assert out == []
    clock.advance(1)
    assert _published(model.handle(Tick())) == [1027.0]  # 10 s: the latest reading
    assert _published(model.handle(Tick())) == []  # nothing new, nothing sent
    clock.advance(TX_ENERGY_REFRESH_S)
    assert _published(model.handle(Tick())) == []  # unchanged energy is not republished
    assert _published(model.handle(MeterUpdated(1, reading(1060.0)))) == [1060.0]  # at once
    stop = model.handle(Command(1, CommandName.STOP, "r"))
    assert [e.transaction for e in stop if isinstance(e, PublishTransaction)] == [None]
