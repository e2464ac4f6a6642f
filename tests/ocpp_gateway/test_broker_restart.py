"""The broker restarts mid-session: the gateway keeps the transaction and carries on."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig


async def test_broker_restart_mid_session(own_mosquitto: Broker, csms: Csms, station: str,
                                          tmp_path: Path) -> None:
    csms.behaviour.heartbeat_interval_s = 3600
    rig = Rig(own_mosquitto, csms, station, tmp_path / "data")
    await rig.start_buses()
    try:
        rig.meter(300.0)
        rig.pilot("C")
        await rig.start_gateway()
        await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)
        rig.tap("TAG")
        await csms.wait_for(rig.id, "StartTransaction")
        await rig.wait("relay_set", lambda p: p.closed is True)

        own_mosquitto.restart()
        assert rig.gateway is not None
        await rig.gateway.bus.wait_connected(10)
        await rig.hw.wait_connected(10)
        await rig.op.wait_connected(10)

        rig.meter(450.0)
        await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 150.0)
        rig.tap("TAG")
        stop = await csms.wait_for(rig.id, "StopTransaction")
        assert stop["meterStop"] == 450
        assert (await rig.wait("relay_set", lambda p: p.closed is False)).closed is False
        assert len(csms.received(rig.id, "StartTransaction")) == 1
    finally:
        await rig.close()
