"""UnlockConnector through the cable lock (issue 10 §3): Unlocked only when the hardware confirms.

The hardware answers every `hw/{c}/lock/set` on the retained `hw/{c}/lock` with the command's
request_id: unlocked, locked (refused: the relay is still closed), failed (not confirmed in time)
or not_supported (no lock on this connector). An unlock here:

1. stops the connector's transaction (reason UnlockCommand), which opens the relay;
2. waits (bounded) until the hardware reports the relay open (it refuses an unlock before);
3. sends lock/set unlocked with a request_id and waits (bounded) for the lock state with it:
   unlocked -> Unlocked; failed or locked -> UnlockFailed; not_supported -> NotSupported.

A connector whose hardware has published no lock state at all (an older hardware service, or a
hardware service that is down) answers NotSupported after LOCK_STATE_WAIT_S, one whose retained
state says not_supported at once, transaction untouched. The wait is for a gateway that has just
started: the central system may send UnlockConnector right after the boot, before the gateway's
own MQTT connection has brought the hardware's retained lock state.
VOLTBUS_UNLOCK_SUPPORTED is obsolete: it is still accepted and ignored (a warning says so).

The lock follows the transaction (OCPP 1.6 3.6, 9.1.31) on a connector with a lock:

- a relay close is sent only after the lock confirmed `locked` (lock/set locked first, the close
  held back until the answer, bounded; a newer relay command wins), so a lock that must hold the
  plug before the socket is energised (`required_to_close`) gets it;
- when a transaction ends the lock opens (once the relay is open), except when it ended because
  the EV side was disconnected and UnlockConnectorOnEVSideDisconnect is false: then the connector
  stays locked "until the user presents the identifier" (its tag, which is then not a new tap) or
  an UnlockConnector. With StopTransactionOnEVSideDisconnect false the transaction, and with it
  the lock, goes on after an EV-side disconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.aio import timeout
from voltbus_common.bus import Bus
from voltbus_common.enums import LockState, StopReason
from voltbus_common.models import LockCommand, LockStatus
from voltbus_ocpp.model.events import Event, Unlock
from voltbus_ocpp.model.results import Outcome

log = logging.getLogger(__name__)

RELAY_OPEN_WAIT_S = 3.0  # the stop's relay opening, confirmed by the hardware
LOCK_ANSWER_WAIT_S = 5.0  # the hardware gives up on an unconfirmed move before this
LOCK_STATE_WAIT_S = 2.0  # for the retained lock state right after start-up

_serial = itertools.count(1)


class CableLocks:
    """The lock state per connector as the hardware confirms it, and the unlock sequence."""

    def __init__(self, bus: Bus, dispatch: Callable[[Event], object]) -> None:
        self.bus = bus
        self.dispatch = dispatch
        self.states: dict[int, LockStatus] = {}
        # Answers by request id: a later state (the hardware's start-up report, another move)
        # may replace states[c] before the waiting task runs, and the answer must not be lost.
        self._answers: dict[str, LockStatus] = {}
        self.relay_closed: dict[int, bool] = {}
        self._changed = asyncio.Event()
        self.held: dict[int, str] = {}  # connector -> the id tag whose presentation unlocks it
        self._relay_commands: dict[int, int] = {}  # connector -> serial of its last relay/set
        self._tasks: set[asyncio.Task[None]] = set()

    def has_lock(self, connector: int) -> bool:
        """The hardware reported a lock on this connector."""
        known = self.states.get(connector)
        return known is not None and known.state is not LockState.NOT_SUPPORTED

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def relay(self, connector: int, closed: bool, send: Callable[[], None]) -> None:
        """A relay command: a close waits for the lock to confirm `locked` first."""
        serial = self._relay_commands.get(connector, 0) + 1
        self._relay_commands[connector] = serial
        known = self.states.get(connector)
        if not closed or not self.has_lock(connector) or (
                known is not None and known.state is LockState.LOCKED):
            send()
            return
        request_id = f"lock-{connector}-{next(_serial)}"
        self.bus.publish(ch.LOCK_SET, LockCommand(locked=True, request_id=request_id),
                         connector=connector)
        self._spawn(self._close_when_locked(connector, serial, request_id, send))

    async def _close_when_locked(self, connector: int, serial: int, request_id: str,
                                 send: Callable[[], None]) -> None:
        answer = await self._answer(request_id)
        if answer is None or answer.state is not LockState.LOCKED:
            log.warning("connector %d: the cable lock did not confirm locked; closing the relay "
                        "anyway (a lock required to close makes the hardware refuse it)",
                        connector)
        if self._relay_commands.get(connector) == serial:  # no newer relay command since
            send()

    def session_ended(self, connector: int, id_tag: str | None, reason: StopReason | None,
                      unlock_on_ev_disconnect: bool) -> None:
        """A transaction ended: unlock, or hold the lock for its tag (see the module doc; a
        transaction never authorised has no tag to wait for: unlocked)."""
        if not self.has_lock(connector):
            return
        if (reason is StopReason.EV_DISCONNECTED and not unlock_on_ev_disconnect
                and id_tag is not None):
            log.info("connector %d: EV side disconnected; the cable stays locked until %s is "
                     "presented (UnlockConnectorOnEVSideDisconnect false)", connector, id_tag)
            self.held[connector] = id_tag
            return
        self.held.pop(connector, None)
        self._spawn(self.release(connector))

    def presented(self, id_tag: str) -> bool:
        """A card: True when it was the tag a held lock waited for (it is unlocked now)."""
        for connector, tag in list(self.held.items()):
            if tag == id_tag:
                del self.held[connector]
                log.info("connector %d: %s presented; unlocking the cable", connector, id_tag)
                self._spawn(self.release(connector))
                return True
        return False

    async def release(self, connector: int) -> None:
        """Unlock once the relay is open (the hardware refuses it under load)."""
        await self._until(lambda: self.relay_closed.get(connector) is not True,
                          RELAY_OPEN_WAIT_S)
        self.bus.publish(ch.LOCK_SET, LockCommand(
            locked=False, request_id=f"release-{connector}-{next(_serial)}"),
            connector=connector)

    def on_lock(self, connector: int, status: LockStatus) -> None:
        """A `hw/{c}/lock` state arrived."""
        self.states[connector] = status
        if status.request_id is not None:
            if len(self._answers) >= 64:  # answers nobody waits for (any more): forget them
                self._answers.clear()
            self._answers[status.request_id] = status
        self._changed.set()

    def on_relay(self, connector: int, closed: bool) -> None:
        """A `hw/{c}/relay` state arrived."""
        self.relay_closed[connector] = closed
        self._changed.set()

    async def _answer(self, request_id: str) -> LockStatus | None:
        """The hardware's answer to the lock command with this request id, None if none came
        within LOCK_ANSWER_WAIT_S."""
        if not await self._until(lambda: request_id in self._answers, LOCK_ANSWER_WAIT_S):
            return None
        return self._answers.pop(request_id)

    async def _until(self, check: Callable[[], bool], seconds: float) -> bool:
        try:
            async with timeout(seconds):
                while not check():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def unlock(self, connector: int) -> Outcome:
        """UnlockConnector: UNLOCKED, UNLOCK_FAILED or NOT_SUPPORTED."""
        if connector not in self.states:
            await self._until(lambda: connector in self.states, LOCK_STATE_WAIT_S)
        known = self.states.get(connector)
        if known is None or known.state is LockState.NOT_SUPPORTED:
            return Outcome.NOT_SUPPORTED
        self.held.pop(connector, None)
        self.dispatch(Unlock(connector))  # stops a running transaction: the relay opens
        if not await self._until(lambda: self.relay_closed.get(connector) is not True,
                                 RELAY_OPEN_WAIT_S):
            log.warning("connector %d: the relay did not open; unlocking anyway (the hardware "
                        "refuses it if the relay is closed)", connector)
        request_id = f"unlock-{connector}-{next(_serial)}"
        self.bus.publish(ch.LOCK_SET, LockCommand(locked=False, request_id=request_id),
                         connector=connector)
        state = await self._answer(request_id)
        if state is None:
            log.warning("connector %d: no answer from the cable lock within %.0f s: "
                        "UnlockFailed", connector, LOCK_ANSWER_WAIT_S)
            return Outcome.UNLOCK_FAILED
        if state.state is LockState.UNLOCKED:
            return Outcome.UNLOCKED
        if state.state is LockState.NOT_SUPPORTED:
            return Outcome.NOT_SUPPORTED
        log.warning("connector %d: unlock %s (%s): UnlockFailed", connector, state.state.value,
                    state.reason or "no reason given")
        return Outcome.UNLOCK_FAILED
