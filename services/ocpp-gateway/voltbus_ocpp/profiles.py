"""Charging profiles of one station: installed on the engine, kept on disk, applied as limits.

The profile engine is `model/smart_charging.py`; this binds it to the running transactions and to
the profiles table, and turns the profiles in force into each connector's `ProfileLimit`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from voltbus_ocpp.model.connector import Transaction
from voltbus_ocpp.model.events import Effect, Event, ProfileLimit
from voltbus_ocpp.model.results import Outcome
from voltbus_ocpp.model.smart_charging import SmartCharging
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.repositories import ChargingProfiles


def tx_key(tx: Transaction) -> str:
    """The id profiles know a transaction by: its central-system id, else minus its local id
    (a TxProfile may arrive before the start was answered)."""
    return tx.transaction_id or str(-tx.local_id)


class Profiles:
    """Install, clear and apply a station's charging profiles."""

    def __init__(self, smart: SmartCharging, table: ChargingProfiles, model: StationModel, *,
                 clock: Callable[[], datetime],
                 dispatch: Callable[[Event], list[Effect]]) -> None:
        self.smart = smart
        self.table = table
        self.model = model
        self.clock = clock
        self.dispatch = dispatch
        self._held: dict[int, dict[str, Any]] = {}  # TxProfiles for transactions yet to start

    def install(self, connector: int, profile: dict[str, Any]) -> Outcome:
        """Install on the connector (a TxProfile on its running transaction)."""
        tx = self.model.connectors[connector].facts.tx if connector else None
        status = self.smart.install(connector, profile, None if tx is None else tx_key(tx))
        if status is Outcome.ACCEPTED:
            self.table.save(self.smart.profiles)
            self.apply()
        return status

    def hold(self, connector: int, profile: dict[str, Any]) -> None:
        """Install a TxProfile when the connector's next transaction starts."""
        self._held[connector] = profile

    def started(self, connector: int) -> None:
        """A transaction started on the connector: a TxProfile held for it applies now."""
        profile = self._held.pop(connector, None)
        if profile is not None:
            self.install(connector, profile)

    def ended(self, transaction_id: str | None) -> None:
        """TxProfiles end with their transaction."""
        self.smart.end_transaction(transaction_id)

    def clear(self, *, profile_id: int | None, connector: int | None, purpose: str | None,
              stack_level: int | None) -> bool:
        """Remove matching profiles; True if any were."""
        found = self.smart.clear(profile_id=profile_id, connector=connector, purpose=purpose,
                                 stack_level=stack_level)
        if found:
            self.table.save(self.smart.profiles)
            self.apply()
        return found

    def composite(self, connector: int, start: datetime,
                  duration_s: int) -> list[dict[str, Any]]:
        """The limit periods in A from start (empty: nothing limits it)."""
        tx = self.model.connectors[connector].facts.tx if connector else None
        return self.smart.composite(connector or 1, start, duration_s, in_tx=tx is not None,
                                    tx_id=tx_key(tx) if tx else None,
                                    tx_start=tx.started_at if tx else None)

    def apply(self) -> None:
        """Turn the charging profiles in force now into each connector's limit."""
        now = self.clock()
        connectors = self.model.connectors.values()
        charging = sum(1 for c in connectors if c.facts.tx is not None)
        for c in connectors:
            tx = c.facts.tx
            limit = self.smart.limit_a(c.connector_id, now,
                                       tx_id=tx_key(tx) if tx else None,
                                       tx_start=tx.started_at if tx else None,
                                       in_tx=tx is not None,
                                       sharing=charging if tx is not None else max(1, charging))
            if limit != c.facts.profile_limit_a:
                self.dispatch(ProfileLimit(c.connector_id, limit))
