"""Glue drivers: a relay that is the EVSE board's own, and a socket without a pilot."""

from __future__ import annotations

from typing import Any

from voltbus_common.enums import PilotState
from voltbus_hardware.drivers.base import EvseStatus, SupportsEnable


class EvseRelay:
    """The EVSE board switches its own contactor (OpenEVSE $FE/$FS, SmartEVSE enable pin)."""

    def __init__(self, evse: Any) -> None:
        if not isinstance(evse, SupportsEnable):
            raise ValueError(f"EVSE {type(evse).__name__} cannot switch its own relay")
        self.evse = evse

    async def set_closed(self, closed: bool) -> bool:
        """Enable or disable charging on the board."""
        await self.evse.set_enabled(closed)
        return closed


class NoPilot:
    """A plain socket (ChargePi's Schuko outlets): no pilot, so always 'EV connected' (B)."""

    async def status(self) -> EvseStatus:
        """Always B: the relay may close whenever the gateway says so."""
        return EvseStatus(PilotState.B)
