"""What Home Assistant (and any bus client) needs from the gateway beyond the OCPP state.

`CommandLimits`: the limit the bus command `set_current_limit` set, per connector, kept in the
station's store (meta table) so it survives a restart: restored onto the model before its first
effects (the hardware gets it again at start) and published as ChargingState.command_limit_a.
"""

from __future__ import annotations

import json

from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.store import Store


class CommandLimits:
    """The commanded current limit per connector across restarts (meta key `command_limits`)."""

    KEY = "command_limits"

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last: dict[int, float | None] | None = None

    def restore(self, model: StationModel) -> None:
        """Put the stored limits on the model's connectors (nothing stored: none set)."""
        raw = self.store.meta(self.KEY)
        data = json.loads(raw) if raw else {}
        for n, c in model.connectors.items():
            amps = data.get(str(n))
            if amps is not None:  # a lowered station maximum caps it
                c.facts.command_limit_a = max(0.0, min(float(amps), model.max_current_a))
        self._last = self.current(model)

    @staticmethod
    def current(model: StationModel) -> dict[int, float | None]:
        """The model's commanded limit per connector."""
        return {n: c.facts.command_limit_a for n, c in model.connectors.items()}

    def limit(self, model: StationModel, connector: int) -> float | None:
        """The commanded limit of one connector (None: none set, or no such connector)."""
        c = model.connectors.get(connector)
        return None if c is None else c.facts.command_limit_a

    def keep(self, model: StationModel) -> None:
        """Write the limits if they changed (joins the store's group commit)."""
        now = self.current(model)
        if now == self._last:
            return
        self._last = now
        with self.store.transaction():
            self.store.set_meta(self.KEY, json.dumps(
                {str(n): v for n, v in now.items() if v is not None}))
