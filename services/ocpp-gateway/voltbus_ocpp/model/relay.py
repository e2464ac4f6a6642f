"""Keeping the relay where the gateway wants it, without fighting the hardware's safety rules.

Relay commands are not retained and the hardware service uses a clean MQTT session, so a command
sent while it (re)connects is lost. The retained `hw/{c}/relay` state is the truth: when it
disagrees with what the gateway wants for longer than a grace period after the last command, the
command is sent again, with backoff, at most `MAX_RESENDS` times per disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

MAX_RESENDS = 4


class Verdict(Enum):
    """What a disagreement between wanted and reported relay state calls for."""

    AGREE = "agree"  # nothing to do (or nothing reported yet)
    RESEND = "resend"  # send the wanted state again (once the grace period is over)
    HOLD = "hold"  # the hardware has its reasons: a fault, or no EV on the pilot


def verdict(*, want_closed: bool, reported: bool | None, may_close: bool) -> Verdict:
    """Opening is always safe; closing again only while the hardware would allow it."""
    if reported is None or reported == want_closed:
        return Verdict.AGREE
    if want_closed and not may_close:
        return Verdict.HOLD
    return Verdict.RESEND


@dataclass
class RelayKeeper:
    """When the relay was last commanded, and how often it was re-sent since they disagree."""

    grace_s: float = 3.0
    sent_at: datetime | None = None
    since: datetime | None = None  # when wanted and reported started to disagree
    resends: int = 0

    def commanded(self, now: datetime) -> None:
        """A fresh command (a transaction started/stopped, or a resync): the count starts over."""
        self.sent_at, self.resends = now, 0

    def observe(self, now: datetime, v: Verdict) -> None:
        """Note when a disagreement began (or that it ended)."""
        if v is Verdict.AGREE:
            self.since, self.resends = None, 0
        elif self.since is None:
            self.since = now

    def due(self, now: datetime, v: Verdict) -> bool:
        """True when the wanted state is to be sent again now (the caller sends it)."""
        self.observe(now, v)
        if self.since is None or v is Verdict.HOLD or self.resends >= MAX_RESENDS:
            return False
        last = max(self.since, self.sent_at) if self.sent_at is not None else self.since
        if now < last + timedelta(seconds=self.grace_s * 2 ** self.resends):
            return False
        self.sent_at = now
        self.resends += 1
        return True

    def next_due(self, now: datetime, v: Verdict) -> datetime | None:
        """When `due` will next say True (None: not while nothing changes); notes a
        disagreement that began, as `due` does."""
        self.observe(now, v)
        if self.since is None or v is Verdict.HOLD or self.resends >= MAX_RESENDS:
            return None
        last = max(self.since, self.sent_at) if self.sent_at is not None else self.since
        return last + timedelta(seconds=self.grace_s * 2 ** self.resends)
