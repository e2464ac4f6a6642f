"""The site energy manager's limit: one more input to a connector's effective limit.

Like the off-peak policy, it only ever lowers the limit (the effective limit is the minimum of
the OCPP profile, this, the off-peak policy and the hardware maximum), so central-system
profiles are always honoured. Below the 6 A an EV can be offered (IEC 61851) the connector
pauses at 0 A rather than offering less.

The limit holds only while it is refreshed (the fail-safe a load-managed charger has when its
load manager is lost): the energy manager sends every limit again every VOLTBUS_ENERGY_RESEND_S
(10 s). A connector the energy manager has limited once is *managed*; when no limit came for
it within `EnergyGuard.timeout_s` (VOLTBUS_ENERGY_LIMIT_TIMEOUT_S, 30 s), or the status of its
energy manager (the site the limit named) goes offline (its MQTT Will), its energy input
becomes the fail-safe limit (VOLTBUS_ENERGY_LIMIT_FAILSAFE_A, 6 A; 0 pauses) or the last limit
if that was lower (a paused or idle connector stays at 0 A: the energy manager gave its share
to connectors that may be behind another bridge and still draw it), still the minimum with the
profiles, off-peak and the hardware maximum, and `Facts.energy_fail_safe` says why.
Behind a bridge (several Pis on one site), the Pi broker's bridge says at once when its link
to the site broker drops (`SiteLinkChanged`, from `{root}/{stations}/bridge/state` 0): every
managed connector falls to the fail-safe at once (LINK_DOWN_REASON), not after the timeout;
the link back changes nothing until the energy manager's next limit, which comes through it.
The energy manager's next limit takes over at once. A connector no limit ever came for (a site
without an energy manager) is never in fail-safe. Which connectors are managed, and by which
site, is kept across restarts (`managed`, station.py stores it): a gateway restarted while
its energy manager is away still falls to the fail-safe limit, after the timeout counted from
the start (at once when the energy manager's retained status says offline).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from voltbus_ocpp.model.connector import Connector
from voltbus_ocpp.model.events import Effect, Event, PublishCharging

log = logging.getLogger(__name__)

EV_MIN_A = 6.0
OFFLINE_REASON = "energy manager offline"
LINK_DOWN_REASON = "link to the site broker down"


@dataclass(frozen=True)
class EnergyLimit(Event):
    """The energy manager's limit for a connector (A per phase); site: the energy manager's
    site id, when its message names it."""

    connector: int
    amps: float
    site: str | None = None


@dataclass(frozen=True)
class EnergyManagerStatus(Event):
    """The status of the energy manager of a site: online, or offline (a clean stop or its
    Will)."""

    site: str
    online: bool


@dataclass(frozen=True)
class SiteLinkChanged(Event):
    """The bridge of this station's broker to the site broker (where the energy manager is):
    up, or down (its notification says so at once)."""

    up: bool


@dataclass(frozen=True)
class RememberEnergyManaged(Effect):
    """The managed connectors moved: store them (connector: the site, or None if unnamed)."""

    managed: dict[int, str | None]


def apply_energy_limit(c: Connector, amps: float, *, tell: bool = False) -> list[Effect]:
    """Take the new limit; tell the EVSE and the bus only when the effective limit moves (the
    bus also when `tell`: a fail-safe began or ended, whatever the limit)."""
    before = c.effective_limit_a
    c.facts.energy_limit_a = 0.0 if amps < EV_MIN_A else amps
    if c.facts.tx is not None and c.limit_sent_a != c.effective_limit_a:
        return c.push_limit()
    if c.effective_limit_a != before:
        return [*c.idle_limit(), PublishCharging(c.connector_id, c.facts.enabled,
                                                 c.effective_limit_a)]
    if tell:
        limit = c.limit_sent_a if c.facts.tx is not None and c.limit_sent_a is not None else (
            c.effective_limit_a)
        return [PublishCharging(c.connector_id, c.facts.enabled, limit)]
    return []


@dataclass
class EnergyGuard:
    """Holds the energy manager's limits only while they are refreshed (module docstring)."""

    timeout_s: float = 30.0  # 0: off (the limit holds until the next one, as before)
    failsafe_a: float = EV_MIN_A
    # per managed connector: the energy manager's site (None: its messages did not name it)
    managed: dict[int, str | None] = field(default_factory=dict)
    # a fail-safe came into force or ended in the last event (a charging rate it moves is
    # the external limit's doing: ChargingRateChanged)
    moved: bool = False

    @property
    def on(self) -> bool:
        """The fail-safe is configured (a timeout)."""
        return self.timeout_s > 0

    def restore(self, connectors: dict[int, Connector], managed: dict[int, str | None],
                now: datetime) -> None:
        """Managed connectors from before a restart: the timeout runs from now."""
        for n, site in managed.items():
            if n in connectors:
                self.managed[n] = site
                connectors[n].energy_heard_at = now

    def heard(self, c: Connector, event: EnergyLimit, now: datetime) -> list[Effect]:
        """A limit (new or refreshed): in force, and a fail-safe ends."""
        c.energy_heard_at = now
        effects: list[Effect] = []
        site = event.site if event.site is not None else self.managed.get(c.connector_id)
        if self.managed.get(c.connector_id, "") != site:
            self.managed[c.connector_id] = site
            effects.append(RememberEnergyManaged(dict(self.managed)))
        tell = c.facts.energy_fail_safe is not None
        if tell:
            log.info("connector %d: the energy manager's limit is back (%.1f A): fail-safe "
                     "ends", c.connector_id, event.amps)
            c.facts.energy_fail_safe = None
            self.moved = True
        return effects + apply_energy_limit(c, event.amps, tell=tell)

    def due(self, c: Connector) -> datetime | None:
        """When this connector's limit lapses (None: not managed, already in fail-safe, or off)."""
        if (not self.on or c.connector_id not in self.managed or c.energy_heard_at is None
                or c.facts.energy_fail_safe is not None):
            return None
        return c.energy_heard_at + timedelta(seconds=self.timeout_s)

    def lapse(self, c: Connector, reason: str) -> list[Effect]:
        """The fail-safe limit replaces the energy manager's, but never raises it: a connector
        the energy manager held lower (paused at 0 A, or idle with no share reserved) stays
        there, since the energy manager gave that current to others, who may still draw it."""
        last = c.facts.energy_limit_a
        amps = self.failsafe_a if last is None else min(self.failsafe_a, last)
        log.warning("connector %d: %s: fail-safe limit %.1f A (VOLTBUS_ENERGY_LIMIT_FAILSAFE_A "
                    "%.1f A, never above the last limit)", c.connector_id, reason, amps,
                    self.failsafe_a)
        c.facts.energy_fail_safe = reason
        self.moved = True
        return apply_energy_limit(c, amps, tell=True)

    def on_tick(self, connectors: dict[int, Connector], now: datetime) -> list[Effect]:
        """Managed connectors whose limit was not refreshed in time fall to the fail-safe."""
        effects: list[Effect] = []
        for c in connectors.values():
            due = self.due(c)
            if due is not None and now >= due:
                effects += self.lapse(c, f"no energy manager limit for {self.timeout_s:g} s")
        return effects

    def on_status(self, connectors: dict[int, Connector], event: EnergyManagerStatus
                  ) -> list[Effect]:
        """The energy manager went offline: its connectors fall to the fail-safe at once (back
        online: its limits, which it sends at its start, end the fail-safe)."""
        if event.online or not self.on:
            return []
        effects: list[Effect] = []
        for n, site in self.managed.items():
            c = connectors.get(n)
            if c is not None and site == event.site and c.facts.energy_fail_safe is None:
                effects += self.lapse(c, OFFLINE_REASON)
        return effects

    def on_site_link(self, connectors: dict[int, Connector], event: SiteLinkChanged
                     ) -> list[Effect]:
        """The link to the site broker dropped: every managed connector, whatever its site (an
        energy manager behind the bridge can reach none of them), falls to the fail-safe at
        once. Back up: nothing changes until the energy manager's next limit."""
        if event.up or not self.on:
            return []
        effects: list[Effect] = []
        for n in self.managed:
            c = connectors.get(n)
            if c is not None and c.facts.energy_fail_safe is None:
                effects += self.lapse(c, LINK_DOWN_REASON)
        return effects

    def next_due(self, connectors: dict[int, Connector]) -> datetime | None:
        """The earliest lapse."""
        return min((d for c in connectors.values() if (d := self.due(c)) is not None),
                   default=None)
