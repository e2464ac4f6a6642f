"""What the model reads from the charge point's configuration keys (typed getters)."""

from __future__ import annotations

from typing import Protocol


class ConfigView(Protocol):
    """Typed read access to OCPP configuration keys."""

    def get_int(self, key: str) -> int:
        """An integer key."""
        ...

    def get_bool(self, key: str) -> bool:
        """A boolean key."""
        ...

    def get_str(self, key: str) -> str:
        """A string (or CSL) key."""
        ...

    def get_seconds(self, key: str) -> float:
        """A duration key in seconds, times the time scale (tests run OCPP time faster)."""
        ...
