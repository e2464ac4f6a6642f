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
from voltbus_ocpp.model.smart_charging import MAX, Installed, SmartCharging, boundaries
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.model.tokens import IdToken
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
        """Install a TxProfile when the connector's next transaction starts (it already sets
        the limit the transaction starts with)."""
        self._held[connector] = profile
        self.apply()

    def for_remote_start(self, connector: int | None, id_tag: IdToken,
                         profile: dict[str, Any]) -> None:
        """A TxProfile that came with an accepted remote start: onto the transaction it started
        (or will start) on the connector given, else the one the tag waits or charges on."""
        model = self.model
        target = connector or next((c.connector_id for c in model.connectors.values()
                                    if (c.facts.waiting and c.facts.waiting.id_tag == id_tag)
                                    or (c.facts.tx and c.facts.tx.id_tag == id_tag)), None)
        if target is None:
            return
        if model.connectors[target].facts.tx is not None:
            self.install(target, profile)
        else:
            self.hold(target, profile)

    def started(self, connector: int) -> None:
        """A transaction started on the connector: a TxProfile held for it applies now, and the
        station limit is shared again at once (the others lower before this relay closes)."""
        profile = self._held.pop(connector, None)
        if profile is not None:
            self.install(connector, profile)
        else:
            self.apply()

    def identified(self, local_id: int, transaction_id: str) -> None:
        """The central system gave the transaction its id: its TxProfiles follow (3.13.4)."""
        if self.smart.identified(str(-local_id), transaction_id):
            self.table.save(self.smart.profiles)

    def ended(self, transaction_id: str | None, local_id: int | None = None) -> None:
        """TxProfiles end with their transaction."""
        before = len(self.smart.profiles)
        self.smart.end_transaction(transaction_id,
                                   None if local_id is None else str(-local_id))
        if len(self.smart.profiles) != before:
            self.table.save(self.smart.profiles)

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
        """The limit periods in A from start (empty: nothing limits it); connector 0: the
        station's limit; a connector: with the share of the station limit it gets."""
        if connector == 0:
            return self.smart.composite(0, start, duration_s)
        tx = self.model.connectors[connector].facts.tx
        return self.smart.composite(connector, start, duration_s, in_tx=tx is not None,
                                    tx_id=tx_key(tx) if tx else None,
                                    # the schedule starts at a whole second, maybe
                                    # just before the transaction did
                                    tx_start=min(tx.started_at, start) if tx else None,
                                    sharing=self._sharing(connector))

    def _sharing(self, connector: int) -> int:
        """How many connectors share the station limit with this one: the charging ones, this
        one counted when idle (it starts at its share, never above it)."""
        charging = {c.connector_id for c in self.model.connectors.values()
                    if c.facts.tx is not None}
        return len(charging | {connector})

    def next_due(self, now: datetime) -> datetime | None:
        """The next instant after now where a limit in force may change (None: none in sight);
        the station's ticker waits for it instead of polling (issue 14)."""
        starts: set[datetime | None] = {c.facts.tx.started_at for c in
                                        self.model.connectors.values() if c.facts.tx is not None}
        starts.add(None)
        found: datetime | None = None
        installed = [*self.smart.profiles, *(Installed(n, p) for n, p in self._held.items())]
        for p in installed:
            for tx_start in (starts if p.purpose != MAX else (None,)):
                for t in boundaries(p.profile, now, tx_start):
                    if t > now and (found is None or t < found):
                        found = t
        return found

    @property
    def any(self) -> bool:
        """Some profile is installed or held (else apply() has nothing to do)."""
        return bool(self.smart.profiles or self._held)

    def apply(self) -> None:
        """Turn the charging profiles in force now into each connector's limit.

        An idle connector's limit is the one its next transaction starts with: its share of the
        station limit counting itself, and the TxProfile held for it."""
        now = self.clock()
        for c in list(self.model.connectors.values()):
            tx = c.facts.tx
            limit = self.smart.limit_a(c.connector_id, now,
                                       tx_id=tx_key(tx) if tx else None,
                                       tx_start=tx.started_at if tx else now,
                                       in_tx=tx is not None,
                                       sharing=self._sharing(c.connector_id),
                                       held=None if tx else self._held.get(c.connector_id))
            if limit != c.facts.profile_limit_a:
                self.dispatch(ProfileLimit(c.connector_id, limit))
