"""The gateway and the dev central system as real processes: kill -9 mid-transaction and SIGTERM.

After SIGKILL the interrupted transaction is stopped with reason PowerLoss and meterStop read from
the retained meter topic; after a clean stop it is Reboot. No message lost, none sent twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig
from voltbus_common.devbroker import free_port, wait_for_port


class DevCsmsProcess:
    """`python -m voltbus_devcsms` on free ports."""

    def __init__(self) -> None:
        self.port, self.http_port = free_port(), free_port()
        env = {**os.environ, "VOLTBUS_DEVCSMS_PORT": str(self.port),
               "VOLTBUS_DEVCSMS_HTTP_PORT": str(self.http_port),
               "VOLTBUS_DEVCSMS_HEARTBEAT_S": "3600"}
        self.proc = subprocess.Popen([sys.executable, "-m", "voltbus_devcsms"], env=env)
        wait_for_port(self.port)
        wait_for_port(self.http_port)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def messages(self, station: str, action: str) -> list[dict]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}") as client:
            answer = await client.get(f"/chargers/{station}/messages", params={"action": action})
        return [m["payload"] for m in answer.json()]

    async def wait(self, station: str, action: str, count: int = 1,
                   timeout: float = 10,  # noqa: ASYNC109
                   where: Callable[[dict], bool] = lambda p: True) -> dict:
        async def poll() -> dict:
            while True:
                found = [m for m in await self.messages(station, action) if where(m)]
                if len(found) >= count:
                    return found[count - 1]
                await asyncio.sleep(0.05)
        return await asyncio.wait_for(poll(), timeout)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def devcsms_process() -> Iterator[DevCsmsProcess]:
    server = DevCsmsProcess()
    yield server
    server.stop()


class GatewayProcess:
    """`python -m voltbus_ocpp` for one station."""

    def __init__(self, broker: Broker, station: str, csms_url: str, data_dir: Path) -> None:
        self.env = {**os.environ, **broker.env("gateway"), "VOLTBUS_STATIONS": station,
                    "VOLTBUS_CSMS_URL": csms_url, "VOLTBUS_DATA_DIR": str(data_dir),
                    "VOLTBUS_TIME_SCALE": "0.01", "VOLTBUS_RECONNECT_MIN_S": "0.05",
                    "VOLTBUS_RECONNECT_MAX_S": "0.3",
                    "VOLTBUS_OCPP_CONFIG": json.dumps({"MeterValueSampleInterval": "20"})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "voltbus_ocpp"], env=self.env)

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(10)


@pytest.fixture
async def gateway_process(mosquitto: Broker, station: str, devcsms_process: DevCsmsProcess,
                          tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    gw = GatewayProcess(mosquitto, station, devcsms_process.url, tmp_path / "data")
    yield gw
    if gw.proc is not None and gw.proc.poll() is None:
        gw.signal(signal.SIGKILL)


async def session_started(rig: Rig, csms: DevCsmsProcess) -> dict:
    rig.meter(2000.0)
    rig.pilot("B")
    # Preparing: the gateway is on the bus (its first status can come before it subscribed)
    await csms.wait(rig.id, "StatusNotification", where=lambda p: p["status"] == "Preparing")
    rig.tap("04A1B2C3")
    start = await csms.wait(rig.id, "StartTransaction")
    rig.pilot("C")
    await rig.wait("relay_set", lambda p: p.closed is True)
    return start


@pytest.mark.parametrize(("sig", "reason"), [(signal.SIGKILL, "PowerLoss"),
                                             (signal.SIGTERM, "Reboot")])
async def test_gateway_stopped_mid_transaction_stops_it_on_restart(
        rig: Rig, devcsms_process: DevCsmsProcess, gateway_process: GatewayProcess,
        sig: int, reason: str) -> None:
    csms = devcsms_process
    gateway_process.start()
    await session_started(rig, csms)
    await csms.wait(rig.id, "MeterValues")
    code = gateway_process.signal(sig)
    assert code == (-9 if sig == signal.SIGKILL else 0)
    rig.meter(2345.0)  # the EV went on drawing while the gateway was down (retained)
    gateway_process.start()
    stop = await csms.wait(rig.id, "StopTransaction")
    assert stop["reason"] == reason
    assert stop["meterStop"] == 2345
    assert stop["transactionId"] == 1
    opened = await rig.wait("relay_set", lambda p: p.closed is False)
    assert opened.closed is False
    session = await rig.wait("session")
    assert session.stop_reason.value == reason
    assert len(await csms.messages(rig.id, "StartTransaction")) == 1
    assert len(await csms.messages(rig.id, "BootNotification")) == 2
    await asyncio.sleep(0.2)
    assert len(await csms.messages(rig.id, "StopTransaction")) == 1


async def test_one_process_serves_several_stations(
        mosquitto: Broker, devcsms_process: DevCsmsProcess, station: str,
        tmp_path: Path) -> None:
    stations = [f"{station}a", f"{station}b"]
    gw = GatewayProcess(mosquitto, ",".join(stations), devcsms_process.url, tmp_path / "d")
    gw.start()
    try:
        for sid in stations:
            boot = await devcsms_process.wait(sid, "BootNotification", timeout=30)
            assert boot["chargePointSerialNumber"] == sid
            await devcsms_process.wait(sid, "StatusNotification")
        assert sorted(p.name for p in (tmp_path / "d" / "gateway").iterdir()) == stations
    finally:
        assert gw.signal(signal.SIGTERM) == 0


async def test_kill_9_during_an_offline_transaction_loses_nothing(
        rig: Rig, mosquitto: Broker, tmp_path: Path) -> None:
    """Offline start, SIGKILL, restart still offline, then the central system returns: it gets
    the StartTransaction and a PowerLoss StopTransaction for the same transaction, once each."""
    csms = rig.csms
    gw = GatewayProcess(mosquitto, rig.id, csms.url, tmp_path / "gw")
    gw.env["VOLTBUS_OCPP_CONFIG"] = json.dumps({"MeterValueSampleInterval": "20",
                                                "AllowOfflineTxForUnknownId": "true"})
    rig.meter(5000.0)
    rig.pilot("B")
    gw.start()
    try:
        await csms.wait_for(rig.id, "StatusNotification", timeout=10)
        await csms.stop()
        await rig.wait("connection", lambda p: p.connected is False, timeout=10)
        rig.tap("OFFLINE1")
        await rig.wait("relay_set", lambda p: p.closed is True)
        rig.meter(5100.0)
        await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 100.0)
        await asyncio.sleep(0.3)  # a sample or two queued
        assert await asyncio.to_thread(gw.signal, signal.SIGKILL) == -9
        rig.meter(5150.0)
        gw.start()
        await rig.wait("session", timeout=10)  # stopped (PowerLoss) while still offline
        await csms.start()
        stop = await csms.wait_for(rig.id, "StopTransaction", timeout=10)
        starts = csms.received(rig.id, "StartTransaction")
        assert [s.payload["idTag"] for s in starts] == ["OFFLINE1"]
        assert starts[0].payload["meterStart"] == 5000
        assert (stop["reason"], stop["meterStop"], stop["transactionId"]) == ("PowerLoss", 5150,
                                                                               1)
        order = [m.action for m in csms.received(rig.id)
                 if m.action in ("StartTransaction", "MeterValues", "StopTransaction")]
        assert order[0] == "StartTransaction"
        assert order[-1] == "StopTransaction"
        await asyncio.sleep(0.3)
        assert len(csms.received(rig.id, "StopTransaction")) == 1
    finally:  # the central system runs in this event loop: do not block it while waiting
        if gw.proc is not None and gw.proc.poll() is None:
            assert await asyncio.to_thread(gw.signal, signal.SIGTERM) == 0


@pytest.mark.parametrize(("env", "message"), [
    ({"VOLTBUS_OCPP_CONFIG": '{"MeterValueSampleInterval": "often"}'},
     "MeterValueSampleInterval='often': expected an integer"),
    ({"VOLTBUS_OCPP_CONFIG": '{"NoSuchKey": "1"}'}, "unknown OCPP configuration key"),
    ({"VOLTBUS_CSMS_URL": "http://example.org"}, "VOLTBUS_CSMS_URL"),
    ({"VOLTBUS_CONNECTORS": "0"}, "VOLTBUS_CONNECTORS"),
])
def test_invalid_settings_stop_start_up_with_a_readable_message(
        tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "voltbus_ocpp"], capture_output=True, text=True,
                          env={**os.environ, "VOLTBUS_DATA_DIR": str(tmp_path), **env},
                          timeout=30, check=False)
    assert done.returncode == 2
    assert message in done.stderr


async def test_meter_stop_after_a_kill_is_not_below_the_last_meter_values(
        rig: Rig, mosquitto: Broker, tmp_path: Path) -> None:
    """After a power cut the restored broker hands back a meter reading from its last autosave,
    older than the last MeterValues of the transaction: the PowerLoss meterStop must not go below
    it (the power-cut suite's meter-register-decreased; meterStop was the stale reading)."""
    csms = rig.csms
    gw = GatewayProcess(mosquitto, rig.id, csms.url, tmp_path / "gw")
    rig.meter(7000.0)
    rig.pilot("B")
    gw.start()
    try:
        await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] ==
                            "Preparing", timeout=10)
        rig.tap("04A1B2C3")
        await csms.wait_for(rig.id, "StartTransaction", timeout=10)
        rig.pilot("C")
        rig.meter(7250.0)
        sent = await csms.wait_for(rig.id, "MeterValues", where=lambda p: any(
            v.get("measurand") == "Energy.Active.Import.Register" and float(v["value"]) == 7250
            for mv in p["meterValue"] for v in mv["sampledValue"]), timeout=10)
        assert sent["transactionId"] == 1
        await asyncio.sleep(0.1)  # its record on disk
        assert await asyncio.to_thread(gw.signal, signal.SIGKILL) == -9
        rig.meter(7100.0)  # what a broker restored from an older save holds (retained)
        gw.start()
        stop = await csms.wait_for(rig.id, "StopTransaction", timeout=15)
    finally:  # the central system runs in this event loop: do not block it while waiting
        if gw.proc is not None and gw.proc.poll() is None:
            assert await asyncio.to_thread(gw.signal, signal.SIGTERM) == 0
    assert (stop["reason"], stop["meterStop"]) == ("PowerLoss", 7250)
    assert csms.violations(rig.id, "meter-register-decreased") == []
