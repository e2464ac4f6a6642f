"""Issue 10 §2, the link: the reconnect backoff starts again from its minimum once a connection
was accepted, and a normal shutdown or Reset closes the WebSocket with 1000 (not 1011)."""

from __future__ import annotations

import asyncio
import time

from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_protocol_ops import online


async def boots(rig: Rig) -> int:
    return len(rig.csms.received(rig.id, "BootNotification"))


async def test_backoff_resets_after_a_connection_that_was_up_then_dropped(rig: Rig) -> None:
    """After an outage long enough to grow the backoff to its maximum (3 s here), a later drop
    of a connection that was up reconnects at the minimum backoff (0.05 s), not at 3 s."""
    csms = rig.csms
    await online(rig, reconnect_min_s=0.05, reconnect_max_s=3.0)
    await csms.stop()
    await asyncio.sleep(4.0)  # attempts at ~0.05, 0.1, 0.2, 0.4, 0.8, 1.6 s: backoff now 3 s
    await csms.start()
    await csms.wait_for(rig.id, "BootNotification", count=2, timeout=8)
    await csms.wait_for(rig.id, "StatusNotification", count=2,
                        where=lambda p: p["connectorId"] == 1)
    # the connection is up; the central system drops it (a network blip)
    dropped = time.monotonic()
    await csms.central.disconnect(rig.id)
    await csms.wait_for(rig.id, "BootNotification", count=3, timeout=8)
    assert time.monotonic() - dropped < 1.0
    # and a Soft Reset after that comes back as fast
    assert await csms.send(rig.id, call.Reset(type="Soft")) == {"status": "Accepted"}
    reset = time.monotonic()
    await csms.wait_for(rig.id, "BootNotification", count=4, timeout=8)
    assert time.monotonic() - reset < 1.0
    assert csms.violations(rig.id) == []


async def test_soft_reset_closes_the_websocket_with_1000(rig: Rig) -> None:
    await online(rig)
    session = await rig.csms.wait_connected(rig.id)
    assert await rig.csms.send(rig.id, call.Reset(type="Soft")) == {"status": "Accepted"}
    await asyncio.wait_for(session._connection.wait_closed(), 5)
    assert session._connection.close_code == 1000
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    assert rig.csms.violations(rig.id) == []


async def test_hard_reset_closes_the_websocket_with_1000(rig: Rig) -> None:
    await online(rig)
    session = await rig.csms.wait_connected(rig.id)
    assert await rig.csms.send(rig.id, call.Reset(type="Hard")) == {"status": "Accepted"}
    await asyncio.wait_for(session._connection.wait_closed(), 5)
    assert session._connection.close_code == 1000
    assert rig.csms.violations(rig.id) == []


async def test_shutdown_closes_the_websocket_with_1000(rig: Rig) -> None:
    await online(rig)
    session = await rig.csms.wait_connected(rig.id)
    await rig.stop_gateway()  # as SIGTERM does
    await asyncio.wait_for(session._connection.wait_closed(), 5)
    assert session._connection.close_code == 1000
    assert rig.csms.violations(rig.id) == []
