"""The publisher's retained session view for Home Assistant, kept from the contract's topics.

Why it exists: HA reads state from retained messages when it starts. The contract's
`ocpp/{c}/transaction` is an empty retained payload between sessions (the broker then holds
nothing, so HA showed session energy as `unknown`), `ocpp/{c}/session` (the finished session)
and `hw/rfid` (a card presented) are events, not retained; their retained twins
`ocpp/{c}/last_session` and `hw/rfid/last` fill the view also with what ended or was presented
while the publisher was not running. This view turns them into one
retained state per connector (`mirror_topic(station, c)`: the running session or zeros, and the
last finished session) and one per station (the last card, the price). It is rebuilt from its
own retained copy after a restart; a gateway that published these retained itself would make it
unnecessary (docs/homeassistant.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from voltbus_common.bus import Bus, Received
from voltbus_common.channels import LAST_SESSION, METER, RFID, RFID_LAST, SESSION, TRANSACTION
from voltbus_common.enums import StopReason
from voltbus_common.homeassistant.discovery import StationDiscovery, mirror_topic
from voltbus_common.models import (
    MeterReading,
    RfidSeen,
    SessionSummary,
    TransactionState,
    UtcDatetime,
    utcnow,
)

log = logging.getLogger(__name__)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class LastSession(_View):
    """A finished session as HA shows it."""

    transaction_id: int | None
    transaction_ref: str | None = None  # the OCPP id as text (2.0.1's too)
    id_tag: str | None = None  # None: a 2.0.1 session started at plug-in, never authorised
    started_at: UtcDatetime
    stopped_at: UtcDatetime
    energy_wh: float
    duration_s: float
    stop_reason: StopReason
    cost: float | None = None


class SessionView(_View):
    """A connector's running session (zeros when none runs) and its last finished one."""

    active: bool = False
    transaction_id: int | None = None
    transaction_ref: str | None = None  # the OCPP id as text (2.0.1's too)
    id_tag: str | None = None
    started_at: UtcDatetime | None = None
    energy_wh: float = 0.0
    duration_s: float = 0.0
    cost: float | None = None
    last: LastSession | None = None


class StationView(_View):
    """The station's last card and the configured price."""

    last_rfid: RfidSeen | None = None
    price_per_kwh: float | None = None
    currency: str = "EUR"


def _cost(energy_wh: float, price_per_kwh: float | None) -> float | None:
    return None if price_per_kwh is None else round(energy_wh / 1000 * price_per_kwh, 4)


def running_view(tx: TransactionState | None, last: LastSession | None, *,
                 price_per_kwh: float | None, now: datetime) -> SessionView:
    """The view of a connector from its transaction topic (None: no session runs)."""
    if tx is None:
        return SessionView(last=last, cost=_cost(0.0, price_per_kwh))
    return SessionView(
        active=True, transaction_id=tx.transaction_id, transaction_ref=tx.transaction_ref,
        id_tag=tx.id_tag,
        started_at=tx.started_at, energy_wh=tx.energy_wh,
        duration_s=max(0.0, (now - tx.started_at).total_seconds()),
        cost=_cost(tx.energy_wh, price_per_kwh), last=last)


def last_session(summary: SessionSummary, *, price_per_kwh: float | None) -> LastSession:
    """A finished session from the session topic."""
    return LastSession(
        transaction_id=summary.transaction_id, transaction_ref=summary.transaction_ref,
        id_tag=summary.id_tag,
        started_at=summary.started_at, stopped_at=summary.stopped_at,
        energy_wh=summary.energy_wh,
        duration_s=max(0.0, (summary.stopped_at - summary.started_at).total_seconds()),
        stop_reason=summary.stop_reason, cost=_cost(summary.energy_wh, price_per_kwh))


class SessionMirror:
    """Keeps the retained views of one station up to date over its Bus (`attach()` first)."""

    def __init__(self, bus: Bus, station: StationDiscovery, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.bus = bus
        self.station = station
        self.clock = clock
        self.connectors = set(station.connectors)
        self._tx: dict[int, TransactionState | None] = {}
        self._last: dict[int, LastSession | None] = {}
        self._rfid: RfidSeen | None = None

    def topic(self, connector: int | None = None) -> str:
        """The view's topic: the station's (None) or a connector's."""
        s = self.station
        return mirror_topic(s.station, connector, root=s.root, prefix=s.prefix)

    def attach(self) -> None:
        """Subscribe (own retained views first, so they are restored before the contract's
        retained state arrives) and queue the first views."""
        for n in sorted(self.connectors):
            self.bus.on_raw(self.topic(n), self._on_own_session)
        self.bus.on_raw(self.topic(), self._on_own_station)
        self.bus.on(TRANSACTION, self._on_transaction)
        self.bus.on(METER, self._on_meter)  # the running energy between transaction refreshes
        self.bus.on(SESSION, self._on_session)
        self.bus.on(LAST_SESSION, self._on_session)  # retained: also one ended while we were away
        self.bus.on(RFID, self._on_rfid)
        self.bus.on(RFID_LAST, self._on_rfid)  # retained: the last card, ditto
        self.publish_all()

    def publish_all(self) -> None:
        """Queue every view (retained)."""
        for n in sorted(self.connectors):
            self._publish(n)
        self._publish_station()

    def clear(self) -> None:
        """Remove every retained view (discovery turned off)."""
        for n in sorted(self.connectors):
            self.bus.publish_raw(self.topic(n), b"", qos=1, retain=True)
        self.bus.publish_raw(self.topic(), b"", qos=1, retain=True)

    def view(self, connector: int) -> SessionView:
        """The connector's view now."""
        return running_view(self._tx.get(connector), self._last.get(connector),
                            price_per_kwh=self.station.price_per_kwh, now=self.clock())

    def _publish(self, connector: int) -> None:
        payload = self.view(connector).model_dump_json().encode()
        self.bus.publish_raw(self.topic(connector), payload, qos=1, retain=True)

    def _publish_station(self) -> None:
        view = StationView(last_rfid=self._rfid, price_per_kwh=self.station.price_per_kwh,
                           currency=self.station.currency)
        self.bus.publish_raw(self.topic(), view.model_dump_json().encode(), qos=1, retain=True)

    # --- the contract's topics ------------------------------------------------------------------

    async def _on_transaction(self, msg: Received[TransactionState]) -> None:
        if msg.connector in self.connectors:
            self._tx[msg.connector] = msg.payload
            self._publish(msg.connector)

    async def _on_meter(self, msg: Received[MeterReading]) -> None:
        """The gateway republishes the retained transaction at a bounded rate (every 10 s while
        its energy grows); the session energy follows every meter reading instead."""
        tx = self._tx.get(msg.connector) if msg.connector in self.connectors else None
        if tx is None or msg.payload is None:
            return
        live = round(msg.payload.energy_wh - tx.meter_start_wh, 3)
        if live > (tx.energy_wh or 0.0):
            self._tx[msg.connector] = tx.model_copy(update={"energy_wh": live})
            self._publish(msg.connector)

    async def _on_session(self, msg: Received[SessionSummary]) -> None:
        """A finished session (event) or the last one (retained): kept unless older than the
        one we have (each session comes on both topics)."""
        if msg.connector not in self.connectors or msg.payload is None:
            return
        mine = self._last.get(msg.connector)
        if mine is not None and mine.stopped_at > msg.payload.stopped_at:
            return
        last = last_session(msg.payload, price_per_kwh=self.station.price_per_kwh)
        if last == mine:
            return
        self._last[msg.connector] = last
        self._publish(msg.connector)

    async def _on_rfid(self, msg: Received[RfidSeen]) -> None:
        seen = msg.payload
        if seen is None or (self._rfid is not None and self._rfid.ts > seen.ts) or (
                seen == self._rfid):
            return
        self._rfid = seen
        self._publish_station()

    # --- our own retained views, after a restart -------------------------------------------------

    async def _on_own_session(self, topic: str, payload: bytes, retain: bool) -> None:
        if not retain or not payload:
            return  # our own publish echoed back, or nothing kept
        n = next((c for c in self.connectors if self.topic(c) == topic), None)
        try:
            kept = SessionView.model_validate_json(payload)
        except ValidationError:
            log.warning("unreadable retained session view on %s: replaced", topic)
            return
        mine = self._last.get(n) if n is not None else None
        if n is None or kept.last is None or (mine is not None
                                              and mine.stopped_at >= kept.last.stopped_at):
            return
        self._last[n] = kept.last
        self._publish(n)  # in case a view without it went out first

    async def _on_own_station(self, topic: str, payload: bytes, retain: bool) -> None:
        if not retain or not payload:
            return
        try:
            kept = StationView.model_validate_json(payload)
        except ValidationError:
            log.warning("unreadable retained station view on %s: replaced", topic)
            return
        if kept.last_rfid is not None and (self._rfid is None
                                           or self._rfid.ts < kept.last_rfid.ts):
            self._rfid = kept.last_rfid
            self._publish_station()
