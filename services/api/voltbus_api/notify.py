"""Push notifications through apprise: session started/stopped, errors, OCPP link lost too long.

Sending happens on a worker task (apprise is blocking, so in a thread): state-cache listeners
only queue a message and return at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from voltbus_api.state_cache import Change
from voltbus_common.enums import ChargePointErrorCode
from voltbus_common.models import utcnow

if TYPE_CHECKING:
    import apprise

log = logging.getLogger(__name__)


def _who(data: dict[str, Any]) -> str:
    """The session's id tag as a notice names it (an OCPP 2.0.1 session started at plug-in has
    none until it is authorised)."""
    tag = data.get("id_tag")
    return f"id tag {tag}" if tag else "no id tag yet (started at plug-in)"


@dataclass(frozen=True)
class Notice:
    """One message to send."""

    title: str
    body: str
    kind: str  # apprise NotifyType: info, success, warning, failure


class Notifier:
    """Turns state changes into notices and sends them to every configured apprise URL."""

    def __init__(self, urls: list[str], *, ocpp_lost_after_s: float) -> None:
        # apprise loads every plugin it has (several MB): only when there is a URL to serve.
        self._apprise: apprise.Apprise | None = None
        if urls:
            import apprise

            self._apprise = apprise.Apprise()
            for url in urls:
                if not self._apprise.add(url):
                    # The URL may hold a secret: name only its scheme.
                    log.warning("ignoring a notification URL apprise does not understand "
                                "(scheme %r)", url.split(":", 1)[0])
        self._lost_after_s = ocpp_lost_after_s
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(1000)
        self._lost_timers: dict[str, asyncio.Task[None]] = {}
        self._lost_notified: set[str] = set()
        self._running: dict[tuple[str, int], str | None] = {}
        self._worker: asyncio.Task[None] | None = None
        self.sent = 0

    @property
    def enabled(self) -> bool:
        """Whether any target is configured."""
        return self._apprise is not None and len(self._apprise) > 0

    def start(self) -> None:
        """Start the sending worker."""
        if self.enabled:
            self._worker = asyncio.create_task(self._send_loop(), name="notify")

    async def stop(self) -> None:
        """Stop timers and the worker."""
        for task in [*self._lost_timers.values(), self._worker]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._lost_timers.clear()

    def queue(self, notice: Notice) -> None:
        """Queue a notice (dropped with a warning if the queue is full)."""
        if not self.enabled:
            return
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            log.warning("notification queue full; dropping %r", notice.title)

    async def _send_loop(self) -> None:
        assert self._apprise is not None  # started only when enabled
        while True:
            notice = await self._queue.get()
            ok = await asyncio.to_thread(self._apprise.notify, body=notice.body,
                                         title=notice.title, notify_type=notice.kind)
            if ok:
                self.sent += 1
            else:
                log.warning("could not deliver notification %r", notice.title)

    # --- state changes -> notices -------------------------------------------------------------

    async def on_change(self, change: Change) -> None:
        """State-cache listener."""
        where = f"{change.station}/{change.connector}"
        data = change.data
        if change.kind == "transaction":
            # The transaction topic is republished as energy grows: a new started_at is news.
            key = (change.station, change.connector or 0)
            started = data["started_at"] if data is not None else None
            before = self._running.get(key)
            self._running[key] = started
            if started is not None and started != before and not change.retained:
                self.queue(Notice(f"Charging started on {where}",
                                  f"Session started on {where} for {_who(data)}.",
                                  "info"))
            return
        if change.retained and change.kind != "ocpp":
            return  # replayed state after a (re)connect is not news
        if change.kind == "session" and data is not None:
            minutes = _minutes(data)
            self.queue(Notice(
                f"Charging finished on {where}: {data['energy_wh'] / 1000:.2f} kWh",
                f"Session on {where} for {_who(data)} finished: "
                f"{data['energy_wh'] / 1000:.2f} kWh in {minutes} min "
                f"(stop reason {data['stop_reason']}).", "success"))
        elif (change.kind == "error" and data is not None
              and data["code"] != ChargePointErrorCode.NO_ERROR.value):
            info = f" ({data['info']})" if data.get("info") else ""
            self.queue(Notice(f"Error on {where}: {data['code']}",
                              f"Connector {where} reports {data['code']}{info}.", "failure"))
        elif change.kind == "ocpp" and data is not None:
            since = datetime.fromisoformat(data["since"])
            self._on_link(change.station, bool(data["connected"]), since)

    def _on_link(self, station: str, connected: bool, since: datetime) -> None:
        timer = self._lost_timers.pop(station, None)
        if connected:
            if timer is not None:
                timer.cancel()
            if station in self._lost_notified:
                self._lost_notified.discard(station)
                self.queue(Notice(f"{station}: central system connected again",
                                  f"The OCPP connection of {station} is back.", "success"))
            return
        if timer is not None:
            self._lost_timers[station] = timer  # already counting
        elif station not in self._lost_notified and self.enabled:
            # Count from when the link went down (a retained state may be old already).
            down_s = max(0.0, (utcnow() - since).total_seconds())
            self._lost_timers[station] = asyncio.create_task(
                self._lost_later(station, max(0.0, self._lost_after_s - down_s)))

    async def _lost_later(self, station: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._lost_timers.pop(station, None)
        self._lost_notified.add(station)
        minutes = self._lost_after_s / 60
        self.queue(Notice(f"{station}: central system unreachable",
                          f"The OCPP connection of {station} has been down for more than "
                          f"{minutes:g} min.", "warning"))


def _minutes(data: dict[str, str | float]) -> int:
    start = datetime.fromisoformat(str(data["started_at"]))
    stop = datetime.fromisoformat(str(data["stopped_at"]))
    return max(0, round((stop - start).total_seconds() / 60))
