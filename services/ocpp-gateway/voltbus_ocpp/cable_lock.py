"""UnlockConnector through the cable lock (issue 10 §3): Unlocked only when the hardware confirms.

The hardware answers every `hw/{c}/lock/set` on the retained `hw/{c}/lock` with the command's
request_id: unlocked, locked (refused: the relay is still closed), failed (not confirmed in time)
or not_supported (no lock on this connector). An unlock here:

1. stops the connector's transaction (reason UnlockCommand), which opens the relay;
2. waits (bounded) until the hardware reports the relay open (it refuses an unlock before);
3. sends lock/set unlocked with a request_id and waits (bounded) for the lock state with it:
   unlocked -> Unlocked; failed or locked -> UnlockFailed; not_supported -> NotSupported.

A connector whose hardware has published no lock state at all (an older hardware service) or
whose retained state says not_supported answers NotSupported at once, transaction untouched.
VOLTBUS_UNLOCK_SUPPORTED is obsolete: it is still accepted and ignored (a warning says so).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import LockState
from voltbus_common.models import LockCommand, LockStatus
from voltbus_ocpp.model.events import Event, Unlock
from voltbus_ocpp.model.results import Outcome

log = logging.getLogger(__name__)

RELAY_OPEN_WAIT_S = 3.0  # the stop's relay opening, confirmed by the hardware
LOCK_ANSWER_WAIT_S = 5.0  # the hardware gives up on an unconfirmed move before this

_serial = itertools.count(1)


class CableLocks:
    """The lock state per connector as the hardware confirms it, and the unlock sequence."""

    def __init__(self, bus: Bus, dispatch: Callable[[Event], object]) -> None:
        self.bus = bus
        self.dispatch = dispatch
        self.states: dict[int, LockStatus] = {}
        self.relay_closed: dict[int, bool] = {}
        self._changed = asyncio.Event()

    def on_lock(self, connector: int, status: LockStatus) -> None:
        """A `hw/{c}/lock` state arrived."""
        self.states[connector] = status
        self._changed.set()

    def on_relay(self, connector: int, closed: bool) -> None:
        """A `hw/{c}/relay` state arrived."""
        self.relay_closed[connector] = closed
        self._changed.set()

    async def _until(self, check: Callable[[], bool], seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                while not check():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def unlock(self, connector: int) -> Outcome:
        """UnlockConnector: UNLOCKED, UNLOCK_FAILED or NOT_SUPPORTED."""
        known = self.states.get(connector)
        if known is None or known.state is LockState.NOT_SUPPORTED:
            return Outcome.NOT_SUPPORTED
        self.dispatch(Unlock(connector))  # stops a running transaction: the relay opens
        if not await self._until(lambda: self.relay_closed.get(connector) is not True,
                                 RELAY_OPEN_WAIT_S):
            log.warning("connector %d: the relay did not open; unlocking anyway (the hardware "
                        "refuses it if the relay is closed)", connector)
        request_id = f"unlock-{connector}-{next(_serial)}"
        self.bus.publish(ch.LOCK_SET, LockCommand(locked=False, request_id=request_id),
                         connector=connector)

        def answered() -> bool:
            s = self.states.get(connector)
            return s is not None and s.request_id == request_id

        if not await self._until(answered, LOCK_ANSWER_WAIT_S):
            log.warning("connector %d: no answer from the cable lock within %.0f s: "
                        "UnlockFailed", connector, LOCK_ANSWER_WAIT_S)
            return Outcome.UNLOCK_FAILED
        state = self.states[connector]
        if state.state is LockState.UNLOCKED:
            return Outcome.UNLOCKED
        if state.state is LockState.NOT_SUPPORTED:
            return Outcome.NOT_SUPPORTED
        log.warning("connector %d: unlock %s (%s): UnlockFailed", connector, state.state.value,
                    state.reason or "no reason given")
        return Outcome.UNLOCK_FAILED
