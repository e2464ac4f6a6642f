"""The site energy manager's limit: one more input to a connector's effective limit.

Like the off-peak policy, it only ever lowers the limit (the effective limit is the minimum of
the OCPP profile, this, the off-peak policy and the hardware maximum), so central-system
profiles are always honoured. Below the 6 A an EV can be offered (IEC 61851) the connector
pauses at 0 A rather than offering less.
"""

from __future__ import annotations

from dataclasses import dataclass

from voltbus_ocpp.model.connector import Connector
from voltbus_ocpp.model.events import Effect, Event, PublishCharging

EV_MIN_A = 6.0


@dataclass(frozen=True)
class EnergyLimit(Event):
    """The energy manager's limit for a connector (A per phase)."""

    connector: int
    amps: float


def apply_energy_limit(c: Connector, amps: float) -> list[Effect]:
    """Take the new limit; tell the EVSE and the bus only when the effective limit moves."""
    before = c.effective_limit_a
    c.facts.energy_limit_a = 0.0 if amps < EV_MIN_A else amps
    if c.facts.tx is not None and c.limit_sent_a != c.effective_limit_a:
        return c.push_limit()
    if c.effective_limit_a != before:
        return [*c.idle_limit(),
                PublishCharging(c.connector_id, c.facts.enabled, c.effective_limit_a)]
    return []
