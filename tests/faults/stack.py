"""The charge point's stack as real processes, simulated drivers on its connectors, and the
accounting of what the central system received: the gateway SIGKILL and power-cut suites
(docs/reliability.md, "Gateway SIGKILL and power cut").

Processes are started with tests/fixtures/services.py (`ServiceGroup`), the broker is the test's
own Mosquitto (`own_mosquitto`), the central system the dev CSMS in-process over a real WebSocket
(`csms`, the `ocpp` package's schema validation on). Randomness (when to kill, how long a driver
charges, how it stops) comes from one seeded `random.Random`: `VOLTBUS_FAULT_SEED` picks another
schedule; process timing still differs between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, ServiceProcess
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ConnectorStatus, ServiceState
from voltbus_common.models import GatewayCommand, MeterReading, SimPlug, SimTap

SEED = int(os.environ.get("VOLTBUS_FAULT_SEED", "15"))
# The transaction rules of the dev CSMS (services/dev-csms/voltbus_devcsms/rules.py): a message
# lost, sent twice or out of its transaction's life shows as one of these.
# (A StartTransaction re-sent the same, by a gateway killed between the answer and storing it,
# is counted apart: `resent_starts`.)
TRANSACTION_RULES = ("transaction-already-ended",
                     "unknown-transaction", "connector-has-transaction", "stop-before-start",
                     "meter-stop-below-start")


def fault_seed(offset: int = 0) -> random.Random:
    """The suite's random source (the seed is printed with the figures)."""
    return random.Random(SEED + offset)


class Stack:
    """One station with `connectors` simulated connectors: hardware (simulator), gateway and,
    when asked, recorder, API and energy manager, each `python -m voltbus_<name>`."""

    def __init__(self, broker: Broker, csms: Csms, services: ServiceGroup, station: str,
                 data: Path, *, connectors: int = 2, influx: dict[str, str] | None = None,
                 api_port: int | None = None) -> None:
        self.broker, self.csms, self.services = broker, csms, services
        self.station, self.data, self.connectors = station, data, connectors
        base = {"VOLTBUS_STATIONS": station, "VOLTBUS_DATA_DIR": str(data),
                "VOLTBUS_CONNECTORS": str(connectors), "VOLTBUS_LOG_LEVEL": "INFO"}
        self.env: dict[str, dict[str, str]] = {
            "hardware": {**base, **broker.env("hardware"), "VOLTBUS_METER_INTERVAL_S": "0.2",
                         "VOLTBUS_POLL_INTERVAL_S": "0.05"},
            "gateway": {**base, **broker.env("gateway"), "VOLTBUS_CSMS_URL": csms.url,
                        "VOLTBUS_RECONNECT_MIN_S": "0.05", "VOLTBUS_RECONNECT_MAX_S": "0.3",
                        "VOLTBUS_RELAY_GRACE_S": "1.0",
                        "VOLTBUS_OCPP_CONFIG": json.dumps({"MeterValueSampleInterval": "1"})},
        }
        if influx is not None:
            self.env["recorder"] = {**base, **broker.env("recorder"), **influx,
                                    "VOLTBUS_RECORDER_BATCH_MAX_AGE_S": "0.2"}
        if api_port is not None:
            token = data / "api_token"
            token.parent.mkdir(parents=True, exist_ok=True)
            token.write_text("fault-suite-admin-token-0123456789")
            self.env["api"] = {**base, **broker.env("api"), **(influx or {}),
                               "VOLTBUS_API_PORT": str(api_port),
                               "VOLTBUS_API_ADMIN_TOKEN_FILE": str(token)}
            self.env["energy"] = {**base, **broker.env("energy"),
                                  "VOLTBUS_ENERGY_CONNECTORS": str(connectors)}
        self.procs: dict[str, ServiceProcess] = {}

    def start(self, *names: str) -> None:
        """Start (or start again) the named services; all of them when none is named."""
        for name in names or tuple(self.env):
            proc = self.procs.get(name)
            if proc is None:
                self.procs[name] = self.services.start(name, self.env[name])
            else:
                proc.start()

    def kill_at_once(self, *names: str) -> None:
        """SIGKILL the named processes back to back (a power cut), then reap them."""
        procs = [self.procs[n] for n in names or tuple(self.procs)]
        for proc in procs:
            if proc.alive():
                os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            assert proc.process is not None
            proc.process.wait()

    def gateway_db(self) -> Path:
        """The gateway's station store (outbox, running transactions)."""
        return self.data / "gateway" / self.station / "state.sqlite"

    def store_rows(self) -> tuple[int, int]:
        """(rows in the outbox, transactions recorded as running) in the gateway's store."""
        path = self.gateway_db()
        if not path.exists():
            return (0, 0)
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
            return (int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]),
                    int(db.execute("SELECT COUNT(*) FROM running").fetchone()[0]))

    def alive(self) -> list[str]:
        """The services whose process is running."""
        return [n for n, p in self.procs.items() if p.alive()]


@dataclass
class Lane:
    """One connector as a driver sees it on the bus, and what the driver means to do."""

    connector: int
    plugged: bool = False  # what the driver did last (the simulator may have forgotten it)
    status: ConnectorStatus | None = None
    tx_tag: str | None = None  # the running transaction's idTag the gateway published
    tx_since: float = 0.0
    stop_at: float | None = None
    next_action: float = 0.0


@dataclass
class Observed:
    """What the bus showed during the run."""

    tags_in_tx: set[str] = field(default_factory=set)  # idTags the gateway said were charging
    sessions: list[Any] = field(default_factory=list)  # SessionSummary, as published
    gateway_online: bool = False
    gateway_online_at: float = 0.0
    meter: list[tuple[int, MeterReading]] = field(default_factory=list)
    taps: list[str] = field(default_factory=list)
    # service -> when its `online` last came live (not retained: a broker restored after a
    # crash hands back the `online` of services that are not running yet)
    live_online: dict[str, float] = field(default_factory=dict)


class Drivers:
    """A driver per connector: plug in, tap a card never used before, charge a while, stop (a
    stop command or unplugging the EV), unplug, again. Each acts on what the bus shows, so a
    process killed at any moment only delays it; a card is never tapped twice, so each
    transaction at the central system has an idTag of its own."""

    HOLD_S = (0.3, 1.5)

    def __init__(self, broker: Broker, station: str, connectors: int,
                 rng: random.Random) -> None:
        self.station, self.rng = station, rng
        self.bus = Bus(broker.settings("operator", stations=[station]), station=station,
                       service=None)
        self.lanes = {c: Lane(c) for c in range(1, connectors + 1)}
        self.seen = Observed()
        self.tap_free_at = 0.0
        self.tags = 0
        self.driving = True
        self.bus.on(ch.OCPP_STATUS, self._status)
        self.bus.on(ch.TRANSACTION, self._tx)
        self.bus.on(ch.SESSION, self._session)
        self.bus.on(ch.METER, self._meter)
        self.bus.on(ch.SERVICE_STATUS, self._service, service="gateway")
        self.bus.on(ch.SERVICE_STATUS, self._live)
        self.bus.on(ch.SERVICE_STATUS, self._live, station="site")

    async def _status(self, msg: Received[Any]) -> None:
        lane = self.lanes.get(msg.connector)
        if lane is not None and msg.payload is not None:
            lane.status = msg.payload.status

    async def _tx(self, msg: Received[Any]) -> None:
        lane = self.lanes.get(msg.connector)
        if lane is None:
            return
        tag = None if msg.payload is None else msg.payload.id_tag
        if tag is not None:
            self.seen.tags_in_tx.add(tag)
        if tag != lane.tx_tag:
            lane.tx_tag, lane.tx_since, lane.stop_at = tag, time.monotonic(), None

    async def _session(self, msg: Received[Any]) -> None:
        self.seen.sessions.append(msg.payload)

    async def _meter(self, msg: Received[Any]) -> None:
        if msg.payload is not None and not msg.retain:
            self.seen.meter.append((msg.connector, msg.payload))

    async def _service(self, msg: Received[Any]) -> None:
        online = msg.payload is ServiceState.ONLINE
        if online and not self.seen.gateway_online:
            self.seen.gateway_online_at = time.monotonic()
        self.seen.gateway_online = online

    async def _live(self, msg: Received[Any]) -> None:
        if msg.payload is ServiceState.ONLINE and not msg.retain:
            self.seen.live_online[msg.args["service"]] = time.monotonic()

    async def online_since(self, since: float, services: tuple[str, ...],
                           timeout: float = 40.0) -> float:  # noqa: ASYNC109
        """Wait until each service said `online` live after `since` (a time.monotonic());
        returns when the last one did."""
        def up() -> bool:
            return all(self.seen.live_online.get(s, 0.0) > since for s in services)
        await wait_until(f"{services} online", up, timeout, every=0.05)
        return max(self.seen.live_online[s] for s in services)

    def plug(self, lane: Lane, plugged: bool) -> None:
        self.bus.publish(ch.SIM_PLUG, SimPlug(plugged=plugged), connector=lane.connector)
        lane.plugged = plugged
        lane.next_action = time.monotonic() + 0.25

    def _step(self, lane: Lane, now: float) -> None:
        if now < lane.next_action:
            return
        status = lane.status
        if lane.tx_tag is not None:
            if lane.stop_at is None:
                lane.stop_at = lane.tx_since + self.rng.uniform(*self.HOLD_S)
            if now >= lane.stop_at:
                if self.rng.random() < 0.3:  # the driver unplugs without stopping first
                    self.plug(lane, False)
                else:
                    self.bus.publish(ch.COMMAND, GatewayCommand(command="stop"),
                                     connector=lane.connector)
                lane.stop_at = now + 2.0  # not stopped by then (gateway down): again
            return
        if not lane.plugged:
            if self.driving:
                self.plug(lane, True)
        elif status is ConnectorStatus.FINISHING or (
                not self.driving and status is not ConnectorStatus.AVAILABLE):
            self.plug(lane, False)
        elif status is ConnectorStatus.AVAILABLE and now - lane.next_action > 3.0:
            self.plug(lane, True)  # the plug went unseen (a simulator restarted): again
        elif status is ConnectorStatus.PREPARING and self.driving and now >= self.tap_free_at:
            self.tags += 1
            tag = f"K{self.rng.randrange(16**6):06X}{self.tags:04d}"
            self.seen.taps.append(tag)
            self.bus.publish(ch.SIM_TAP, SimTap(id_tag=tag))
            self.tap_free_at = now + 0.6  # one card at a time at the station's one reader
            lane.next_action = now + 3.0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The drivers' bus and their loop run inside the block."""
        tasks = [asyncio.create_task(self.bus.run()), asyncio.create_task(self.run())]
        try:
            await self.bus.wait_connected(10)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self) -> None:
        """Drive until cancelled."""
        while True:
            now = time.monotonic()
            for lane in self.lanes.values():
                self._step(lane, now)
            await asyncio.sleep(0.05)

    def idle(self) -> bool:
        """Every connector without a transaction and unplugged (after wind_down)."""
        return all(lane.tx_tag is None and not lane.plugged
                   and lane.status is ConnectorStatus.AVAILABLE for lane in self.lanes.values())


@dataclass
class Account:
    """What the central system got for the station, against what the bus showed."""

    starts: list[dict[str, Any]]
    start_at: list[float]  # when each StartTransaction arrived (epoch s)
    stops: list[dict[str, Any]]
    transactions: dict[int, Any]
    open_ids: list[int]
    violations: list[Any]
    meter_values: list[dict[str, Any]]

    @classmethod
    def of(cls, csms: Csms, station: str) -> Account:
        central = csms.central
        return cls(
            starts=[m.payload for m in csms.received(station, "StartTransaction")],
            start_at=[m.at.timestamp() for m in csms.received(station, "StartTransaction")],
            stops=[m.payload for m in csms.received(station, "StopTransaction")],
            transactions={i: t for i, t in central.transactions16.items()
                          if t.station == station},
            open_ids=list(central.open_transactions.get(station, [])),
            violations=csms.violations(station),
            meter_values=[m.payload for m in csms.received(station, "MeterValues")],
        )

    def duplicated_starts(self) -> list[str]:
        """idTags with more than one transaction at the central system (a session counted
        twice), or StartTransactions of one idTag that differ (not a re-send)."""
        twice = [t for t, n in Counter(t.id_tag for t in self.transactions.values()).items()
                 if n > 1]
        differ = [t for t in {s["idTag"] for s in self.starts}
                  if len({json.dumps(s, sort_keys=True) for s in self.starts
                          if s["idTag"] == t}) > 1]
        return sorted(set(twice) | set(differ))

    def resent_starts(self) -> int:
        """StartTransactions sent again, identical: the gateway was killed after the central
        system answered and before the answer was stored (OCPP 1.6 cannot close that window;
        the central system answers with the same transactionId, as SteVe does)."""
        return len(self.starts) - len({s["idTag"] for s in self.starts})

    def duplicated_stops(self) -> list[int]:
        return [t for t, n in Counter(s["transactionId"] for s in self.stops).items() if n > 1]

    def unstopped(self) -> list[int]:
        stopped = {s["transactionId"] for s in self.stops}
        return sorted(set(self.transactions) - stopped)

    def lost_starts(self, seen: Observed) -> list[str]:
        """idTags the gateway published as a running transaction that never reached the CSMS."""
        return sorted(seen.tags_in_tx - {s["idTag"] for s in self.starts})

    def duplicated_meter_values(self) -> int:
        """MeterValues of a transaction sent again (same transaction, same sample time)."""
        keys = Counter((m.get("transactionId"), m["connectorId"],
                        tuple(v["timestamp"] for v in m["meterValue"]))
                       for m in self.meter_values if m.get("transactionId") is not None)
        return sum(n - 1 for n in keys.values())

    def transaction_violations(self) -> list[Any]:
        return [v for v in self.violations if v.rule in TRANSACTION_RULES]

    def sessions(self) -> int:
        """Transactions at the central system, each asserted to be one session (one idTag)."""
        return len(self.transactions)

    def reasons(self) -> Counter[str]:
        return Counter(s.get("reason") or "Local" for s in self.stops)

    def check(self, seen: Observed) -> None:
        """Assert: each session one transaction and one StopTransaction, none lost or open."""
        problems = self.problems(seen)
        assert not problems, problems
        assert len({s["idTag"] for s in self.starts}) == self.sessions() == len(self.stops)

    def problems(self, seen: Observed) -> dict[str, Any]:
        """Everything that breaks 'each session exactly one Start and one Stop, none open'."""
        twice = self.duplicated_starts()
        found = {"a session counted twice (idTag)": [
                     (s, at) for s, at in zip(self.starts, self.start_at, strict=True)
                     if s["idTag"] in twice],
                 "re-sent StartTransaction without its started-twice record":
                     [] if self.resent_starts() == sum(
                         v.rule == "transaction-started-twice" for v in self.violations)
                     else [self.resent_starts()],
                 "duplicated StopTransaction (id)": self.duplicated_stops(),
                 "transactions never stopped": self.unstopped(),
                 "open at the central system": self.open_ids,
                 "StartTransaction lost (idTag on the bus only)": self.lost_starts(seen),
                 "transaction rule violations": [f"{v.rule}: {v.detail}"
                                                 for v in self.transaction_violations()],
                 "other rules of the spec broken": [
                     f"{v.rule} ({v.action}): {v.detail}" for v in self.violations
                     if v.rule not in (*TRANSACTION_RULES, "transaction-started-twice")]}
        return {k: v for k, v in found.items() if v}


async def wait_until(what: str, predicate: Any, timeout: float,  # noqa: ASYNC109
                     every: float = 0.1) -> None:
    """Poll predicate() until truthy (the CSMS runs in this loop: never block it)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(every)
    del what


async def wind_down(stack: Stack, drivers: Drivers, timeout: float = 30.0) -> float:  # noqa: ASYNC109
    """Drivers stop what they charge and unplug; wait until the central system has nothing
    open and the gateway's outbox and running table are empty. Returns the seconds it took."""
    began = time.monotonic()
    drivers.driving = False
    for lane in drivers.lanes.values():
        lane.next_action = 0.0
        if lane.tx_tag is not None:
            lane.stop_at = 0.0

    def settled() -> bool:
        if not drivers.idle():
            return False
        open_ids = stack.csms.central.open_transactions.get(stack.station, [])
        return not open_ids and stack.store_rows() == (0, 0)

    try:
        await wait_until("everything stopped and sent", settled, timeout, every=0.2)
    except TimeoutError:
        raise AssertionError(
            f"not settled after {timeout} s: lanes {list(drivers.lanes.values())}, open at "
            f"the CSMS {stack.csms.central.open_transactions.get(stack.station)}, (outbox, "
            f"running) rows {stack.store_rows()}, alive {stack.alive()}; "
            f"{Account.of(stack.csms, stack.station).problems(drivers.seen)}") from None
    return time.monotonic() - began
