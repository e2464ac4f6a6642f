"""Session history from both sources: InfluxDB (when configured) merged with the local copy."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from voltbus_api.history import LocalHistory, SessionFilter, SessionRecord
from voltbus_api.influx_reader import InfluxSessions, InfluxUnavailable

log = logging.getLogger(__name__)


class SessionSource:
    """One list of sessions, newest first, each once; works without InfluxDB."""

    def __init__(self, local: LocalHistory, influx: InfluxSessions | None) -> None:
        self.local = local
        self.influx = influx
        self.influx_error: str | None = None

    async def sessions(self, f: SessionFilter) -> list[SessionRecord]:
        """Matching sessions; the local copy alone if InfluxDB fails (influx_error says why)."""
        merged = {r.key: r for r in self.local.query(f)}
        if self.influx is not None:
            try:
                for r in await self.influx.query(f):
                    merged.setdefault(r.key, r)
                if self.influx_error is not None:
                    log.info("InfluxDB answers again")
                self.influx_error = None
            except InfluxUnavailable as exc:
                if self.influx_error is None:
                    log.warning("session history from InfluxDB unavailable, using the local "
                                "copy: %s", exc)
                self.influx_error = str(exc)
        return sorted(merged.values(), key=lambda r: r.started_at, reverse=True)


SessionKey = tuple[str, int, datetime]


async def tariff_costs(source: SessionSource, finals: Mapping[SessionKey, Any] | None,
                       found: list[SessionRecord]) -> dict[SessionKey, Decimal]:
    """The live-tariff costs of these sessions, to the cent (half up), by session key.

    InfluxDB's `session_cost` (the recorder's copy of the final `energy/{c}/cost`), then the
    final costs the API saw on the bus itself (`finals`: SessionCost by key), which win. A
    session in neither has none: its cost is only known at the fixed price.
    """
    costs: dict[SessionKey, float] = {}
    if found and source.influx is not None:
        with contextlib.suppress(InfluxUnavailable):  # the bus's copy below still counts
            costs.update(await source.influx.tariff_costs(SessionFilter(
                start=min(r.started_at for r in found))))
    if finals:
        costs.update({k: c.cost for k, c in finals.items()})
    wanted = {r.key for r in found}
    return {k: Decimal(str(v)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            for k, v in costs.items() if k in wanted}
