"""ChangeAvailability (OCPP 1.6 §5.2, issue 10 §2) against the real gateway and the dev central
system over a real WebSocket: it persists across a restart and a hard Reset, connector 0's
StatusNotification follows a scheduled change, and a connector made Operative stays Unavailable
while the station (connector 0) is Inoperative."""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig


async def online(rig: Rig, **settings: Any) -> None:
    await rig.start_gateway(**settings)
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)


async def charging(rig: Rig, tag: str = "TAG") -> None:
    rig.pilot("C")
    rig.tap(tag)
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)


def statuses(rig: Rig, connector: int, since: int = 0) -> list[str]:
    return [m.payload["status"] for m in rig.csms.received(rig.id, "StatusNotification")[since:]
            if m.payload["connectorId"] == connector]


def boots(rig: Rig) -> int:
    return len(rig.csms.received(rig.id, "BootNotification"))


async def after_boot(rig: Rig, boot: int) -> tuple[list[str], list[str]]:
    """Connector 0's and 1's statuses sent after the boot-th BootNotification."""
    await rig.csms.wait_for(rig.id, "BootNotification", count=boot)
    await rig.csms.wait_for(rig.id, "StatusNotification", count=2 * boot,
                            where=lambda p: p["connectorId"] == 1 or p["connectorId"] == 0)
    names = rig.csms.actions(rig.id)
    seen = [i for i, a in enumerate(names) if a == "BootNotification"][boot - 1]
    before = names[:seen].count("StatusNotification")
    return statuses(rig, 0, before), statuses(rig, 1, before)


async def test_connector_availability_survives_a_restart_and_a_hard_reset(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=1, type="Inoperative")) == {"status": "Accepted"}
    await rig.status("Unavailable")
    await rig.stop_gateway()
    await rig.start_gateway()
    zero, one = await after_boot(rig, 2)
    assert (zero, one) == (["Available"], ["Unavailable"])
    rig.pilot("C")
    rig.tap("TAG")  # not usable: no transaction
    await asyncio.sleep(0.3)
    assert csms.received(rig.id, "StartTransaction") == []
    assert await csms.send(rig.id, call.Reset(type="Hard")) == {"status": "Accepted"}
    assert rig._gw_task is not None
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)
    await rig.stop_gateway()
    await rig.start_gateway()  # what the supervisor does after a hard Reset
    zero, one = await after_boot(rig, 3)
    assert one == ["Unavailable"]
    assert csms.violations(rig.id) == []


async def test_station_availability_survives_a_restart(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=0, type="Inoperative")) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorId"] == 0 and p["status"] == "Unavailable")
    await rig.stop_gateway()
    await rig.start_gateway()
    zero, one = await after_boot(rig, 2)
    assert (zero, one) == (["Unavailable"], ["Unavailable"])
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=0, type="Operative")) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorId"] == 0 and p["status"] == "Available",
                        count=2)
    await rig.status("Available", count=2)
    assert csms.violations(rig.id) == []


async def test_scheduled_station_change_reports_connector_0_when_the_transaction_ends(
        rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    await charging(rig)
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=0, type="Inoperative")) == {"status": "Scheduled"}
    await asyncio.sleep(0.2)
    assert statuses(rig, 0)[-1] == "Available"  # not yet: the transaction runs
    rig.tap("TAG")
    await csms.wait_for(rig.id, "StopTransaction")
    zero = await csms.wait_for(rig.id, "StatusNotification", where=lambda p: (
        p["connectorId"] == 0 and p["status"] == "Unavailable"))
    assert zero["errorCode"] == "NoError"
    await rig.status("Unavailable")
    assert csms.violations(rig.id) == []


async def test_connector_made_operative_stays_unavailable_while_the_station_is_not(
        rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=0, type="Inoperative")) == {"status": "Accepted"}
    await rig.status("Unavailable")
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=1, type="Operative")) == {"status": "Accepted"}
    rig.pilot("C")
    rig.tap("TAG")
    await asyncio.sleep(0.3)
    assert csms.received(rig.id, "StartTransaction") == []
    assert statuses(rig, 1)[-1] == "Unavailable"
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=0, type="Operative")) == {"status": "Accepted"}
    await rig.status("Preparing")  # the EV plugged in meanwhile
    assert csms.violations(rig.id) == []
