"""Configuration keys that change what the gateway sends, against the real dev central system
(schema validation on) and the real Mosquitto: clock-aligned MeterValues in and outside
transactions, StopTxnSampled/AlignedData in transactionData, MaxEnergyOnInvalidId."""

from __future__ import annotations

from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_protocol_ops import charging, online


def _aligned(p: dict) -> bool:
    return p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"


async def test_clock_aligned_meter_values_outside_and_inside_a_transaction(rig: Rig) -> None:
    rig.meter(2000.0)
    await online(rig, ocpp_config={"ClockAlignedDataInterval": "1", "MeterValueSampleInterval": "0",
                                   "MeterValuesAlignedData": "Energy.Active.Import.Register,"
                                                             "Voltage"})
    idle = await rig.csms.wait_for(rig.id, "MeterValues", where=_aligned, timeout=4)
    assert "transactionId" not in idle
    value = idle["meterValue"][0]
    assert value["timestamp"].endswith(".000Z")  # stamped with the whole-second boundary
    assert [(v["measurand"], v["value"]) for v in value["sampledValue"]] == [
        ("Energy.Active.Import.Register", "2000"), ("Voltage", "230"), ("Voltage", "231"),
        ("Voltage", "229")]
    start = await charging(rig)
    tx = await rig.csms.wait_for(rig.id, "MeterValues", where=lambda p: _aligned(p) and (
        "transactionId" in p), timeout=4)
    assert tx["transactionId"] > 0
    assert tx["connectorId"] == start["connectorId"]


async def test_stop_transaction_carries_sampled_and_clock_aligned_data(rig: Rig) -> None:
    rig.meter(500.0)
    await online(rig, ocpp_config={"MeterValueSampleInterval": "20",  # 0.2 s here
                                   "ClockAlignedDataInterval": "1",
                                   "StopTxnSampledData": "Energy.Active.Import.Register",
                                   "StopTxnAlignedData": "Power.Active.Import"})
    await charging(rig)
    clock_mv = await rig.csms.wait_for(rig.id, "MeterValues", timeout=4, where=lambda p: (
        _aligned(p) and "transactionId" in p))
    rig.meter(650.0)
    await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 150.0)
    periodic = len([p for p in rig.csms.received(rig.id, "MeterValues") if not _aligned(
        p.payload)])
    await rig.csms.wait_for(rig.id, "MeterValues", count=periodic + 1,
                            where=lambda p: not _aligned(p))
    rig.tap("TAG")
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    data = stop["transactionData"]
    contexts = [{v["context"] for v in d["sampledValue"]} for d in data]
    assert contexts[0] == {"Transaction.Begin"}
    assert contexts[-1] == {"Transaction.End"}
    clock = [d for d in data if d["sampledValue"][0]["context"] == "Sample.Clock"]
    periodic_data = [d for d in data if d["sampledValue"][0]["context"] == "Sample.Periodic"]
    assert clock
    assert periodic_data
    assert {v["measurand"] for d in clock for v in d["sampledValue"]} == {"Power.Active.Import"}
    assert clock_mv["meterValue"][0]["timestamp"] in {d["timestamp"] for d in clock}
    assert {v["measurand"] for d in periodic_data for v in d["sampledValue"]} == {
        "Energy.Active.Import.Register"}
    assert periodic_data[-1]["sampledValue"][0]["value"] == "650"


async def test_max_energy_on_invalid_id_charges_up_to_the_cap_then_stops(rig: Rig) -> None:
    rig.csms.behaviour.start_status["BAD"] = AuthorizationStatus.invalid
    rig.meter(1000.0)
    await online(rig, ocpp_config={"StopTransactionOnInvalidId": "false",
                                   "MaxEnergyOnInvalidId": "100"})
    await charging(rig, "BAD")
    rig.meter(1060.0)
    await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 60.0)
    assert rig.csms.received(rig.id, "StopTransaction") == []
    rig.meter(1100.0)
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert (stop["reason"], stop["meterStop"]) == ("DeAuthorized", 1100)
    await rig.wait("relay_set", lambda p: not p.closed)


async def test_stop_transaction_on_invalid_id_stops_at_once(rig: Rig) -> None:
    rig.csms.behaviour.start_status["BAD"] = AuthorizationStatus.blocked
    rig.meter(1000.0)
    await online(rig, ocpp_config={"StopTransactionOnInvalidId": "true",
                                   "MaxEnergyOnInvalidId": "100"})
    await charging(rig, "BAD")
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert (stop["reason"], stop["meterStop"]) == ("DeAuthorized", 1000)


async def test_light_intensity_and_blink_repeat_reach_the_led(rig: Rig) -> None:
    await online(rig, ocpp_config={"LightIntensity": "60"})
    first = await rig.wait("led_set", connector=1)
    assert (first.color, first.intensity_pct, first.blink_repeat) == ("green", 60, None)
    answer = await rig.csms.send(rig.id, call.ChangeConfiguration(key="LightIntensity",
                                                                  value="25"))
    assert answer == {"status": "Accepted"}
    dimmed = await rig.wait("led_set", lambda p: p.intensity_pct == 25, connector=1)
    assert (dimmed.color, dimmed.pattern.value) == ("green", "solid")
    assert await rig.csms.send(rig.id, call.ChangeConfiguration(key="BlinkRepeat", value="5")
                               ) == {"status": "Accepted"}
    rig.pilot("B")  # Preparing blinks
    blink = await rig.wait("led_set", lambda p: p.pattern.value == "blink", connector=1)
    assert (blink.color, blink.blink_repeat, blink.intensity_pct) == ("blue", 5, 25)
    assert await rig.csms.send(rig.id, call.ChangeConfiguration(key="LightIntensity",
                                                                value="101")) == {
        "status": "Rejected"}


async def test_connector_phase_rotation_is_validated_and_reported(rig: Rig) -> None:
    await online(rig, connectors=2)
    for value, status in [("0.RST,1.RTS,2.NotApplicable", "Accepted"), ("1.RSX", "Rejected"),
                          ("3.RST", "Rejected"), ("1.RST,1.TSR", "Rejected")]:
        answer = await rig.csms.send(rig.id, call.ChangeConfiguration(
            key="ConnectorPhaseRotation", value=value))
        assert answer == {"status": status}, value
    got = await rig.csms.send(rig.id, call.GetConfiguration(key=["ConnectorPhaseRotation"]))
    assert got["configurationKey"] == [{"key": "ConnectorPhaseRotation", "readonly": False,
                                        "value": "0.RST,1.RTS,2.NotApplicable"}]
