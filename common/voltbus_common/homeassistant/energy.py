"""Home Assistant's charge-mode and plan entities, merged into whole energy-manager settings.

`energy/{connector}/mode/set` takes a whole `ChargeModeSetting` (mode, priority, plan): a select
that sent only `{"mode": "pv"}` there would drop the connector's priority and plan, and a number
that sent only the target energy could not be sent at all. So HA's three entities (the mode
select, the plan energy number, the departure text) send one field each to the publisher's own
topic (`energy_set_topic`), and this bridge merges it with the mode in force (the retained
`energy/{connector}/mode`) and the plan draft, and sends the whole setting. The draft (target and
departure while the mode is not `plan` yet) is retained on `energy_view_topic`, which the number
and the text read.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from voltbus_common.bus import Bus, Received
from voltbus_common.channels import ENERGY_MODE, ENERGY_MODE_SET
from voltbus_common.enums import ChargeMode, PlanObjective
from voltbus_common.homeassistant.discovery import (
    StationDiscovery,
    energy_set_topic,
    energy_view_topic,
)
from voltbus_common.models import ChargeModeSetting, ChargeModeState

log = logging.getLogger(__name__)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_SET = re.compile(r".*/c(\d+)/energy/set")


def parse_departure(text: str, now: datetime) -> datetime | None:
    """`HH:MM` (the next such time after now, in now's zone) or ISO 8601 (naive: now's zone);
    None for an empty text. ValueError when it is neither."""
    text = text.strip()
    if not text:
        return None
    clock = _CLOCK.match(text)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=now.tzinfo)


class EnergyBridge:
    """Turns HA's one-field commands into whole `energy/{n}/mode/set` settings."""

    def __init__(self, bus: Bus, station: StationDiscovery) -> None:
        self.bus = bus
        self.station = station
        self.modes: dict[int, ChargeModeState] = {}
        self.drafts: dict[int, dict[str, Any]] = {}

    def _view_topic(self, n: int) -> str:
        s = self.station
        return energy_view_topic(s.station, n, root=s.root, prefix=s.prefix)

    def attach(self) -> None:
        """Subscribe to the modes in force and HA's commands (before bus.run())."""
        self.bus.on(ENERGY_MODE, self._on_mode)
        s = self.station
        self.bus.on_raw(energy_set_topic(s.station, 0, root=s.root, prefix=s.prefix)
                        .replace("/c0/", "/+/"), self._on_set)
        for n in s.connectors:
            self.bus.on_raw(self._view_topic(n), self._on_own_view)

    def draft(self, n: int) -> dict[str, Any]:
        return self.drafts.setdefault(n, {"plan_energy_wh": None, "plan_departure": None})

    def publish_view(self, n: int) -> None:
        """The plan draft, retained, for HA's number and text."""
        payload = json.dumps(self.draft(n), separators=(",", ":")).encode()
        self.bus.publish_raw(self._view_topic(n), payload, qos=1, retain=True)

    def publish_all(self) -> None:
        for n in sorted(set(self.station.connectors)):
            self.publish_view(n)

    def clear(self) -> None:
        for n in sorted(set(self.station.connectors)):
            self.bus.publish_raw(self._view_topic(n), b"", qos=1, retain=True)

    async def _on_own_view(self, topic: str, payload: bytes, retain: bool) -> None:
        """Our retained draft from before a restart (only until the mode says more)."""
        n = next((c for c in self.station.connectors if self._view_topic(c) == topic), None)
        if not retain or not payload or n is None or n in self.drafts:
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if isinstance(data, dict):
            self.draft(n).update({k: data.get(k) for k in ("plan_energy_wh", "plan_departure")})

    async def _on_mode(self, msg: Received[ChargeModeState]) -> None:
        if msg.connector is None or msg.payload is None:
            return
        n = int(msg.connector)
        self.modes[n] = state = msg.payload
        draft = self.draft(n)
        changed = False
        if state.plan_energy_wh is not None and draft["plan_energy_wh"] != state.plan_energy_wh:
            draft["plan_energy_wh"], changed = state.plan_energy_wh, True
        if state.plan_departure is not None:
            departure = state.plan_departure.isoformat()
            if draft["plan_departure"] != departure:
                draft["plan_departure"], changed = departure, True
        if changed:
            self.publish_view(n)

    async def _on_set(self, topic: str, payload: bytes, retain: bool) -> None:
        found = _SET.fullmatch(topic)
        if found is None or retain:
            return
        n = int(found.group(1))
        if n not in self.station.connectors:
            self.bus.reject(topic, f"connector {n} is not configured")
            return
        problem = self.command(n, payload, datetime.now().astimezone())
        if problem:
            log.warning("Home Assistant energy command on %s refused: %s", topic, problem)
            self.bus.reject(topic, problem)

    def command(self, n: int, payload: bytes, now: datetime) -> str | None:
        """Apply one HA command to connector n; the reason when it is refused."""
        try:
            data = json.loads(payload)
        except ValueError:
            return "not JSON"
        if not isinstance(data, dict) or len(data) != 1:
            return "one field expected"
        (field, value), = data.items()
        draft = self.draft(n)
        state = self.modes.get(n)
        mode = state.mode if state is not None else None
        try:
            if field == "mode":
                mode = ChargeMode(value)
            elif field == "plan_energy_wh":
                if not isinstance(value, int | float) or not 0 < value <= 1_000_000:
                    return f"plan energy {value!r} Wh is out of range"
                draft["plan_energy_wh"] = float(value)
            elif field == "plan_departure":
                if not isinstance(value, str):
                    return "plan departure must be a text"
                when = parse_departure(value, now)
                draft["plan_departure"] = None if when is None else when.isoformat()
            else:
                return f"unknown field {field!r}"
        except ValueError as exc:
            return f"{field}: {exc}"
        self.publish_view(n)
        if mode is None or (field != "mode" and mode is not ChargeMode.PLAN):
            return None  # only the draft changed; it goes out with the next mode
        if mode is ChargeMode.PLAN and None in (draft["plan_energy_wh"],
                                                draft["plan_departure"]):
            return "plan mode needs the plan energy and departure first"
        try:
            setting = ChargeModeSetting(
                mode=mode, priority=state.priority if state is not None else 0,
                plan_objective=(state.plan_objective if state is not None
                                else PlanObjective.COST),
                plan_energy_wh=draft["plan_energy_wh"],
                plan_departure=draft["plan_departure"])
        except ValidationError as exc:
            return f"invalid setting: {exc.errors()[0]['msg']}"
        self.bus.publish(ENERGY_MODE_SET, setting, connector=n)
        return None
