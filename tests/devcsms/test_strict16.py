"""Where OCPP 1.6 is strict, the dev central system flags the station (issue 10's lesson: a
central system written by the same team must not share the team's reading of the spec)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect

from tests.fixtures.csms import Csms
from voltbus_devcsms import rules


def stamp(offset_s: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Station16(ChargePoint):  # type: ignore[misc]
    """A bare 1.6 charge point that accepts ChangeConfiguration."""

    @on(Action.change_configuration)  # type: ignore[misc]
    def on_change_configuration(self, key: str, value: str,
                                **_: Any) -> call_result.ChangeConfiguration:
        return call_result.ChangeConfiguration(status="Accepted")


@contextlib.asynccontextmanager
async def station16(csms: Csms, station_id: str = "P1") -> AsyncIterator[ChargePoint]:
    async with connect(f"{csms.url}/{station_id}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        cp = Station16(station_id, ws, response_timeout=5)
        task = asyncio.create_task(cp.start())
        try:
            await cp.call(call.BootNotification(charge_point_model="m", charge_point_vendor="v"))
            yield cp
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def start(cp: ChargePoint, connector: int = 1, meter: int = 1000,
                timestamp: str | None = None) -> int:
    answer = await cp.call(call.StartTransaction(connector_id=connector, id_tag="T",
                                                 meter_start=meter,
                                                 timestamp=timestamp or stamp()))
    return int(answer.transaction_id)


async def test_a_clean_session_has_no_violations(csms: Csms) -> None:
    async with station16(csms) as cp:
        for status in ("Available", "Preparing", "Charging", "SuspendedEV", "Charging",
                       "Finishing", "Available"):
            if status == "Charging" and not csms.central.open_transactions.get("P1"):
                tx = await start(cp)
            await cp.call(call.StatusNotification(connector_id=1, error_code="NoError",
                                                  status=status, timestamp=stamp()))
            if status == "Finishing":
                await cp.call(call.StopTransaction(meter_stop=1500, timestamp=stamp(),
                                                   transaction_id=tx))
        await cp.call(call.StatusNotification(connector_id=0, error_code="NoError",
                                              status="Unavailable"))
    assert csms.violations() == []
    assert csms.central.transactions16[tx].meter_stop == 1500


async def test_stop_for_an_unknown_transaction_and_stopped_twice(csms: Csms) -> None:
    async with station16(csms) as cp:
        await cp.call(call.StopTransaction(meter_stop=1, timestamp=stamp(), transaction_id=999))
        tx = await start(cp)
        for _ in range(2):
            await cp.call(call.StopTransaction(meter_stop=1200, timestamp=stamp(),
                                               transaction_id=tx))
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
            {"timestamp": stamp(), "sampled_value": [{"value": "1300"}]}]))
    assert [v.rule for v in csms.violations("P1")] == [
        rules.UNKNOWN_TRANSACTION, rules.TRANSACTION_ENDED, rules.TRANSACTION_ENDED]


async def test_meter_stop_below_meter_start_and_stop_before_start(csms: Csms) -> None:
    async with station16(csms) as cp:
        tx = await start(cp, meter=5000, timestamp=stamp(-10))
        await cp.call(call.StopTransaction(meter_stop=4990, timestamp=stamp(-20),
                                           transaction_id=tx))
    found = csms.violations("P1")
    assert [v.rule for v in found] == [rules.METER_STOP_BELOW_START, rules.STOP_BEFORE_START]
    assert "meterStop 4990 < meterStart 5000" in found[0].detail


async def test_a_transaction_started_twice(csms: Csms) -> None:
    async with station16(csms) as cp:
        when = stamp()
        first = await start(cp, timestamp=when)
        second = await start(cp, timestamp=when)  # the same start, replayed
        assert second == first  # the same transaction (as SteVe): none left open for ever
        assert csms.central.open_transactions["P1"] == [first]
        await start(cp, connector=2)
        await start(cp, connector=2, meter=2000)  # connector 2 already has one open
    assert [v.rule for v in csms.violations("P1")] == [rules.STARTED_TWICE, rules.CONNECTOR_BUSY]


async def test_status_transitions_outside_the_state_table(csms: Csms) -> None:
    async with station16(csms) as cp:
        async def status(value: str, connector: int = 1) -> None:
            await cp.call(call.StatusNotification(connector_id=connector, error_code="NoError",
                                                  status=value))
        await status("Available")
        await status("Finishing")  # A6: not in the table
        await status("Charging")  # F3: neither
        await status("Charging")  # a repeat is no transition
        await status("Preparing")  # C2: neither
        await status("Charging", connector=0)  # connector 0 is never Charging
        await cp.call(call.BootNotification(charge_point_model="m", charge_point_vendor="v"))
        await status("Finishing")  # after a reboot the station reports afresh
    found = [(v.rule, v.detail.split(" is ")[0]) for v in csms.violations("P1")]
    assert found == [(rules.STATUS_TRANSITION, "Available -> Finishing"),
                     (rules.STATUS_TRANSITION, "Finishing -> Charging"),
                     (rules.STATUS_TRANSITION, "Charging -> Preparing"),
                     (rules.STATUS_CONNECTOR_0, "connector 0 reported Charging (only Available, "
                                                "Unavailable, Faulted)")]


async def test_timestamps_in_the_future(csms: Csms) -> None:
    async with station16(csms) as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError",
                                              status="Available", timestamp=stamp(3)))  # skew
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError",
                                              status="Available", timestamp=stamp(600)))
        tx = await start(cp, timestamp=stamp(3600))
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
            {"timestamp": stamp(86400), "sampled_value": [{"value": "1"}]}]))
    found = csms.violations("P1", rules.FUTURE_TIMESTAMP)
    assert [v.action for v in found] == ["StatusNotification", "StartTransaction", "MeterValues"]


async def test_a_second_call_before_the_first_is_answered(csms: Csms) -> None:
    csms.behaviour.answer_delay_s["MeterValues"] = 0.3
    async with connect(f"{csms.url}/P1", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        meter = [2, "m1", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": stamp(), "sampledValue": [{"value": "1"}]}]}]
        await ws.send(json.dumps(meter))
        await ws.send(json.dumps([2, "h1", "Heartbeat", {}]))  # without waiting: forbidden
        answers = [json.loads(await ws.recv()) for _ in range(2)]
        assert [a[1] for a in answers] == ["m1", "h1"]  # both answered, in order
        await ws.send(json.dumps([2, "h2", "Heartbeat", {}]))  # after the answers: fine
        assert json.loads(await ws.recv())[1] == "h2"
    found = csms.violations("P1")
    assert [(v.rule, v.action, v.unique_id) for v in found] == [
        (rules.CALL_IN_FLIGHT, "Heartbeat", "h1")]
    assert "MeterValues m1 was unanswered" in found[0].detail


async def test_the_http_api_lists_violations(csms: Csms) -> None:
    import httpx
    async with station16(csms) as cp:
        await cp.call(call.StopTransaction(meter_stop=1, timestamp=stamp(), transaction_id=5))
    async with httpx.AsyncClient(base_url=csms.http_url) as client:
        listed = (await client.get("/violations", params={"station": "P1"})).json()
        chargers = (await client.get("/chargers")).json()
    assert [v["rule"] for v in listed] == [rules.UNKNOWN_TRANSACTION]
    assert chargers[0]["violations"] == 1
    assert [v.rule for v in csms.violations()] == [rules.UNKNOWN_TRANSACTION]


@pytest.mark.parametrize("reject", [False, True])
async def test_reject_violations_turns_a_flag_into_a_callerror(csms: Csms, reject: bool) -> None:
    csms.behaviour.reject_violations = reject
    async with station16(csms) as cp:
        answer: Any = await cp.call(call.StopTransaction(meter_stop=1, timestamp=stamp(),
                                                         transaction_id=77))
    assert (answer is None) == reject  # the ocpp package returns None for a CALLERROR
    assert len(csms.violations("P1", rules.UNKNOWN_TRANSACTION)) == 1


async def test_the_timestamp_check_follows_an_injected_clock(csms: Csms) -> None:
    csms.behaviour.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    async with station16(csms) as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError",
                                              status="Available", timestamp=stamp(3600)))
    assert csms.violations() == []


async def test_violations_a_test_never_read_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.csms import Csms as Server
    from tests.fixtures.csms import CsmsViolation, report_unseen_violations

    server = Server()
    await server.start()
    try:
        async with station16(server) as cp:
            await cp.call(call.StopTransaction(meter_stop=1, timestamp=stamp(), transaction_id=8))
    finally:
        await server.stop()
    monkeypatch.delenv("VOLTBUS_CSMS_STRICT", raising=False)
    with pytest.warns(CsmsViolation, match="unknown-transaction"):
        report_unseen_violations(server, "t")
    monkeypatch.setenv("VOLTBUS_CSMS_STRICT", "1")
    with pytest.raises(pytest.fail.Exception, match="unknown-transaction"):
        report_unseen_violations(server, "t")
    assert len(server.violations()) == 1  # now looked at: nothing to report
    report_unseen_violations(server, "t")


async def test_after_a_rejected_boot_only_a_new_boot_may_come_even_on_a_new_connection(
        csms: Csms) -> None:
    csms.behaviour.boot_status = "Rejected"  # type: ignore[assignment]
    csms.behaviour.boot_interval_s = 0  # no retry interval to wait (that rule is tested below)
    async with station16(csms) as cp:  # boots (Rejected)
        pass
    csms.behaviour.boot_status = "Accepted"  # type: ignore[assignment]
    async with connect(f"{csms.url}/P1", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps([2, "h1", "Heartbeat", {}]))  # no boot since Rejected
        await ws.recv()
    async with station16(csms) as cp:  # boots again (Accepted): then anything goes
        await cp.call(call.Heartbeat())
    assert [(v.rule, v.unique_id) for v in csms.violations("P1")] == [
        (rules.CALL_WHILE_REJECTED, "h1")]


async def test_a_rejected_station_waits_the_interval_and_answers_nothing(csms: Csms) -> None:
    """1.6 4.2: after Rejected, no message at all until the retry interval has expired (the
    BootNotification too), and no answer to the central system's requests."""
    csms.behaviour.boot_status = "Rejected"  # type: ignore[assignment]
    csms.behaviour.boot_interval_s = 30
    csms.behaviour.time_scale = 0.01  # 0.3 s
    async with station16(csms) as cp:  # boots (Rejected)
        with contextlib.suppress(TimeoutError):  # a well-behaved station would not answer
            await asyncio.wait_for(csms.send("P1", call.ChangeConfiguration(
                key="HeartbeatInterval", value="5")), 1)
        await cp.call(call.BootNotification(charge_point_model="m", charge_point_vendor="v"))
        await asyncio.sleep(0.35)
        csms.behaviour.boot_status = "Accepted"  # type: ignore[assignment]
        await cp.call(call.BootNotification(charge_point_model="m", charge_point_vendor="v"))
        await cp.call(call.Heartbeat())
    assert [(v.rule, v.action) for v in csms.violations("P1")] == [
        (rules.ANSWER_WHILE_REJECTED, "CALLRESULT"),
        (rules.CALL_BEFORE_RETRY_INTERVAL, "BootNotification")]


async def test_a_reserved_transaction_carries_the_reservations_tag_or_parent(
        csms: Csms) -> None:
    """1.6 5.13: only the reservation's idTag or a tag of its parent may use it."""
    class Reserving(Station16):
        @on(Action.reserve_now)  # type: ignore[misc]
        def on_reserve(self, **_: Any) -> call_result.ReserveNow:
            return call_result.ReserveNow(status="Accepted")

    csms.behaviour.parent_tags = {"CHILD": "FLEET", "OTHER": "ELSE"}
    async with connect(f"{csms.url}/P1", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        cp = Reserving("P1", ws, response_timeout=5)
        task = asyncio.create_task(cp.start())
        await cp.call(call.BootNotification(charge_point_model="m", charge_point_vendor="v"))
        await csms.send("P1", call.ReserveNow(connector_id=1, expiry_date=stamp(3600),
                                              id_tag="OWNER", reservation_id=3,
                                              parent_id_tag="FLEET"))
        for n, tag in enumerate(("CHILD", "OTHER", "OWNER"), start=1):
            answer = await cp.call(call.StartTransaction(
                connector_id=n, id_tag=tag, meter_start=0, timestamp=stamp(), reservation_id=3))
            assert answer.id_tag_info.get("parent_id_tag") == csms.behaviour.parent_tags.get(tag)
        task.cancel()
    assert [(v.rule, v.detail.split()[1]) for v in csms.violations("P1")] == [
        (rules.RESERVATION_TAG, "OTHER")]


async def test_firmware_statuses_follow_the_job_and_idle_only_when_triggered(
        csms: Csms) -> None:
    """1.6 4.5: Downloading -> Downloaded -> Installing -> Installed; Idle only for a trigger."""
    async with station16(csms) as cp:
        for status in ("Downloading", "Downloaded", "Installing", "Installed", "Idle",
                       "Installing"):
            await cp.call(call.FirmwareStatusNotification(status=status))
    assert [(v.rule, v.detail) for v in csms.violations("P1")] == [
        (rules.FIRMWARE_STATUS, "Idle without a TriggerMessage for it"),
        (rules.FIRMWARE_STATUS, "Installed -> Installing is not a firmware update's progress")]


def energy16(wh: str, unit: str = "Wh") -> list[dict[str, Any]]:
    return [{"timestamp": stamp(), "sampled_value": [
        {"value": wh, "measurand": "Energy.Active.Import.Register", "unit": unit},
        {"value": "1", "measurand": "Energy.Active.Import.Register", "phase": "L1"},
        {"value": "3680", "measurand": "Power.Active.Import", "unit": "W"}]}]


async def test_the_energy_register_never_goes_down_within_a_transaction(csms: Csms) -> None:
    async with station16(csms) as cp:
        tx = await start(cp, meter=1000)
        for wh, unit in (("1000", "Wh"), ("1.5", "kWh"), ("1400", "Wh"), ("1600", "Wh")):
            await cp.call(call.MeterValues(connector_id=1, transaction_id=tx,
                                           meter_value=energy16(wh, unit)))
        await cp.call(call.StopTransaction(meter_stop=1590, timestamp=stamp(),
                                           transaction_id=tx))
        ok = await start(cp, meter=2000)
        await cp.call(call.MeterValues(connector_id=1, transaction_id=ok,
                                       meter_value=energy16("2100")))
        await cp.call(call.StopTransaction(meter_stop=2100, timestamp=stamp(),
                                           transaction_id=ok))
    found = csms.violations("P1", rules.METER_DECREASED)
    assert [v.action for v in found] == ["MeterValues", "StopTransaction"]
    assert "1400 Wh below the 1500 Wh" in found[0].detail
    assert "meterStop 1590 below the 1600 Wh" in found[1].detail


async def test_an_answer_to_no_call_in_flight_is_flagged_and_dropped(csms: Csms) -> None:
    async with connect(f"{csms.url}/P1", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        await csms.wait_connected("P1")
        await ws.send(json.dumps([3, "nobody-asked", {}]))
        asking = asyncio.create_task(csms.send("P1", call.ClearCache()))
        request = json.loads(await ws.recv())
        await ws.send(json.dumps([3, "wrong-id", {"status": "Accepted"}]))
        await ws.send(json.dumps([3, request[1], {"status": "Rejected"}]))
        assert await asking == {"status": "Rejected"}  # the right answer reached the caller
    found = csms.violations("P1", rules.UNEXPECTED_ANSWER)
    assert [v.unique_id for v in found] == ["nobody-asked", "wrong-id"]


async def test_an_integer_meter_stop_just_below_a_decimal_register_is_no_decrease(
        csms: Csms) -> None:
    """meterStop is whole Wh (schema): 3549821 after a MeterValues of 3549821.085 Wh is the same
    register (the power-cut suite's flag), 3549820 is a decrease."""
    async with station16(csms) as cp:
        for stop in (3549821, 3549820):
            tx = await start(cp, meter=3549000)
            await cp.call(call.MeterValues(connector_id=1, transaction_id=tx,
                                           meter_value=energy16("3549821.085")))
            await cp.call(call.StopTransaction(meter_stop=stop, timestamp=stamp(),
                                               transaction_id=tx))
    found = csms.violations("P1", rules.METER_DECREASED)
    assert [v.detail.split(" below")[0] for v in found] == ["meterStop 3549820"]
