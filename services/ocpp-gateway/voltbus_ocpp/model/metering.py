"""Billing-exact meterStop: the register read right after the relay opened (issue 10 §1).

The hardware reads the meter right after every relay switch and publishes it on
`hw/{c}/relay/reading` (a `SwitchReading`: the request_id of the relay/set it obeyed, and relay_ts,
the ts of the `relay` state it follows). A stopping transaction opens the relay with a request_id
and keeps its StopTransaction back until the reading carrying that request_id arrives (or, when
the hardware had opened by itself, the one whose relay_ts is that relay state's ts), at most
`SWITCH_WAIT_S`; then it falls back on the last reading plus power x age, and logs it.

A connector whose hardware never published a switch reading (no meter, or hardware that predates
the contract) is not waited for: its meterStop is the last reading, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count

from voltbus_common.enums import MeterTrigger, StopReason
from voltbus_ocpp.model.events import Event, MeterSnapshot, Sample, TransactionView
from voltbus_ocpp.model.results import ChargingState, TransferEnd
from voltbus_ocpp.model.tokens import IdToken

log = logging.getLogger(__name__)

SWITCH_WAIT_S = 2.0
"""How long a stop waits for the switch reading before it estimates the register."""

_serial = count(1)


def request_id(local_id: int, what: str) -> str:
    """A relay/set request_id unique in this process (a retained reading of an older run, whose
    local ids may repeat after a data reset, never matches it)."""
    return f"tx{local_id}-{what}-{next(_serial)}-{id(_serial) & 0xFFFF:x}"


@dataclass(frozen=True)
class SwitchRead(Event):
    """The meter reading the hardware took right after a relay switch."""

    connector: int
    reading: MeterSnapshot
    trigger: MeterTrigger  # RELAY_CLOSED or RELAY_OPENED
    relay_ts: datetime
    request_id: str | None
    settled: bool = True


@dataclass
class PendingStop:
    """A transaction that ended; its StopTransaction waits for the register after the opening."""

    request_id: str
    deadline: datetime
    local_id: int
    id_tag: IdToken | None
    stopped_at: datetime
    reason: StopReason
    started_at: datetime
    meter_start_wh: float
    samples: tuple[Sample, ...]
    view: TransactionView
    open_ts: datetime | None = None  # ts of a `relay` open the hardware did by itself
    transfer_end: TransferEnd | None = None  # ended because its energy transfer did
    departed: bool = False  # ended because the vehicle left the bay
    charging_state: ChargingState | None = None  # the state it ended in (None: not reported)

    def matches(self, r: SwitchRead) -> bool:
        """The reading taken after this stop's opening (never an older one)."""
        if r.trigger is not MeterTrigger.RELAY_OPENED:
            return False
        return r.request_id == self.request_id or (
            self.open_ts is not None and r.relay_ts == self.open_ts)


def estimate(last: MeterSnapshot | None, fallback_wh: float, at: datetime) -> float:
    """The register at `at` from the last reading: its register plus power x age."""
    if last is None:
        return fallback_wh
    age_s = max(0.0, (at - last.ts).total_seconds())
    return last.energy_wh + max(0.0, last.power_w) * age_s / 3600.0


def deadline(now: datetime) -> datetime:
    """When a stop waiting from now gives up on the switch reading."""
    return now + timedelta(seconds=SWITCH_WAIT_S)
