"""Cable locks: lock/set -> the lock driver; `lock` says only what the feedback confirms.

A move runs as a task of its own (a motor takes ~0.6 s and the bus must not wait for it); moves
on one connector are serialised. Unlocking while the relay is closed is refused: a plug must
never be pulled under load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import LockState
from voltbus_common.models import LockCommand, LockStatus
from voltbus_hardware.card_readers import guarded
from voltbus_hardware.drivers.base import CableLock, DeviceUnavailable
from voltbus_hardware.station import StationHardware

log = logging.getLogger(__name__)
NO_LOCK = "no cable lock configured"


@dataclass
class _Lock:
    hw: CableLock | None
    status: LockStatus | None = None
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)


class CableLocks:
    """The cable locks of one station (connectors without one answer not_supported)."""

    def __init__(self, bus: Bus, station: StationHardware, *,
                 relay_closed: Callable[[int], bool],
                 set_fault: Callable[[int, str | None], None]) -> None:
        self.bus = bus
        self.station = station
        self.relay_closed = relay_closed
        self.set_fault = set_fault
        self.locks = {n: _Lock(hw.lock) for n, hw in station.connectors.items()}
        self.tasks: set[asyncio.Task[None]] = set()

    def attach(self) -> None:
        """Subscribe to lock/set; call before bus.run()."""
        self.bus.on(ch.LOCK_SET, self._on_lock_set)

    async def publish_initial(self) -> None:
        """What each lock's feedback says at start-up (not_supported where there is none)."""
        for n, lock in self.locks.items():
            await guarded(self._confirm(n, lock), f"connector {n} lock")

    def confirmed_locked(self, connector: int) -> bool:
        """The feedback confirmed `locked` last (the relay may energise the socket)."""
        status = self.locks[connector].status
        return status is not None and status.state is LockState.LOCKED

    async def still_locked(self, connector: int) -> bool:
        """False when a confirmed lock's feedback no longer says locked (then `failed`)."""
        lock = self.locks[connector]
        if lock.hw is None or lock.busy.locked() or lock.status is None \
                or lock.status.state is not LockState.LOCKED:
            return True
        try:
            if await lock.hw.is_locked():
                return True
            info = "feedback lost while locked"
        except DeviceUnavailable as exc:
            info = str(exc)[:50]
        log.warning("connector %s: cable lock: %s", connector, info)
        self.set_fault(connector, info)
        self._publish(connector, lock, LockState.FAILED, None, info)
        return False

    def republish(self) -> None:
        """The last state of each lock, unchanged (after a reconnect)."""
        for n, lock in self.locks.items():
            if lock.status is not None:
                self.bus.publish(ch.LOCK, lock.status, connector=n)

    def cancel(self) -> None:
        """Stop moves in progress (the drivers switch their motors off)."""
        for task in self.tasks:
            task.cancel()

    async def _on_lock_set(self, msg: Received[LockCommand]) -> None:
        lock = self.locks.get(msg.connector)
        if lock is None:
            self.bus.reject(msg.topic, f"unknown connector {msg.connector}: station "
                            f"{self.station.id} has {sorted(self.locks)}")
            return
        if msg.payload is None:
            return
        move = self._move(msg.connector, lock, msg.payload, msg.topic)
        task = asyncio.create_task(guarded(move, f"connector {msg.connector} lock"))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _move(self, n: int, lock: _Lock, cmd: LockCommand, topic: str) -> None:
        async with lock.busy:
            if lock.hw is None:
                self._publish(n, lock, LockState.NOT_SUPPORTED, cmd.request_id, NO_LOCK)
                return
            if not cmd.locked and self.relay_closed(n):
                self.bus.reject(topic, "refused to unlock: the relay is closed")
                await self._confirm(n, lock, cmd.request_id, "refused: the relay is closed")
                return
            try:
                await lock.hw.set_locked(cmd.locked)
            except DeviceUnavailable as exc:
                log.warning("connector %s: cable %s failed: %s", n,
                            "lock" if cmd.locked else "unlock", exc)
                self.set_fault(n, str(exc)[:50])
                self._publish(n, lock, LockState.FAILED, cmd.request_id, str(exc)[:100])
                return
            await self._confirm(n, lock, cmd.request_id, want=cmd.locked)

    async def _confirm(self, n: int, lock: _Lock, request_id: str | None = None,
                       reason: str | None = None, *, want: bool | None = None) -> None:
        """Publish what the feedback says; a move it does not confirm is a failure."""
        if lock.hw is None:
            self._publish(n, lock, LockState.NOT_SUPPORTED, request_id, NO_LOCK)
            return
        try:
            locked = await lock.hw.is_locked()
        except DeviceUnavailable as exc:
            self.set_fault(n, str(exc)[:50])
            self._publish(n, lock, LockState.FAILED, request_id, str(exc)[:100])
            return
        if want is not None and locked != want:
            info = f"feedback says {'locked' if locked else 'unlocked'}"
            self.set_fault(n, info)
            self._publish(n, lock, LockState.FAILED, request_id, info)
            return
        if want is not None or lock.status is None:
            self.set_fault(n, None)  # a confirmed move (or a sane start) clears a lock fault
        self._publish(n, lock, LockState.LOCKED if locked else LockState.UNLOCKED, request_id,
                      reason)

    def _publish(self, n: int, lock: _Lock, state: LockState, request_id: str | None,
                 reason: str | None) -> None:
        lock.status = LockStatus(state=state, request_id=request_id, reason=reason)
        log.info("connector %s: cable lock %s%s", n, state.value,
                 f" ({reason})" if reason else "")
        self.bus.publish(ch.LOCK, lock.status, connector=n)
