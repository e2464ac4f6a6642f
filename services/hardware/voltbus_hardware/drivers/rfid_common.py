"""What every card reader shares: upper-case hex ids, and one report per presentation."""

from __future__ import annotations

from dataclasses import dataclass


def hex_id(uid: bytes) -> str:
    """A card UID as OCPP idTag: upper-case hex, no separators (04A1B2C3)."""
    return uid.hex().upper()


@dataclass
class Presence:
    """Reports a card once while it is held; again only after it was gone for `gone_after` polls.

    Readers miss a held card now and then (anticollision timing, a card at the field's edge), so
    one empty poll must not count as a new presentation.
    """

    gone_after: int = 2
    _current: str | None = None
    _misses: int = 0

    def update(self, uid: str | None) -> str | None:
        """Feed one poll's result; returns the uid when this is a new presentation."""
        if uid is None:
            self._misses += 1
            if self._misses >= self.gone_after:
                self._current = None
            return None
        self._misses = 0
        if uid == self._current:
            return None
        self._current = uid
        return uid
