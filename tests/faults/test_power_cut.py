"""Power cuts of the whole stack while drivers charge on two connectors (docs/reliability.md,
"Gateway SIGKILL and power cut").

Real processes: Mosquitto (the test's own), the hardware service in simulator mode, the gateway,
the recorder, the API, the energy manager and InfluxDB (the test's own), all SIGKILLed back to
back (the broker with them), then started again, `VOLTBUS_FAULT_CUTS` times (default 3); InfluxDB
comes back last, after the services, so the recorder also starts against a database that is
down. The dev CSMS (in-process, real WebSocket) is the far side and stays up. The simulator
forgets its EVs with its process (a real EVSE board would report the pilot again): the drivers
plug in again.

At the end: every session has exactly one StartTransaction and one StopTransaction at the central
system, nothing is open there, the gateway's outbox is empty; every meter reading in InfluxDB is
one the hardware published, with its value, stored once; readings are lost only around a cut
(queued in the broker's memory since its last autosave, or received by the recorder and not yet
committed, docs/influxdb.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.stack import SEED, Account, Drivers, Stack, fault_seed, wait_until, wind_down
from tests.fixtures.csms import Csms
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from tests.recorder.helpers import ns
from voltbus_common.broker import AUTOSAVE_INTERVAL_S
from voltbus_common.devbroker import free_port, wait_for_port

CUTS = int(os.environ.get("VOLTBUS_FAULT_CUTS", "3"))
UP_S = (1.0, 4.0)  # from "every service online" to the cut
# A reading can be lost only if it was published this long before a cut, or after it (docs:
# in flight, or received by the recorder and not yet committed: 0.1 s; the broker's queue for
# a persistent session is in memory between its autosaves).
LOSS_WINDOW_S = 1.0
SERVICES = ("hardware", "gateway", "recorder", "api", "energy")

# paho logs ERROR for the connection the dying broker resets; the clients reconnect (asserted).
pytestmark = [pytest.mark.system, pytest.mark.expected_errors,
              pytest.mark.timeout(150 + 40 * CUTS)]


def _stored(influx: InfluxServer, db: str, station: str) -> list[tuple[int, int, float]]:
    rows = influx.rows(f"SELECT energy_wh FROM meter WHERE station='{station}' GROUP BY *",
                       db=db)
    return [(int(r["connector"]), int(r["time"]), float(r["energy_wh"])) for r in rows]


async def test_power_cuts_of_the_whole_stack_lose_and_double_no_transaction_message(
        own_mosquitto: Broker, csms: Csms, own_influxdb: InfluxServer, services: ServiceGroup,
        station: str, tmp_path: Path) -> None:
    influxdb = own_influxdb
    rng = fault_seed(100)
    database = influxdb.create_database(f"cut_{station.lower()}")
    influx = {"VOLTBUS_INFLUX_API": "1", "VOLTBUS_INFLUX_URL": influxdb.url,
              "VOLTBUS_INFLUX_DATABASE": database}
    api_port = free_port()
    stack = Stack(own_mosquitto, csms, services, station, tmp_path / "data", influx=influx,
                  api_port=api_port)
    drivers = Drivers(own_mosquitto, station, 2, fault_seed(101))
    began = time.monotonic()
    cuts: list[float] = []  # epoch seconds of each cut
    restart_s: list[float] = []
    slowest: list[str] = []
    broker_s: list[float] = []
    try:
        async with drivers.running():
            stack.start()
            await drivers.online_since(began, SERVICES)
            await asyncio.to_thread(wait_for_port, api_port, 40)
            first_online = time.time()  # readings before the recorder subscribed reach nobody
            # Mosquitto saves its sessions every 5 s (autosave_interval): a cut sooner after the
            # recorder's very first subscribe restores a broker without its session, which then
            # queues nothing for it until it subscribes again (measured: 0.8 s of readings lost).
            await asyncio.sleep(AUTOSAVE_INTERVAL_S + 1.0)
            for _ in range(CUTS):
                await asyncio.sleep(rng.uniform(*UP_S))
                cuts.append(time.time())
                stack.kill_at_once()
                own_mosquitto.kill()
                influxdb.kill()
                assert not stack.alive()
                await wait_until("the observer cut off", lambda: not drivers.bus.connected.is_set(),
                                 10)
                power_on = time.monotonic()
                await asyncio.to_thread(own_mosquitto.start)
                broker_s.append(time.monotonic() - power_on)
                # the observer is back before the services, so it sees their `online` live
                await drivers.bus.wait_connected(15)
                power_on = time.monotonic()
                stack.start()
                restart_s.append(await drivers.online_since(power_on, SERVICES) - power_on)
                await asyncio.to_thread(influxdb.start)  # the recorder spools until it answers
                slowest.append(" ".join(f"{n} {drivers.seen.live_online[n] - power_on:.1f}"
                                        for n in SERVICES))
            await asyncio.sleep(3.0)  # charging on with a healthy stack
            drain_s = await wind_down(stack, drivers, timeout=40)
            account = Account.of(csms, station)
            last_published = time.time()
            await asyncio.sleep(1.0)  # the recorder's last batch
            await wait_until("the readings in InfluxDB", lambda: len(_stored(
                influxdb, database, station)) >= len(drivers.seen.meter) * 0.9, 20, every=0.5)
            stored = _stored(influxdb, database, station)
    except BaseException:
        print(services.logs())
        print(f"cuts at {cuts}")
        raise
    account.check(drivers.seen)
    assert account.sessions() >= CUTS, "too few sessions to mean anything"

    # Meter readings: each stored once, each one the hardware published, lost only at a cut.
    doubled = [k for k, n in Counter((c, t) for c, t, _ in stored).items() if n > 1]
    assert not doubled, f"stored twice: {doubled[:5]}"
    published = {(c, ns(r.ts)): r.energy_wh for c, r in drivers.seen.meter
                 if first_online <= r.ts.timestamp() < last_published}
    kept = {(c, t): e for c, t, e in stored}
    altered = [(k, e, published[k]) for k, e in kept.items()
               if k in published and abs(published[k] - e) > 1e-6]
    assert not altered, altered[:5]
    lost = sorted(set(published) - set(kept))
    near_a_cut = [k for k in lost if any(cut - LOSS_WINDOW_S <= k[1] / 1e9 <= cut + 0.5
                                         for cut in cuts)]
    far = [(k[0], datetime.fromtimestamp(k[1] / 1e9, UTC).isoformat()) for k in lost
           if k not in near_a_cut]
    at = [datetime.fromtimestamp(c, UTC).isoformat() for c in cuts]
    assert not far, f"{len(far)} readings lost away from the cuts at {at}: {far[:10]}"
    unseen = len(set(kept) - set(published))  # the observer was cut off too
    print(f"\n[power cut] seed {SEED}: {CUTS} cuts of 6 processes, InfluxDB and the broker, "
          f"broker back in {', '.join(f'{s:.2f}' for s in broker_s)} s, then from the "
          f"services' start to "
          f"every one online {', '.join(f'{s:.1f}' for s in restart_s)} s (each: "
          f"{'; '.join(slowest)}); "
          f"{account.sessions()} sessions: one transaction and one StopTransaction each, 0 "
          f"lost, 0 open ({len(account.starts)} StartTransaction, {account.resent_starts()} "
          f"re-sent identical); stop reasons "
          f"{dict(account.reasons())}; MeterValues {len(account.meter_values)} "
          f"({account.duplicated_meter_values()} sent twice); other CSMS violations "
          f"{[f'{v.rule}: {v.detail}' for v in account.violations]}; meter readings: "
          f"{len(published)} seen on the bus, {len(stored)} in InfluxDB, 0 twice, "
          f"{len(lost)} lost (all within {LOSS_WINDOW_S} s before a cut), {unseen} stored that "
          f"the observer missed; wind-down {drain_s:.1f} s; whole test "
          f"{time.monotonic() - began:.1f} s")
