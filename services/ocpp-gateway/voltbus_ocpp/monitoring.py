"""The station's variable monitors: kept on disk (table `monitors`, with their tripped/reference
state, so they and a threshold exceeded survive restarts, N07.FR.13/14), evaluated after every
model step and every configuration change, their events queued in the durable outbox.

Version-neutral: the protocol gives a `MonitorSource` (2.0.1's device model reads a variable's
value by its `Ref`, and its MonitoringCtrlr variables say whether monitoring is on, the active
level and the offline queuing severity); 1.6 has none, so nothing is evaluated. While offline an
event whose severity is at most the offline queuing severity is queued (N07.FR.04); a less severe
one is not raised then: its monitor keeps its state and triggers once the station is online
again, so the central system learns the state of the monitor when it can (N07's remark).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

from voltbus_ocpp.model.monitoring import (
    PERIODIC,
    Event,
    Monitor,
    MonitorType,
    Origin,
    Ref,
    evaluate,
)
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.records import MonitorEventData, MonitorEventRecord
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)

FIRST_ID = 100  # generated monitor ids start here (N04.FR.11)


class MonitorSource(Protocol):
    """What the protocol's device model tells the monitors."""

    def read(self, ref: Ref) -> str | None:
        """The variable's Actual value now (None: no such variable, or not readable)."""
        ...

    @property
    def enabled(self) -> bool:
        """Monitoring on (2.0.1 MonitoringCtrlr.Enabled)."""
        ...

    @property
    def level(self) -> int:
        """Events of monitors more severe or as severe as this are reported (N05)."""
        ...

    @property
    def offline_severity(self) -> int:
        """Events at most this severe... i.e. severity number at most this are queued offline."""
        ...


def _row(m: Monitor) -> str:
    return json.dumps({**asdict(m), "ref": list(m.ref),
                       "due": m.due.isoformat() if m.due else None})


def _monitor(d: dict[str, Any]) -> Monitor:
    c, e, n, v, i = d["ref"]
    return Monitor(id=int(d["id"]), ref=(str(c), e, n, str(v), i), type=MonitorType(d["type"]),
                   value=float(d["value"]), severity=int(d["severity"]),
                   transaction=bool(d.get("transaction", False)), origin=Origin(d["origin"]),
                   tripped=bool(d.get("tripped", False)), reference=d.get("reference"),
                   due=datetime.fromisoformat(d["due"]) if d.get("due") else None)


class Monitoring:
    """The monitors of one station."""

    def __init__(self, store: Store, queue: OfflineQueue, model: StationModel,
                 clock: Callable[[], datetime], queued: Callable[[], None]) -> None:
        self.store = store
        self.queue = queue
        self.model = model
        self.clock = clock
        self.queued = queued  # the messenger is told a durable message was stored
        self.source: MonitorSource | None = None  # set by the protocol (2.0.1)
        self.wake: Callable[[], None] = lambda: None  # the station's ticker looks again
        self._due: datetime | None = None  # the periodic deadline the ticker was told of
        store.db.execute("CREATE TABLE IF NOT EXISTS monitors "
                         "(id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self.monitors: dict[int, Monitor] = {}
        for row_id, body in store.db.execute("SELECT id, body FROM monitors").fetchall():
            try:
                self.monitors[row_id] = _monitor(json.loads(body))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("monitor %s on disk is unreadable, skipped: %s", row_id, exc)

    def next_id(self) -> int:
        """An id for a new monitor (never one used before on this station)."""
        used = int(self.store.meta("next_monitor_id", str(FIRST_ID)) or FIRST_ID)
        return max(used, max(self.monitors, default=0) + 1)

    def put(self, monitor: Monitor) -> None:
        """Store (or replace, keeping the replaced one's state, N07.FR.11) a monitor, then
        evaluate it."""
        old = self.monitors.get(monitor.id)
        if old is not None and old.type is monitor.type:
            monitor = Monitor(**{**asdict(monitor), "tripped": old.tripped,
                                 "reference": old.reference, "due": old.due})
        self.monitors[monitor.id] = monitor
        with self.store.transaction():
            self.store.db.execute("INSERT OR REPLACE INTO monitors VALUES (?, ?)",
                                  (monitor.id, _row(monitor)))
            self.store.set_meta("next_monitor_id", str(max(self.next_id(), monitor.id + 1)))
        self.evaluate()

    def clear(self, ids: list[int]) -> None:
        """Remove monitors (a tripped threshold is not cleared by it, N07.FR.12)."""
        with self.store.transaction():
            for i in ids:
                self.monitors.pop(i, None)
                self.store.db.execute("DELETE FROM monitors WHERE id=?", (i,))

    def install_presets(self, presets: list[Monitor], base: str) -> None:
        """The monitors the device model marks: the hard-wired ones are always there, the
        preconfigured ones are installed once (unless the base is HardWiredOnly): one the
        central system cleared or replaced stays so until SetMonitoringBase restores it."""
        first = self.store.meta("monitor_presets", "") != "1"
        missing = [m for m in presets if m.id not in self.monitors and (
            m.origin is Origin.HARD_WIRED or (first and base != "HardWiredOnly"))]
        with self.store.transaction():
            for m in missing:
                self.monitors[m.id] = m
                self.store.db.execute("INSERT OR REPLACE INTO monitors VALUES (?, ?)",
                                      (m.id, _row(m)))
            self.store.set_meta("monitor_presets", "1")

    def set_base(self, presets: list[Monitor], base: str) -> None:
        """SetMonitoringBase (N03): All adds the preconfigured monitors that are not there and
        keeps the custom ones (N03.FR.03); FactoryDefault removes every custom monitor (a
        replaced preconfigured one too) and restores the preconfigured ones (N03.FR.04);
        HardWiredOnly leaves only the hard-wired ones (N03.FR.05)."""
        if base in ("FactoryDefault", "HardWiredOnly"):
            self.clear([m.id for m in self.monitors.values() if m.origin is not Origin.HARD_WIRED])
        if base in ("All", "FactoryDefault"):
            with self.store.transaction():
                for m in presets:
                    if m.id not in self.monitors:
                        self.monitors[m.id] = m
                        self.store.db.execute("INSERT OR REPLACE INTO monitors VALUES (?, ?)",
                                              (m.id, _row(m)))
        self.evaluate()

    def _active(self, m: Monitor) -> bool:
        """A transaction monitor only counts while its EVSE (any, for the station) charges a
        transaction."""
        if not m.transaction:
            return True
        connectors = self.model.connectors
        evse = m.ref[1]
        return any(c.facts.tx is not None for n, c in connectors.items()
                   if evse is None or n == evse)

    def _watched(self) -> list[Monitor]:
        """The monitors evaluated now: monitoring on, within the level (N05.FR.03, N07.FR.15),
        active."""
        source = self.source
        if not self.monitors or source is None or not source.enabled:
            return []
        return [m for m in self.monitors.values()
                if m.severity <= source.level and self._active(m)]

    def next_due(self, now: datetime) -> datetime | None:
        """When a periodic monitor raises its next event (the station's ticker wakes then)."""
        return min((m.due for m in self._watched() if m.due is not None), default=None)

    def evaluate(self) -> None:
        """Read every monitored variable; queue the events raised."""
        source = self.source
        watched = self._watched()
        if source is None or not watched:
            return
        events: list[Event] = []
        online, now = self.model.online, self.clock()
        offline_severity = source.offline_severity
        for m in watched:
            value = source.read(m.ref)
            if value is None:
                continue
            after, event = evaluate(m, value, now)
            if event is not None and not online and m.severity > offline_severity:
                if m.type not in PERIODIC:
                    continue  # not queued offline (N07.FR.04): raised once online again
                event = None  # N08.FR.03: a periodic event missed offline is not queued
            if after != m:
                self.monitors[m.id] = after
                self.store.db.execute("UPDATE monitors SET body=? WHERE id=?",
                                      (_row(after), m.id))
            if event is not None:
                events.append(event)
        if events:
            self._queue(events, online)
        due = self.next_due(now)
        if due != self._due:
            self._due = due
            self.wake()

    def _queue(self, events: list[Event], online: bool) -> None:
        now = self.clock()
        with self.store.transaction():
            first = int(self.store.meta("next_event_id", "1") or 1)
            data = tuple(MonitorEventData(
                event_id=first + n, ts=now, trigger=e.trigger.value, actual=e.actual,
                cleared=e.cleared, monitor_id=e.monitor.id, origin=e.monitor.origin.value,
                ref=e.monitor.ref, severity=e.monitor.severity) for n, e in enumerate(events))
            self.store.set_meta("next_event_id", str(first + len(events)))
            self.queue.put(MonitorEventRecord(data), None)
        for e in events:
            log.info("monitor %d (%s %g, severity %d) on %s: %s%s", e.monitor.id,
                     e.monitor.type.value, e.monitor.value, e.monitor.severity,
                     ".".join(str(p) for p in e.monitor.ref if p is not None), e.actual,
                     " (cleared)" if e.cleared else "" if online else " (offline, queued)")
        self.queued()
