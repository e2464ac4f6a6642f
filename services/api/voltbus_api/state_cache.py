"""The latest retained state of every station and connector, kept from the bus for fast reads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ServiceState
from voltbus_common.models import (
    ChargingState,
    DisplayMessages,
    HardwareError,
    MeterReading,
    OcppConnection,
    OcppConnectorStatus,
    PhaseState,
    PilotEvent,
    RecorderHealth,
    RelayState,
    SessionSummary,
    TransactionState,
    utcnow,
)

log = logging.getLogger(__name__)


_CONNECTOR_EXAMPLE: dict[str, Any] = {
    "station": "CP1", "connector": 1, "status": ch.OCPP_STATUS.example,
    "pilot": {"state": "C", "ts": "2026-01-01T12:00:00Z"}, "relay": ch.RELAY.example,
    "meter": ch.METER.example, "error": {"code": "NoError", "info": None,
                                         "ts": "2026-01-01T12:00:00Z"},
    "transaction": ch.TRANSACTION.example, "charging": ch.CHARGING.example,
    "last_session": None, "phases": ch.PHASES.example, "updated_at": "2026-01-01T12:00:01Z"}


_DISPLAY_EXAMPLE: dict[str, Any] = dict(ch.DISPLAY.example)  # type: ignore[arg-type]
_OCPP_EXAMPLE: dict[str, Any] = {"connected": True, "registration": "Accepted",
                                  "since": "2026-01-01T11:00:00Z"}


class ConnectorState(BaseModel):
    """Everything known about one connector; a field is null until its topic has been seen."""

    station: str
    connector: int = Field(ge=1)
    status: OcppConnectorStatus | None = None
    pilot: PilotEvent | None = None
    relay: RelayState | None = None
    meter: MeterReading | None = None
    error: HardwareError | None = None
    transaction: TransactionState | None = None
    charging: ChargingState | None = None
    last_session: SessionSummary | None = None
    phases: PhaseState | None = Field(default=None, description="hw/{c}/phases: the phases the "
                                      "supply has as its phase switch confirms them")
    updated_at: datetime | None = None
    model_config = ConfigDict(json_schema_extra={"examples": [_CONNECTOR_EXAMPLE]})


class StationState(BaseModel):
    """A station: its OCPP link, station-wide status (connector 0), services and connectors."""

    station: str
    ocpp: OcppConnection | None = None
    station_status: OcppConnectorStatus | None = None
    services: dict[str, ServiceState] = Field(default_factory=dict)
    recorder: RecorderHealth | None = Field(default=None, description="the recorder's last "
                                            "health report (InfluxDB reachable, spool fill)")
    display: DisplayMessages | None = Field(
        default=None, description="what the station's display shows now (the gateway's "
        "retained ocpp/display: OCPP 2.0.1 display messages, in display order)")
    connectors: list[ConnectorState] = Field(default_factory=list)
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "station": "CP1", "ocpp": _OCPP_EXAMPLE, "station_status": None,
        "services": {"hardware": "online", "gateway": "online", "recorder": "online",
                     "api": "online"},
        "display": _DISPLAY_EXAMPLE,
        "connectors": [_CONNECTOR_EXAMPLE]}]})


class Change(BaseModel):
    """One state change, as sent on the live stream."""

    station: str
    connector: int | None = None
    kind: str
    data: Any = None
    retained: bool = Field(default=False, description="replayed retained state, not news")
    ts: datetime = Field(default_factory=utcnow)


# connector-level channel -> ConnectorState field
_CONNECTOR_FIELDS: dict[str, ch.Channel[Any]] = {
    "status": ch.OCPP_STATUS, "pilot": ch.PILOT, "relay": ch.RELAY, "meter": ch.METER,
    "error": ch.HW_ERROR, "transaction": ch.TRANSACTION, "charging": ch.CHARGING,
    "last_session": ch.SESSION, "phases": ch.PHASES,
}

Listener = Callable[[Change], Awaitable[None]]


def _live_energy(state: ConnectorState) -> None:
    """The running transaction's energy from the meter: the gateway republishes the retained
    transaction at a bounded rate (every 10 s while it grows), the meter every reading."""
    tx, meter = state.transaction, state.meter
    if tx is None or meter is None:
        return
    live = round(meter.energy_wh - tx.meter_start_wh, 3)
    if live > (tx.energy_wh or 0.0):
        state.transaction = tx.model_copy(update={"energy_wh": live})


class StateCache:
    """Latest state per station from retained bus topics; fans changes out to listeners."""

    def __init__(self, stations: list[str], *, queue_size: int = 1000) -> None:
        self._stations: dict[str, StationState] = {s: StationState(station=s) for s in stations}
        self._connectors: dict[tuple[str, int], ConnectorState] = {}
        self._queues: set[asyncio.Queue[Change | None]] = set()
        self._listeners: list[Listener] = []
        self._queue_size = queue_size

    # --- reading ------------------------------------------------------------------------------

    @property
    def stations(self) -> list[str]:
        """Configured station ids, in configuration order."""
        return list(self._stations)

    def has_station(self, station: str) -> bool:
        """Whether the station is one this API serves."""
        return station in self._stations

    def station(self, station: str) -> StationState:
        """A snapshot of one station with its connectors (KeyError if unknown)."""
        base = self._stations[station]
        return base.model_copy(update={
            "services": dict(base.services), "connectors": self.connectors(station)})

    def connectors(self, station: str) -> list[ConnectorState]:
        """Snapshots of a station's connectors, by number."""
        found = [c for (s, _), c in self._connectors.items() if s == station]
        return [c.model_copy() for c in sorted(found, key=lambda c: c.connector)]

    def connector(self, station: str, connector: int) -> ConnectorState | None:
        """A snapshot of one connector, or None if nothing was ever heard about it."""
        state = self._connectors.get((station, connector))
        return state.model_copy() if state is not None else None

    def services(self) -> dict[str, dict[str, ServiceState]]:
        """Each station's services and their last announced status."""
        return {s: dict(st.services) for s, st in self._stations.items()}

    # --- feeding from the bus -----------------------------------------------------------------

    def attach(self, bus: Bus) -> None:
        """Subscribe to every state topic of the bus's station (call before bus.run())."""
        for field_name, channel in _CONNECTOR_FIELDS.items():
            bus.on(channel, self._connector_handler(field_name))
        bus.on(ch.OCPP_CONNECTION, self._station_handler("ocpp"))
        bus.on(ch.SERVICE_STATUS, self._on_service)
        bus.on(ch.RECORDER_HEALTH, self._station_handler("recorder"))
        bus.on(ch.DISPLAY, self._station_handler("display"))

    def _connector_handler(self, field_name: str) -> Callable[[Received[Any]], Awaitable[None]]:
        async def handle(msg: Received[Any]) -> None:
            await self.set_connector(msg.station, msg.connector, field_name, msg.payload,
                                     retained=msg.retain)
        return handle

    async def set_connector(self, station: str, connector: int, field_name: str,
                            value: BaseModel | None, *, retained: bool = False) -> None:
        """Store one connector field and tell listeners; connector 0 status is the station's."""
        if station not in self._stations:
            return
        if connector == 0:
            if field_name == "status":
                self._stations[station] = self._stations[station].model_copy(
                    update={"station_status": value})
                await self._emit(Change(station=station, kind="station_status", data=_dump(value),
                                        retained=retained))
            return
        key = (station, connector)
        state = self._connectors.get(key)
        if state is None:
            state = self._connectors[key] = ConnectorState(station=station, connector=connector)
        setattr(state, field_name, value)
        if field_name in ("meter", "transaction"):
            _live_energy(state)
        state.updated_at = utcnow()
        kind = "session" if field_name == "last_session" else field_name
        await self._emit(Change(station=station, connector=connector, kind=kind,
                                data=_dump(value), retained=retained))

    def _station_handler(self, field_name: str) -> Callable[[Received[Any]], Awaitable[None]]:
        """A station-wide retained topic (the OCPP link, the recorder, the display) into
        StationState.<field_name>, told to listeners as kind <field_name>."""
        async def handle(msg: Received[Any]) -> None:
            station = self._stations.get(msg.station)
            if station is None:
                return
            self._stations[msg.station] = station.model_copy(update={field_name: msg.payload})
            await self._emit(Change(station=msg.station, kind=field_name, data=_dump(msg.payload),
                                    retained=msg.retain))
        return handle

    def recorder_health(self) -> dict[str, RecorderHealth]:
        """Each station's last recorder health report, where one was seen."""
        return {s: st.recorder for s, st in self._stations.items() if st.recorder is not None}

    async def _on_service(self, msg: Received[ServiceState]) -> None:
        station = self._stations.get(msg.station)
        if station is None or msg.payload is None:
            return
        station.services[msg.args["service"]] = msg.payload
        await self._emit(Change(station=msg.station, kind="service", retained=msg.retain,
                                data={"service": msg.args["service"], "state": msg.payload.value}))

    # --- fan-out ------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call listener (quickly!) on every change, e.g. history or notifications."""
        self._listeners.append(listener)

    def subscribe(self) -> asyncio.Queue[Change | None]:
        """A queue of changes for one live-stream client; None means it fell behind."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        """Stop feeding a live-stream client."""
        self._queues.discard(queue)

    async def _emit(self, change: Change) -> None:
        for listener in self._listeners:
            try:
                await listener(change)
            except Exception:  # one listener's bug must not stop the others
                log.exception("state listener failed on %s", change.kind)
        for queue in list(self._queues):
            if queue.qsize() >= self._queue_size - 1:
                # A client that does not read is cut off rather than growing memory.
                self._queues.discard(queue)
                queue.put_nowait(None)
                log.warning("live stream client fell behind; disconnecting it")
            else:
                queue.put_nowait(change)


def _dump(value: BaseModel | None) -> Any:
    return value.model_dump(mode="json") if value is not None else None
