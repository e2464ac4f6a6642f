"""Polls a station's card readers: each presentation becomes one `hw/rfid` event and a beep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import CardType
from voltbus_common.models import RfidSeen
from voltbus_hardware.drivers.base import (
    DeviceUnavailable,
    RfidReader,
    SupportsWake,
    wakes_on_every_change,
)
from voltbus_hardware.station import StationHardware

log = logging.getLogger(__name__)
RETRY_S = 5.0

FaultReport = Callable[[str, str | None], None]
"""(source, info) marks a reader faulty on the station's connectors; info None clears it."""


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> None:
    """Sleep until the event is set or the time passes."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):  # not wait_for: it can swallow a stop (3.11)
            await event.wait()


async def guarded(step: Coroutine[Any, Any, None], what: str) -> None:
    """Run one poll step; a driver bug is logged with its traceback and the loop goes on."""
    try:
        await step
    except Exception:
        log.exception("%s: unexpected error (driver bug?); polling goes on", what)


class CardReaders:
    """One loop for all readers of a station; a failing reader is retried every 5 s."""

    def __init__(self, bus: Bus, station: StationHardware, report: FaultReport, *,
                 poll_interval_s: float, idle_poll_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus, self.station, self.report = bus, station, report
        self.poll_interval_s, self.clock = poll_interval_s, clock
        # readers that wake the loop on every card (simulated) need no polling, but a failed
        # one is retried every RETRY_S, so they are polled again while one is failing
        self.idle_poll_s = idle_poll_s if idle_poll_s is not None else poll_interval_s
        self._wake = asyncio.Event()
        self._retry_at: dict[str, float] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def attach(self) -> None:
        """Readers that notice a card themselves wake the loop at once."""
        for reader in self.station.readers:
            if isinstance(reader, SupportsWake):
                reader.set_wake(self._wake.set)

    async def run(self) -> None:
        """Poll until cancelled."""
        all_wake = all(wakes_on_every_change(r) for r in self.station.readers)
        while True:
            self._wake.clear()
            for reader in self.station.readers:
                await guarded(self._read(reader), f"reader {reader.name}")
            idle = all_wake and not self._retry_at
            await wait_or_timeout(self._wake, self.idle_poll_s if idle else self.poll_interval_s)

    async def _read(self, reader: RfidReader) -> None:
        name = reader.name
        if self.clock() < self._retry_at.get(name, 0.0):
            return
        try:
            tag = await reader.read_tag()
        except DeviceUnavailable as exc:
            if name not in self._retry_at:
                log.warning("reader %s unavailable: %s", name, exc)
            self._retry_at[name] = self.clock() + RETRY_S
            self.report(f"reader:{name}", f"{name}: {exc}"[:50])
            return
        if self._retry_at.pop(name, None) is not None:
            log.info("reader %s answers again", name)
            self.report(f"reader:{name}", None)
        if tag is not None:
            self._publish(reader, tag)

    def _publish(self, reader: RfidReader, tag: str) -> None:
        name = reader.name
        try:
            seen = RfidSeen(id_tag=tag, reader=name,
                            card_type=getattr(reader, "card_type", CardType.ISO14443))
        except ValueError:
            log.warning("reader %s: card id %r is not a valid OCPP idTag; ignored", name, tag)
            return
        self.bus.publish(ch.RFID, seen)
        self.bus.publish(ch.RFID_LAST, seen)  # retained: the last card after any restart
        if self.station.buzzer is not None:
            task = asyncio.get_running_loop().create_task(self._beep())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _beep(self) -> None:
        assert self.station.buzzer is not None
        try:
            await self.station.buzzer.beep()
        except Exception as exc:  # a broken buzzer must not hide the tap
            log.warning("buzzer: %s", exc)
