"""Session history from both sources: InfluxDB (when configured) merged with the local copy."""

from __future__ import annotations

import logging

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
