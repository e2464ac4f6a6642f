"""The API's commands against the real gateway, simulated hardware and dev central system."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.conftest import api_settings, eventually, running_api
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import SimPlug

TAG = "04A1B2C3"


async def test_start_limit_stop_through_the_real_gateway(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    await services.start_charge_point(mosquitto, station, tmp_path / "data")
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    op_task = asyncio.create_task(operator.run())
    settings = api_settings(mosquitto, station, tmp_path, api_command_timeout_s=10)
    try:
        async with running_api(settings) as (client, _):
            path = f"/api/v1/stations/{station}/connectors/1"

            async def status_is(*wanted: str) -> bool:
                r = await client.get(path)
                return r.status_code == 200 and (r.json()["status"] or {}).get("status") in wanted

            await eventually(lambda: status_is("Available"), within_s=30)

            async def gateway_online() -> bool:
                # The connector status and the gateway's retained service status are two
                # messages: the second may reach the API a moment after the first.
                health = (await client.get("/api/v1/health")).json()
                return health["services"].get(station, {}).get("gateway") == "online"

            await eventually(gateway_online, within_s=10)

            # Nothing to stop yet: the gateway's state forbids it.
            r = await client.post(f"{path}/stop")
            assert r.status_code == 409, r.text
            assert r.json()["result"]["status"] == "Rejected"

            await operator.wait_connected(5)
            operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
            await eventually(lambda: status_is("Preparing"), within_s=15)
            r = await client.post(f"{path}/start", json={"id_tag": TAG})
            assert r.status_code == 200, (r.text, services.logs())
            assert r.json()["status"] == "Accepted"
            await eventually(lambda: status_is("Charging"), within_s=15)

            r = await client.post(f"{path}/current_limit", json={"amps": 10})
            assert r.status_code == 200, r.text

            async def limited() -> bool:
                charging = (await client.get(path)).json()["charging"]
                return charging is not None and charging["current_limit_a"] == 10

            await eventually(limited, within_s=10)

            async def energy_flows() -> bool:
                tx = (await client.get(path)).json()["transaction"]
                return tx is not None and tx["energy_wh"] > 0

            await eventually(energy_flows, within_s=15)
            r = await client.post(f"{path}/stop")
            assert r.status_code == 200, r.text

            async def recorded() -> bool:
                return (await client.get("/api/v1/sessions")).json()["total"] == 1

            await eventually(recorded, within_s=15)
            [session] = (await client.get("/api/v1/sessions")).json()["items"]
            assert session["id_tag"] == TAG
            assert session["energy_wh"] > 0
            assert session["stop_reason"] == "Local"  # stopped at the station, not by the CSMS
            assert (await client.get(path)).json()["transaction"] is None
    finally:
        op_task.cancel()
        await asyncio.gather(op_task, return_exceptions=True)
