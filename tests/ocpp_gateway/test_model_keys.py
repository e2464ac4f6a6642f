"""Configuration keys that change the model's behaviour, as tables (pure model, fake clock):
clock-aligned data in and outside transactions, StopTxnSampled/AlignedData, MaxEnergyOnInvalidId,
and the transactionData they produce."""

from __future__ import annotations

import pytest

from tests.ocpp_gateway.test_model import T0, build, reading
from voltbus_common.enums import PilotState, StopReason
from voltbus_ocpp.model.events import (
    Effect,
    MeterUpdated,
    PilotChanged,
    RemoteStart,
    SendMeterValues,
    SendStartTransaction,
    SendStopTransaction,
    StartAnswered,
    Tick,
)
from voltbus_ocpp.model.results import AuthStatus, ReadingContext
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.protocol.v16 import convert
from voltbus_ocpp.protocol.v16.config_store import ConfigStore

PERIODIC, CLOCK = ReadingContext.PERIODIC, ReadingContext.CLOCK


def meter_values(effects: list[Effect]) -> list[SendMeterValues]:
    return [e for e in effects if isinstance(e, SendMeterValues)]


def stops(effects: list[Effect]) -> list[SendStopTransaction]:
    return [e for e in effects if isinstance(e, SendStopTransaction)]


def start(model: StationModel, energy_wh: float = 1000.0) -> SendStartTransaction:
    model.handle(MeterUpdated(1, reading(energy_wh)))
    model.handle(PilotChanged(1, PilotState.C))
    first = model.handle(RemoteStart("TAG", 1))[0]
    assert isinstance(first, SendStartTransaction)
    return first


def test_clock_aligned_values_are_sent_outside_a_transaction_too() -> None:
    model, clock = build(ClockAlignedDataInterval="900", MeterValueSampleInterval="0")
    model.handle(MeterUpdated(1, reading(10.0)))
    assert model.handle(Tick()) == []  # 12:00:00 schedules 12:15:00
    clock.advance(899)
    assert model.handle(Tick()) == []
    clock.advance(1)
    (idle,) = meter_values(model.handle(Tick()))
    assert (idle.local_id, idle.context, idle.ts.minute, idle.ts.second) == (
        None, ReadingContext.CLOCK, 15, 0)
    begun = start(model, 20.0)
    clock.advance(900)
    (in_tx,) = meter_values(model.handle(Tick()))
    assert (in_tx.local_id, in_tx.context) == (begun.local_id, ReadingContext.CLOCK)
    model.handle(RemoteStart("X", 1))  # busy: ignored
    model.handle(PilotChanged(1, PilotState.A))  # unplugged: stopped
    clock.advance(900)
    (after,) = meter_values(model.handle(Tick()))
    assert after.local_id is None


@pytest.mark.parametrize(("config", "expected"), [
    ({"ClockAlignedDataInterval": "0"}, 0),
    ({"ClockAlignedDataInterval": "900", "MeterValuesAlignedData": ""}, 0),
    ({"ClockAlignedDataInterval": "900"}, 1),
])
def test_clock_aligned_needs_an_interval_and_measurands(config: dict[str, str],
                                                       expected: int) -> None:
    model, clock = build(MeterValueSampleInterval="0", **config)
    model.handle(MeterUpdated(1, reading(10.0)))
    model.handle(Tick())
    clock.advance(900)
    assert len(meter_values(model.handle(Tick()))) == expected


def test_no_meter_no_clock_aligned_values() -> None:
    model, clock = build(ClockAlignedDataInterval="60")
    model.handle(Tick())
    clock.advance(60)
    assert meter_values(model.handle(Tick())) == []


@pytest.mark.parametrize(("sampled", "aligned", "contexts"), [
    ("", "", []),
    ("Energy.Active.Import.Register", "", [PERIODIC] * 3),
    ("", "Power.Active.Import", [CLOCK]),
    ("Energy.Active.Import.Register", "Power.Active.Import",
     [PERIODIC, PERIODIC, CLOCK, PERIODIC]),
])
def test_stop_transaction_data_keeps_the_configured_samples(
        sampled: str, aligned: str, contexts: list[ReadingContext]) -> None:
    model, clock = build(MeterValueSampleInterval="300", ClockAlignedDataInterval="900",
                         StopTxnSampledData=sampled, StopTxnAlignedData=aligned)
    begun = start(model)
    model.handle(Tick())
    for minute in (5, 10, 15):  # 12:05, 12:10 periodic; 12:15 both (aligned first scheduled)
        clock.advance(300)
        model.handle(MeterUpdated(1, reading(1000.0 + minute * 10)))
        model.handle(Tick())
    (stop,) = stops(model.handle(PilotChanged(1, PilotState.A)))
    got = [s.context for s in stop.samples]
    assert sorted(got) == sorted(contexts)
    payload = convert.stop_transaction(stop, [convert.MEASURAND_OF[m] for m in [sampled] if m],
                                       [convert.MEASURAND_OF[m] for m in [aligned] if m])
    if not contexts:
        assert "transactionData" not in payload
        return
    data = payload["transactionData"]
    assert data[0]["sampledValue"][0]["context"] == "Transaction.Begin" or not sampled
    assert data[-1]["sampledValue"][0]["context"] == "Transaction.End"
    middle = [v for entry in data for v in entry["sampledValue"]
              if v["context"] in ("Sample.Periodic", "Sample.Clock")]
    for value in middle:
        wanted = "Energy.Active.Import.Register" if value["context"] == "Sample.Periodic" \
            else "Power.Active.Import"
        assert value["measurand"] == wanted
    assert begun.ts == T0


@pytest.mark.parametrize(("stop_on_invalid", "cap", "meters", "stopped_at"), [
    ("true", "500", [1000.0], 1000.0),  # stops at once, whatever the cap
    ("false", "0", [1000.0], 1000.0),  # nothing may be delivered: stops at once
    ("false", "100", [1050.0, 1099.0, 1100.0, 1200.0], 1100.0),  # charges up to the cap
    ("false", "100", [1150.0], 1150.0),  # cap already passed when the answer came
])
def test_max_energy_on_invalid_id(stop_on_invalid: str, cap: str, meters: list[float],
                                  stopped_at: float) -> None:
    model, _ = build(StopTransactionOnInvalidId=stop_on_invalid, MaxEnergyOnInvalidId=cap)
    begun = start(model, 1000.0)
    effects: list[Effect] = []
    if len(meters) == 1:
        model.handle(MeterUpdated(1, reading(meters[0])))
        effects = model.handle(StartAnswered(begun.local_id, "5", AuthStatus.INVALID))
    else:
        effects = model.handle(StartAnswered(begun.local_id, "5", AuthStatus.INVALID))
        assert stops(effects) == []
        for energy in meters:
            effects = model.handle(MeterUpdated(1, reading(energy)))
            if stops(effects):
                break
    (stop,) = stops(effects)
    assert (stop.reason, stop.meter_stop_wh) == (StopReason.DE_AUTHORIZED, stopped_at)
    assert model.connectors[1].facts.tx is None


def test_accepted_start_has_no_energy_cap() -> None:
    model, _ = build(StopTransactionOnInvalidId="false", MaxEnergyOnInvalidId="10")
    begun = start(model, 1000.0)
    model.handle(StartAnswered(begun.local_id, "5", AuthStatus.ACCEPTED))
    assert stops(model.handle(MeterUpdated(1, reading(5000.0)))) == []


@pytest.mark.parametrize(("value", "connectors", "answer"), [
    ("0.RST,1.RTS", "1", "Accepted"),
    ("0.NotApplicable,1.Unknown,2.TSR", "2", "Accepted"),
    ("", "1", "Accepted"),
    ("1.XYZ", "1", "Rejected"),  # not a rotation
    ("1RST", "1", "Rejected"),  # no connector prefix
    ("2.RST", "1", "Rejected"),  # no connector 2
    ("1.RST,1.RTS", "1", "Rejected"),  # twice
    (",".join(f"{n}.RST" for n in range(10)), "12", "Accepted"),  # MaxLength 10
    (",".join(f"{n}.RST" for n in range(11)), "12", "Rejected"),
])
def test_connector_phase_rotation_is_validated(value: str, connectors: str, answer: str) -> None:
    cfg = ConfigStore(None, overrides={"NumberOfConnectors": connectors})
    assert cfg.change("ConnectorPhaseRotation", value) == answer
    assert (cfg.get_str("ConnectorPhaseRotation") == value) is (answer == "Accepted")


def test_csl_keys_respect_their_max_length() -> None:
    cfg = ConfigStore(None)
    five = ("Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,"
            "Current.Offered")
    assert cfg.change("MeterValuesSampledData", five) == "Accepted"
    assert cfg.change("StopTxnAlignedData", five + ",Voltage") == "Rejected"  # MaxLength 5
