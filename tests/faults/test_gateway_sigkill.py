"""The gateway SIGKILLed 20 times at random moments while drivers charge on two connectors
(docs/reliability.md, "Gateway SIGKILL and power cut").

Real processes: Mosquitto (the test's own), the hardware service in simulator mode, the gateway;
the dev CSMS in-process over a real WebSocket. Each kill comes a random time after the gateway's
process was started (so some land during its start-up, its BootNotification or the replay of
its outbox, others mid-transaction); the gateway is started again at once, as the supervisor
does. At the end every session has exactly one StartTransaction and one StopTransaction at the
central system, nothing is open there, and the gateway's outbox is empty.

`VOLTBUS_FAULT_KILLS` (default 20) and `VOLTBUS_FAULT_SEED` make the long variant:
`VOLTBUS_FAULT_KILLS=100 uv run pytest tests/faults/test_gateway_sigkill.py -s`.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.faults.stack import SEED, Account, Drivers, Stack, fault_seed, wait_until, wind_down
from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, wait_online

KILLS = int(os.environ.get("VOLTBUS_FAULT_KILLS", "20"))
# A quarter of the kills come during the gateway's start-up (0.2-1.5 s after its process
# started: imports, BootNotification, the replay of its outbox, PowerLoss stops), the others
# 0.2-2.5 s after it said `online`.
IN_START_UP = 0.25
START_UP_S = (0.2, 1.5)
UP_S = (0.2, 2.5)

pytestmark = [pytest.mark.system, pytest.mark.timeout(120 + 6 * KILLS)]


async def test_gateway_sigkilled_at_random_moments_loses_and_doubles_no_transaction_message(
        own_mosquitto: Broker, csms: Csms, services: ServiceGroup, station: str,
        tmp_path: Path) -> None:
    rng = fault_seed()
    stack = Stack(own_mosquitto, csms, services, station, tmp_path / "data")
    drivers = Drivers(own_mosquitto, station, 2, fault_seed(1))
    began = time.monotonic()
    stack.start("hardware", "gateway")
    kills_in_tx = 0
    kills_in_boot = 0
    try:
        async with drivers.running():
            await wait_online(own_mosquitto, station, ("hardware", "gateway"))
            await csms.wait_connected(station, timeout=10)
            for _ in range(KILLS):
                gateway = stack.procs["gateway"]
                if rng.random() < IN_START_UP:
                    await asyncio.sleep(rng.uniform(*START_UP_S))
                else:
                    await wait_until("the gateway online", lambda: drivers.seen.gateway_online, 20)
                    await asyncio.sleep(rng.uniform(*UP_S))
                kills_in_tx += bool(csms.central.open_transactions.get(station))
                kills_in_boot += not drivers.seen.gateway_online
                stack.kill_at_once("gateway")
                assert gateway.process is not None
                assert gateway.process.returncode == -9
                # its Will says offline (so the next wait sees this start's `online`, not the last)
                await wait_until("the gateway's Will", lambda: not drivers.seen.gateway_online, 10)
                stack.start("gateway")
            await wait_until("the gateway online after the last kill",
                             lambda: drivers.seen.gateway_online, 20)
            await asyncio.sleep(3.0)  # a last stretch of charging with a healthy gateway
            drain_s = await wind_down(stack, drivers)
            account = Account.of(csms, station)
    except BaseException:
        print(services.logs())
        raise
    account.check(drivers.seen)
    assert account.sessions() >= KILLS // 4, "too few sessions to mean anything"  # 9-25 seen
    assert stack.alive() == ["hardware", "gateway"]
    print(f"\n[gateway SIGKILL] seed {SEED}: {KILLS} kills ({kills_in_tx} with a transaction "
          f"open at the CSMS, {kills_in_boot} before the gateway said online), "
          f"{account.sessions()} sessions on 2 connectors: one transaction and one "
          f"StopTransaction each, 0 lost, 0 open ({len(account.starts)} StartTransaction, "
          f"{account.resent_starts()} re-sent identical); stop reasons "
          f"{dict(account.reasons())}; MeterValues {len(account.meter_values)} "
          f"({account.duplicated_meter_values()} sent twice); "
          f"{len(drivers.seen.taps)} cards tapped; other CSMS violations "
          f"{[f'{v.rule}: {v.detail}' for v in account.violations]}; wind-down {drain_s:.1f} s; "
          f"whole test {time.monotonic() - began:.1f} s")
