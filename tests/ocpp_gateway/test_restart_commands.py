"""A gateway stopped and started again as a real process answers the bus commands.

A previous helper saw, in an unlanded test, a gateway restarted under ServiceGroup answer no
command (`stop`, `change_availability`) while OCPP and the statuses worked. It does answer: that
test waited for "the gateway back" on statuses it had seen before the stop, so Home Assistant
pressed while the new process was still starting (~3 s) and the command, not retained, reached
nobody; a real HA shows the buttons unavailable then (the gateway's status is `offline`).
`ServiceGroup.restart` waits for the new process's `online`. Real processes (dev central
system, simulated hardware, gateway), the real broker, commands as the `homeassistant` user.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from tests.homeassistant.test_with_real_gateway import eventually
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus
from voltbus_common.models import CommandResult, GatewayCommand, OcppConnectorStatus, utcnow

_IDS = itertools.count()


async def test_a_restarted_gateway_process_answers_commands(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    await services.start_charge_point(mosquitto, station, tmp_path / "data")
    results: asyncio.Queue[CommandResult] = asyncio.Queue()
    statuses: dict[int, OcppConnectorStatus] = {}

    async def on_result(msg: Received[CommandResult]) -> None:
        assert msg.payload is not None
        await results.put(msg.payload)

    async def on_status(msg: Received[OcppConnectorStatus]) -> None:
        if msg.payload is not None:
            statuses[msg.connector] = msg.payload

    ha = Bus(mosquitto.settings("homeassistant", stations=[station]), station=station,
             service=None)
    ha.on(ch.COMMAND_RESULT, on_result)
    ha.on(ch.OCPP_STATUS, on_status)

    async def command(connector: int = 1, **fields: object) -> CommandResult:
        request_id = f"r{next(_IDS)}"
        ha.publish(ch.COMMAND, GatewayCommand.model_validate(
            {"request_id": request_id, **fields}), connector=connector)
        while True:
            result = await asyncio.wait_for(results.get(), 10)
            if result.request_id == request_id:
                return result

    async def walk() -> None:
        stop = await command(command="stop")  # nothing to stop: answered, and refused
        assert (stop.command, stop.status) == (CommandName.STOP, CommandStatus.REJECTED)
        for connector in (1, 0):  # the connector, then the station
            for operative in (False, True):
                answer = await command(connector, command="change_availability",
                                       operative=operative)
                assert (answer.command, answer.status) == (CommandName.CHANGE_AVAILABILITY,
                                                           CommandStatus.ACCEPTED)

    task = asyncio.create_task(ha.run())
    try:
        await ha.wait_connected(5)
        await walk()
        gateway = next(p for p in services.started if p.name == "gateway")
        restarted = utcnow()
        await services.restart(gateway, mosquitto, station)  # SIGTERM, a new process
        try:
            await walk()
        except (TimeoutError, AssertionError) as exc:
            raise AssertionError(f"no answer after the restart: {exc!r}\n"
                                 + services.logs()) from exc
        await eventually(lambda: statuses[1].ts > restarted
                         and statuses[1].status is ConnectorStatus.AVAILABLE, 10,
                         "the new process's status")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
