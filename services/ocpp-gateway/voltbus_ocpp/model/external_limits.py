"""Limits set by systems outside the central system, as the model reports them (version-neutral).

Two inputs of a connector's effective limit come from outside OCPP: the site energy manager's
limit (per connector, `Facts.energy_limit_a`) and the off-peak policy (station-wide: 0 A while the
cheap window is closed). While the energy manager is lost the station's fail-safe limit takes
the place of its limit (model/energy_limit.py): a source of its own, so the energy manager's
limit is reported released and the fail-safe one set (and the reverse when it is back).

A protocol that reports such limits (2.0.1 K11-K13 NotifyChargingLimit / ClearedChargingLimit)
learns of them through `ReportExternalLimit`: when one comes into force,
when it moves by more than the significance from the value last reported, and when it ends. The
model only says which source, where and how many amps; the protocol knows the wire.

A limit is in force while it restricts: an energy-manager limit at or above the connector's
hardware maximum restricts nothing (the manager's "now" mode sends the maximum), so it counts as
released. What was reported is kept by the station across restarts (`reported`), so a release
seen after a restart is still reported, and only once; until the energy manager is heard
again after a restart its limit is unknown, neither changed nor released.

A limit set or released while a transaction runs can move its charging rate (the connector's
effective limit): when it moves it by more than the significance the transaction is told
(`SendTransactionUpdate` CHARGING_RATE_CHANGED, 2.0.1 TransactionEvent Updated
ChargingRateChanged, K11.FR.04/K13.FR.03), through the transaction's durable, ordered path.
Only an external cause counts: a move by a central-system profile is the central system's own
doing (K01.FR.61 makes reporting it optional) and moves the reference instead. The reference is
the rate last reported or set otherwise, so small external steps add up; it is not kept across
a restart (the first move after one is measured from the rate then).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from voltbus_ocpp.model.connector import Connector
from voltbus_ocpp.model.events import Effect, SendTransactionUpdate
from voltbus_ocpp.model.results import TxUpdate

STATION = 0  # the scope of a station-wide limit (the off-peak policy)


class LimitSource(StrEnum):
    """Who set an external limit."""

    ENERGY_MANAGER = "energy_manager"  # services/energy: fuse guard, PV and plan modes
    OFF_PEAK = "off_peak"  # the station's off-peak window policy (model/offpeak.py)
    # the station's own safe limit while the energy manager is lost (model/energy_limit.py)
    ENERGY_FAIL_SAFE = "energy_fail_safe"


@dataclass(frozen=True)
class ReportExternalLimit(Effect):
    """An external limit came into force or moved significantly (amps), or ended (None)."""

    connector: int  # STATION (0): the whole station
    source: LimitSource
    amps: float | None
    ts: datetime


def significant(before: float | None, after: float | None, pct: float) -> bool:
    """A change worth reporting: a limit starts or ends, or moves by more than pct percent of
    the value last reported (from 0 A any rise is)."""
    if before is None or after is None:
        return before != after
    if before == 0:
        return after != 0
    return abs(after - before) / before * 100.0 > pct


@dataclass
class ExternalLimits:
    """What was last reported per (scope, source); decides what to report next."""

    reported: dict[tuple[int, LimitSource], float] = field(default_factory=dict)
    # per connector: (the running transaction's local id, its reference charging rate in A)
    rates: dict[int, tuple[int, float]] = field(default_factory=dict)

    @staticmethod
    def in_force(connectors: Iterable[Connector], holding: bool
                 ) -> dict[tuple[int, LimitSource], float]:
        """The external limits restricting now, per (scope, source)."""
        now: dict[tuple[int, LimitSource], float] = {}
        for c in connectors:
            amps = c.facts.energy_limit_a
            source = (LimitSource.ENERGY_MANAGER if c.facts.energy_fail_safe is None
                      else LimitSource.ENERGY_FAIL_SAFE)
            if amps is not None and amps < c.max_current_a:
                now[(c.connector_id, source)] = amps
        if holding:
            now[(STATION, LimitSource.OFF_PEAK)] = 0.0
        return now

    def reports(self, connectors: Iterable[Connector], holding: bool, pct: float | None,
                ts: datetime, scopes: set[int] | None = None) -> list[Effect]:
        """The reports due now (none when the protocol has no such report: pct None); only the
        given scopes (None: all) are looked at."""
        if pct is None:
            return []
        connectors = list(connectors)
        now = self.in_force(connectors, holding)
        # not heard from the energy manager since the start: its limit is unknown, not gone
        unknown = {(c.connector_id, LimitSource.ENERGY_MANAGER) for c in connectors
                   if c.facts.energy_limit_a is None}
        out: list[Effect] = []
        for key in sorted(set(now) | set(self.reported)):
            if (scopes is not None and key[0] not in scopes) or key in unknown:
                continue
            before, after = self.reported.get(key), now.get(key)
            if not significant(before, after, pct):
                continue
            if after is None:
                del self.reported[key]
            else:
                self.reported[key] = after
            out.append(ReportExternalLimit(key[0], key[1], after, ts))
        return out

    def rate_changes(self, connectors: Iterable[Connector], before: dict[int, float],
                     external: bool, pct: float | None, ts: datetime) -> list[Effect]:
        """The ChargingRateChanged updates due after one event: `before` is each running
        transaction's rate before it, `external` whether it set or released an external limit
        (none when the protocol has no such report: pct None)."""
        if pct is None:
            return []
        out: list[Effect] = []
        for c in connectors:
            n, tx = c.connector_id, c.facts.tx
            if tx is None:
                self.rates.pop(n, None)
                continue
            rate = c.effective_limit_a
            held = self.rates.get(n)
            base = held[1] if held is not None and held[0] == tx.local_id else None
            if not external:  # another cause moved it (or a first look): the new reference
                if base is None or rate != before.get(n, rate):
                    self.rates[n] = (tx.local_id, rate)
                continue
            if base is None:
                base = before.get(n, rate)
            if significant(base, rate, pct):
                out.append(SendTransactionUpdate(n, tx.local_id, TxUpdate.CHARGING_RATE_CHANGED,
                                                 ts, charging_state=tx.charging_state))
                base = rate
            self.rates[n] = (tx.local_id, base)
        return out
