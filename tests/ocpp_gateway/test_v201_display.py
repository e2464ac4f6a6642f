"""O Display messages in 2.0.1 against the dev central system (schema validation on, its
NotifyDisplayMessages paging and criteria rules) and the real broker: SetDisplayMessage's
results (O01/O02/O06), GetDisplayMessages with NotifyDisplayMessages paged by tbc (O03/O04),
ClearDisplayMessage (O05), the DisplayMessageCtrlr variables, and `ocpp/display` on the bus
(what is shown now, AlwaysFront on top): a message bound to a transaction goes when it ends,
one past its end time goes, a state-bound one shows in its state, all survive a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.protocol.wire_time import iso


def message(mid: int, priority: str = "NormalCycle", text: str | None = None, *,
            fmt: str = "UTF8", **extra: Any) -> dict[str, Any]:
    return {"message": {"id": mid, "priority": priority, "message": {
        "format": fmt, "language": "en", "content": text or f"message {mid}"}, **extra}}


async def set_message(rig: Rig, mid: int, priority: str = "NormalCycle",
                      text: str | None = None, **extra: Any) -> str:
    answer = await rig.csms.send_action(rig.id, "SetDisplayMessage",
                                        message(mid, priority, text, **extra))
    return str(answer["status"])


async def shown(rig: Rig, ids: list[int], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """The latest `ocpp/display` payload once it lists exactly these message ids, in order."""
    async def latest() -> Any:
        while True:
            seen = rig.seen["display"]
            if seen and [m.id for m in seen[-1].payload.messages] == ids:
                return seen[-1].payload
            rig._changed.clear()
            await rig._changed.wait()
    return await asyncio.wait_for(latest(), timeout)


async def get_messages(rig: Rig, request_id: int, **criteria: Any) -> str:
    answer = await rig.csms.send_action(rig.id, "GetDisplayMessages",
                                        {"requestId": request_id, **criteria})
    return str(answer["status"])


async def display_var(rig: Rig, variable: str) -> Any:
    answer = await rig.csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        {"component": {"name": "DisplayMessageCtrlr"}, "variable": {"name": variable}}]})
    return answer["getVariableResult"][0].get("attributeValue")


async def test_set_replace_get_clear_and_what_the_bus_shows(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    await shown(rig, [])  # the retained list starts empty
    assert await display_var(rig, "Available") == "true"
    assert await display_var(rig, "SupportedFormats") == "ASCII,UTF8,URI"
    assert await display_var(rig, "SupportedPriorities") == "AlwaysFront,InFront,NormalCycle"

    assert await set_message(rig, 1) == "Accepted"
    await shown(rig, [1])
    assert await set_message(rig, 2, "InFront") == "Accepted"
    assert await set_message(rig, 3, "AlwaysFront", "first front") == "Accepted"
    assert await set_message(rig, 4, "AlwaysFront", "newer front") == "Accepted"
    # the newest AlwaysFront on top (it replaces the older one on the display), then InFront
    top = await shown(rig, [4, 2, 1])
    assert top.messages[0].content == "newer front"
    assert top.messages[0].language == "en"

    # refusals: nothing stored, nothing shown
    now = datetime.now(UTC)
    assert await set_message(rig, 10, fmt="HTML", text="<b>x</b>") == "NotSupportedMessageFormat"
    assert await set_message(rig, 11, transactionId="no-such-tx") == "UnknownTransaction"
    assert await set_message(rig, 12, display={"name": "Display", "evse": {"id": 7}}) == (
        "Rejected")  # no EVSE 7
    assert await set_message(rig, 13, endDateTime=iso(now - timedelta(seconds=5))) == (
        "Rejected")  # already over
    assert await set_message(rig, 14, startDateTime=iso(now + timedelta(hours=2)),
                             endDateTime=iso(now + timedelta(hours=1))) == "Rejected"
    # O06: the same id replaces the message
    assert await set_message(rig, 1, "NormalCycle", "replaced") == "Accepted"
    replaced = await rig.wait("display", lambda p: any(
        m.id == 1 and m.content == "replaced" for m in p.messages))
    assert [m.id for m in replaced.messages] == [4, 2, 1]
    # shown only while charging, or only later: stored, not shown now
    assert await set_message(rig, 5, "InFront", state="Charging") == "Accepted"
    assert await set_message(rig, 6, startDateTime=iso(now + timedelta(hours=1))) == "Accepted"
    # for connector 1's display
    assert await set_message(rig, 7, display={"name": "Display", "evse": {"id": 1}}) == (
        "Accepted")
    on_evse = await shown(rig, [4, 2, 1, 7])
    assert [m.connector for m in on_evse.messages] == [None, None, None, 1]
    assert await display_var(rig, "DisplayMessages") == "7"

    # O03/O04: by priority, state, ids; every criterion must hold
    assert await get_messages(rig, 1, priority="AlwaysFront") == "Accepted"
    report = await csms.wait_report(rig.id, 1, action="NotifyDisplayMessages")
    infos = report.items("messageInfo")
    assert [(i["id"], i["message"]["content"]) for i in infos] == [
        (3, "first front"), (4, "newer front")]  # stored both, shows the newer
    assert await get_messages(rig, 2, state="Charging") == "Accepted"
    report = await csms.wait_report(rig.id, 2, action="NotifyDisplayMessages")
    assert [i["id"] for i in report.items("messageInfo")] == [5]
    assert report.items("messageInfo")[0]["state"] == "Charging"
    assert await get_messages(rig, 3, id=[1, 7, 99]) == "Accepted"
    report = await csms.wait_report(rig.id, 3, action="NotifyDisplayMessages")
    assert [(i["id"], i.get("display")) for i in report.items("messageInfo")] == [
        (1, None), (7, {"name": "Display", "evse": {"id": 1}})]
    assert await get_messages(rig, 4, id=[99]) == "Unknown"
    assert await get_messages(rig, 5, id=[1], priority="InFront") == "Unknown"

    # O05
    assert await csms.send_action(rig.id, "ClearDisplayMessage", {"id": 4}) == {
        "status": "Accepted"}
    await shown(rig, [3, 2, 1, 7])  # the older AlwaysFront one comes back on top
    assert await csms.send_action(rig.id, "ClearDisplayMessage", {"id": 4}) == {
        "status": "Unknown"}
    await asyncio.sleep(0.2)
    assert (rig.id, "NotifyDisplayMessages", 4) not in csms.central.reports  # Unknown: none
    assert (rig.id, "NotifyDisplayMessages", 5) not in csms.central.reports

    # DisplayMessageCtrlr.Enabled false: refused
    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [{
        "component": {"name": "DisplayMessageCtrlr"}, "variable": {"name": "Enabled"},
        "attributeValue": "false"}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert await set_message(rig, 20) == "Rejected"
    assert csms.violations(rig.id) == []


async def test_get_display_messages_is_paged_with_tbc(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    for mid in range(1, 24):
        assert await set_message(rig, mid, "InFront" if mid % 2 else "NormalCycle") == (
            "Accepted")
    assert await get_messages(rig, 7) == "Accepted"
    report = await csms.wait_report(rig.id, 7, action="NotifyDisplayMessages")
    assert [len(p["messageInfo"]) for p in report.pages] == [10, 10, 3]
    assert [p.get("tbc", False) for p in report.pages] == [True, True, False]
    assert [i["id"] for i in report.items("messageInfo")] == list(range(1, 24))
    assert await get_messages(rig, 8, priority="InFront") == "Accepted"
    report = await csms.wait_report(rig.id, 8, action="NotifyDisplayMessages")
    assert [i["id"] for i in report.items("messageInfo")] == list(range(1, 24, 2))
    assert [p.get("tbc", False) for p in report.pages] == [True, False]
    assert csms.violations(rig.id) == []


async def test_a_transaction_message_goes_with_it_and_an_expired_one_goes(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201(pilot="B")
    assert await set_message(rig, 1, "InFront", "while charging", state="Charging") == (
        "Accepted")
    assert await set_message(rig, 2, endDateTime=iso(datetime.now(UTC) + timedelta(
        seconds=1.5))) == "Accepted"
    await shown(rig, [2])
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    assert await set_message(rig, 3, "AlwaysFront", "your session", transactionId=tx_id) == (
        "Accepted")
    await rig.wait("relay_set", lambda p: p.closed is True)
    rig.relay(True)
    rig.pilot("C")
    await rig.status("Charging")
    during = await rig.wait("display", lambda p: {m.id for m in p.messages} >= {1, 3})
    assert during.messages[0].id == 3
    assert during.messages[0].transaction_ref == tx_id
    await shown(rig, [3, 1], timeout=5)  # message 2 reached its end time
    assert await get_messages(rig, 1, id=[2]) == "Unknown"  # removed, not only hidden
    rig.tap("TAG")  # the transaction ends: its message goes
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    await shown(rig, [])
    assert await get_messages(rig, 2, id=[3]) == "Unknown"
    assert await get_messages(rig, 3) == "Accepted"  # the Charging one stays, waiting
    report = await csms.wait_report(rig.id, 3, action="NotifyDisplayMessages")
    assert [i["id"] for i in report.items("messageInfo")] == [1]
    assert csms.violations(rig.id) == []


async def test_display_messages_survive_a_restart(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    later = iso(datetime.now(UTC) + timedelta(hours=1))
    assert await set_message(rig, 5, "AlwaysFront", "kept", endDateTime=later) == "Accepted"
    assert await set_message(rig, 6, "NormalCycle", "kept too") == "Accepted"
    await shown(rig, [5, 6])
    await rig.stop_gateway()
    rig.seen["display"].clear()
    await rig.start_gateway(ocpp_version="2.0.1")
    after = await shown(rig, [5, 6])
    assert [m.content for m in after.messages] == ["kept", "kept too"]
    assert after.messages[0].ends_at is not None
    await csms.wait_for(rig.id, "BootNotification", count=2)
    assert await get_messages(rig, 9) == "Accepted"
    report = await csms.wait_report(rig.id, 9, action="NotifyDisplayMessages")
    assert [(i["id"], i.get("endDateTime")) for i in report.items("messageInfo")] == [
        (5, later), (6, None)]
    assert csms.violations(rig.id) == []
