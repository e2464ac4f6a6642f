"""VOLTBUS_OCPP_VERSION=auto: the station offers `ocpp2.0.1` and `ocpp1.6` in the handshake and
speaks the one the dev central system selects (schema validation on, a real WebSocket): a session
in 1.6 against a central system that speaks only 1.6, in 2.0.1 against one that speaks only 2.0.1
(or both: the station prefers 2.0.1), and a switch between versions on a reconnect of the same
running station, each version with its own configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.csms import Csms, report_unseen_violations
from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig


@pytest.fixture
async def make_rig(mosquitto: Broker, station: str, tmp_path: Path,
                   request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """rig(subprotocols): a rig against a dev central system speaking only those."""
    made: list[Rig] = []

    async def make(subprotocols: tuple[str, ...]) -> Rig:
        csms = Csms(subprotocols=subprotocols)
        await csms.start()
        csms.behaviour.heartbeat_interval_s = 3600
        r = Rig(mosquitto, csms, station, tmp_path / "data")
        made.append(r)
        await r.start_buses()
        return r

    yield make
    for r in made:
        await r.close()
        if r.csms.running:
            await r.csms.stop()
        report_unseen_violations(r.csms, request.node.nodeid)


def offered(rig: Rig) -> str:
    """The Sec-WebSocket-Protocol header the station sent."""
    request = rig.csms.central.session(rig.id)._connection.request
    return str(request.headers["Sec-WebSocket-Protocol"])


async def tap_session(rig: Rig) -> str:
    """Plug, tap, unplug; the transaction's id as the central system saw it."""
    csms, version = rig.csms, rig.csms.central.version(rig.id)
    mark = {name: len(seen) for name, seen in rig.seen.items()}  # only what comes from now

    async def new(name: str, where: Callable[[Any], bool]) -> Any:
        return await rig.wait(name, where, count=1 + sum(
            1 for m in rig.seen[name][:mark[name]] if where(m.payload)))

    def status(value: str) -> Callable[[Any], bool]:
        return lambda p: p.status.value == value

    rig.pilot("B")
    await new("status", status("Preparing"))
    rig.tap("04A1B2C3")
    if version == "1.6":
        started = await csms.wait_for(rig.id, "StartTransaction")
        assert started["idTag"] == "04A1B2C3"
    else:
        started = await csms.wait_for(rig.id, "TransactionEvent",
                                      where=lambda p: p["eventType"] == "Started")
        assert started["idToken"]["idToken"] == "04A1B2C3"
    await new("relay_set", lambda p: p.closed is True)
    rig.relay(True)
    rig.pilot("C")
    await new("status", status("Charging"))
    tx = await new("transaction", lambda p: p is not None and p.transaction_ref is not None)
    rig.pilot("A")
    session = await new("session", lambda p: p.transaction_ref == tx.transaction_ref)
    assert session.stop_reason.value == "EVDisconnected"
    if version == "1.6":
        stopped = await csms.wait_for(rig.id, "StopTransaction", where=lambda p: str(
            p["transactionId"]) == tx.transaction_ref)
        assert stopped["reason"] == "EVDisconnected"
    else:
        ended = await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p[
            "eventType"] == "Ended" and p["transactionInfo"]["transactionId"] == tx.transaction_ref)
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    rig.relay(False)
    await new("status", status("Available"))
    return str(tx.transaction_ref)


@pytest.mark.parametrize(("speaks", "version"), [
    (("ocpp1.6",), "1.6"), (("ocpp2.0.1",), "2.0.1"), (("ocpp1.6", "ocpp2.0.1"), "2.0.1")],
    ids=["csms-1.6", "csms-2.0.1", "csms-both"])
async def test_auto_offers_both_and_speaks_what_the_central_system_selects(
        make_rig: object, speaks: tuple[str, ...], version: str) -> None:
    rig: Rig = await make_rig(speaks)  # type: ignore[operator]
    rig.meter(1000.0)
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="auto")
    await rig.csms.wait_for(rig.id, "BootNotification")
    assert offered(rig) == "ocpp2.0.1, ocpp1.6"
    assert rig.csms.central.version(rig.id) == version
    connection = await rig.wait("connection", lambda p: p.registration is not None)
    assert connection.registration.value == "Accepted"
    await tap_session(rig)
    assert rig.csms.violations(rig.id) == []


async def test_auto_switches_version_on_a_reconnect_with_each_versions_configuration(
        make_rig: object) -> None:
    """One running station: the central system speaks 2.0.1, then (after dropping the
    connection) only 1.6, then 2.0.1 again. Each session is whole in its version, and the
    heartbeat interval each boot answer set stays with its own version's configuration."""
    rig: Rig = await make_rig(("ocpp2.0.1",))  # type: ignore[operator]
    central = rig.csms.central
    rig.meter(1000.0)
    rig.pilot("A")
    central.behaviour.heartbeat_interval_s = 1234
    gateway = await rig.start_gateway(ocpp_version="auto")
    await rig.csms.wait_for(rig.id, "BootNotification")
    assert central.version(rig.id) == "2.0.1"
    first = await tap_session(rig)

    central.subprotocols = ("ocpp1.6",)
    central.behaviour.heartbeat_interval_s = 4321
    await central.disconnect(rig.id)
    boot16 = await rig.csms.wait_for(rig.id, "BootNotification",
                                     where=lambda p: "chargePointVendor" in p)  # 1.6's .req
    assert boot16["chargePointVendor"] == "voltbus"
    assert central.version(rig.id) == "1.6"
    second = await tap_session(rig)
    assert second.isdigit()  # 1.6's integer
    assert not first.isdigit()  # 2.0.1's UUID
    adapters = gateway.adapter.adapters  # type: ignore[attr-defined]
    assert gateway.config.heartbeat_interval_s == pytest.approx(4321 * 0.01)  # 1.6's key
    assert adapters["ocpp2.0.1"].config.heartbeat_interval_s == pytest.approx(1234 * 0.01)
    assert gateway.store.meta("ocpp_subprotocol") == "ocpp1.6"

    central.subprotocols = ("ocpp2.0.1",)
    await central.disconnect(rig.id)
    await rig.csms.wait_for(rig.id, "BootNotification", count=2,  # the second in 2.0.1
                            where=lambda p: "chargingStation" in p)
    assert central.version(rig.id) == "2.0.1"
    await tap_session(rig)
    assert gateway.store.meta("ocpp_subprotocol") == "ocpp2.0.1"
    assert rig.csms.violations(rig.id) == []
