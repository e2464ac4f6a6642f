"""A whole charging session through the gateway: real central system, real broker, hardware peer."""

from __future__ import annotations

from tests.ocpp_gateway.conftest import Rig


def values(meter_values: dict, measurand: str) -> list[dict]:
    """The sampled values of one measurand in a MeterValues.req."""
    return [v for mv in meter_values["meterValue"] for v in mv["sampledValue"]
            if v["measurand"] == measurand]


async def test_full_session_tap_meter_remote_stop_unplug(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("A")
    await rig.start_gateway()
    boot = await csms.wait_for(rig.id, "BootNotification")
    assert boot["chargePointVendor"] == "voltbus"
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorId"] == 1 and p["status"] == "Available")
    connection = await rig.wait("connection", lambda p: p.registration is not None)
    assert connection.connected
    assert connection.registration.value == "Accepted"

    rig.pilot("B")
    await rig.status("Preparing")
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Preparing")

    rig.tap("04A1B2C3")
    assert (await csms.wait_for(rig.id, "Authorize")) == {"idTag": "04A1B2C3"}
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert start["idTag"] == "04A1B2C3"
    assert start["connectorId"] == 1
    assert start["meterStart"] == 1000
    relay = await rig.wait("relay_set")
    assert relay.closed is True
    limit = await rig.wait("limit_set")
    assert limit.amps == 16.0
    rig.relay(True)
    tx = await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    assert tx.id_tag == "04A1B2C3"
    assert tx.meter_start_wh == 1000.0

    rig.pilot("C")
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Charging")
    rig.meter(1100.0, power_w=7360.0, current_a=[10.5, 10.6, 10.7])
    mv = await csms.wait_for(rig.id, "MeterValues",
                             where=lambda p: values(p, "Energy.Active.Import.Register")[0][
                                 "value"] == "1100")
    assert mv["transactionId"] == tx.transaction_id
    assert values(mv, "Power.Active.Import")[0] == {
        "value": "7360", "context": "Sample.Periodic", "measurand": "Power.Active.Import",
        "location": "Outlet", "unit": "W"}
    currents = values(mv, "Current.Import")
    assert [(c["phase"], c["value"]) for c in currents] == [
        ("L1", "10.5"), ("L2", "10.6"), ("L3", "10.7")]
    last = rig.meter(1234.0)
    await rig.wait("transaction", lambda p: p is not None and p.energy_wh == last - 1000.0)

    response = await csms.post("/remotestop", {"id": rig.id})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "Accepted"}
    stop = await csms.wait_for(rig.id, "StopTransaction")
    assert stop["transactionId"] == tx.transaction_id
    assert stop["meterStop"] == last
    assert stop["reason"] == "Remote"
    opened = await rig.wait("relay_set", lambda p: p.closed is False)
    assert opened.closed is False
    session = await rig.wait("session")
    assert session.meter_stop_wh == last
    assert session.energy_wh == last - 1000.0
    assert session.stop_reason.value == "Remote"
    assert await rig.wait("transaction", lambda p: p is None, count=2) is None
    await rig.status("Finishing")

    rig.pilot("A")
    await rig.status("Available", count=2)
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Available",
                        count=2)
    order = [a for a in csms.actions(rig.id) if a not in ("Heartbeat", "MeterValues")]
    assert order[:2] == ["BootNotification", "StatusNotification"]
    assert order.index("Authorize") < order.index("StartTransaction") < order.index(
        "StopTransaction")


async def test_two_connectors_charge_at_once(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(100.0, connector=1)
    rig.meter(200.0, connector=2)
    await rig.start_gateway(connectors=2)
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 2)
    rig.pilot("B", connector=2)
    await rig.status("Preparing", connector=2)
    rig.tap("CARD2")
    start2 = await csms.wait_for(rig.id, "StartTransaction")
    assert (start2["connectorId"], start2["meterStart"]) == (2, 200)
    rig.pilot("B", connector=1)
    rig.tap("CARD1")
    start1 = await csms.wait_for(rig.id, "StartTransaction", count=2)
    assert (start1["connectorId"], start1["meterStart"]) == (1, 100)
    assert (await rig.wait("relay_set", connector=1)).closed is True
    assert (await rig.wait("relay_set", connector=2)).closed is True
    # A station-wide maximum of 20 A is shared: 10 A each while both charge, 16 A when alone.
    response = await csms.post("/setmaxvalue", {"id": rig.id, "limit": 20})
    assert response.json() == {"status": "Accepted"}
    assert (await rig.wait("limit_set", lambda p: p.amps == 10.0, connector=1)).amps == 10.0
    assert (await rig.wait("limit_set", lambda p: p.amps == 10.0, connector=2)).amps == 10.0
    rig.tap("CARD2")  # stops connector 2 only
    stop = await csms.wait_for(rig.id, "StopTransaction")
    assert stop["transactionId"] == 1
    assert (await rig.wait("relay_set", lambda p: p.closed is False, connector=2)).closed is False
    assert [m.payload.closed for m in rig.seen["relay_set"] if m.connector == 1] == [True]
    assert (await rig.wait("limit_set", lambda p: p.amps == 16.0, connector=1,
                           count=2)).amps == 16.0
    rig.pilot("B", connector=3)
    assert (await rig.wait_rejected("unknown connector 3 (this station has 2)")).topic.endswith(
        "/hw/3/pilot")
