"""2.0.1 meter values (J01/J02, issue 11 J) against the dev central system: clock-aligned values
by AlignedDataCtrlr Interval/Measurands outside a transaction (MeterValues, Sample.Clock) and
inside one (TransactionEvent Updated MeterValueClock), at whole multiples of the interval; the
Ended event's Transaction.End values by SampledDataCtrlr TxEndedMeasurands."""

from __future__ import annotations

from typing import Any

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_v201_local_auth import set_variable
from voltbus_ocpp.protocol.wire_time import parse_time


def values(meter_value: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(v["measurand"], v["context"]) for mv in meter_value for v in mv["sampledValue"]]


def on_the_second(stamp: str) -> bool:
    return parse_time(stamp).microsecond == 0


async def test_clock_aligned_and_ended_meter_values_follow_the_variables(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201(energy_wh=500.0)
    await set_variable(rig, "SampledDataCtrlr", "TxUpdatedInterval", "0")  # no periodic ones
    await set_variable(rig, "AlignedDataCtrlr", "Measurands",
                       "Energy.Active.Import.Register,Power.Active.Import")
    await set_variable(rig, "SampledDataCtrlr", "TxEndedMeasurands",
                       "Energy.Active.Import.Register,Current.Import")
    await set_variable(rig, "AlignedDataCtrlr", "Interval", "1")  # real seconds, not scaled
    outside = await csms.wait_for(rig.id, "MeterValues", timeout=3)
    assert outside["evseId"] == 1
    assert values(outside["meterValue"]) == [("Energy.Active.Import.Register", "Sample.Clock"),
                                             ("Power.Active.Import", "Sample.Clock")]
    assert on_the_second(outside["meterValue"][0]["timestamp"])

    rig.pilot("B")
    await rig.status("Preparing")
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    rig.relay(True)
    rig.pilot("C")
    rig.meter(600.0)
    clock = await csms.wait_for(rig.id, "TransactionEvent", timeout=3,
                                where=lambda p: p["triggerReason"] == "MeterValueClock")
    assert clock["eventType"] == "Updated"
    assert clock["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"]
    assert values(clock["meterValue"]) == [("Energy.Active.Import.Register", "Sample.Clock"),
                                           ("Power.Active.Import", "Sample.Clock")]
    assert on_the_second(clock["timestamp"])
    rig.meter(700.0)
    rig.tap("TAG")
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    end = values(ended["meterValue"])
    assert ("Energy.Active.Import.Register", "Transaction.End") in end
    assert ("Current.Import", "Transaction.End") in end
    assert {c for _, c in end} == {"Transaction.End"}
    assert [v["value"] for mv in ended["meterValue"] for v in mv["sampledValue"]
            if v["measurand"] == "Energy.Active.Import.Register"] == [700.0]
    # while the transaction ran its clock-aligned values went in TransactionEvents only
    began, over = parse_time(started["timestamp"]), parse_time(ended["timestamp"])
    assert [m for m in csms.received(rig.id, "MeterValues")
            if began < parse_time(m.payload["meterValue"][0]["timestamp"]) < over] == []
    await set_variable(rig, "AlignedDataCtrlr", "Interval", "0")
    assert csms.violations(rig.id) == []
