"""Running transactions, charging profiles and display messages on disk: the station's SQL kept
out of the station.

They live in the station's `Store` beside the auth table (`store.AuthTable`), so their writes join
the store's group commit. Transaction ids are text in the model; sqlite's INTEGER affinity keeps a
numeric id (OCPP 1.6's) as it always stored it, and any other id as text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voltbus_common.enums import MessageFormat, MessagePriority, MessageState
from voltbus_ocpp.model.display import Message
from voltbus_ocpp.model.events import SendStartTransaction
from voltbus_ocpp.model.smart_charging import Installed
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.model.tokens import IdToken, TokenType, stored_type
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningRow:
    """A transaction that was running when last written."""

    connector: int
    local_id: int
    id_tag: IdToken | None  # None: started at plug-in, not authorised (stored as "", no type)
    started_at: datetime
    meter_start_wh: float
    energy_wh: float
    transaction_id: str | None
    # the plug-in it charges (PilotEvent.plugged_at; None: not known, or no EV yet)
    plugged_at: datetime | None = None


class RunningTransactions:
    """The `running` table: one row per connector with a transaction, for recovery at start-up
    (resumed when the hardware still shows the same plug-in with the relay closed, else
    stopped: station.py `_recover`)."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(running)").fetchall()}
        if "plugged_at" not in columns:  # a database from before the plug-in identity
            self.db.execute("ALTER TABLE running ADD COLUMN plugged_at TEXT")

    def started(self, effect: SendStartTransaction, plugged_at: datetime | None = None) -> None:
        """A transaction began (its central-system id is not known yet)."""
        tag = effect.id_tag
        self.db.execute("INSERT OR REPLACE INTO running (connector, local_id, id_tag, started_at, "
                        "meter_start_wh, energy_wh, transaction_id, id_type, plugged_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                        (effect.connector, effect.local_id, "" if tag is None else tag.value,
                         effect.ts.isoformat(), effect.meter_start_wh, effect.meter_start_wh,
                         None if tag is None else tag.type.value,
                         None if plugged_at is None else plugged_at.isoformat()))

    def plugged(self, local_id: int, plugged_at: datetime | None) -> None:
        """The plug-in a running transaction charges changed (plugged in later, or again)."""
        self.db.execute("UPDATE running SET plugged_at=? WHERE local_id=?",
                        (None if plugged_at is None else plugged_at.isoformat(), local_id))

    def authorised(self, local_id: int, id_tag: IdToken) -> None:
        """A transaction started at plug-in got its id token."""
        self.db.execute("UPDATE running SET id_tag=?, id_type=? WHERE local_id=?",
                        (id_tag.value, id_tag.type.value, local_id))

    def metered(self, local_id: int, energy_wh: float) -> None:
        """The latest register of a running transaction."""
        self.db.execute("UPDATE running SET energy_wh=? WHERE local_id=?", (energy_wh, local_id))

    def identified(self, local_id: int, transaction_id: str) -> None:
        """The central system's id for it."""
        self.db.execute("UPDATE running SET transaction_id=? WHERE local_id=?",
                        (transaction_id, local_id))

    def stopped(self, local_id: int) -> None:
        """It ended."""
        self.db.execute("DELETE FROM running WHERE local_id=?", (local_id,))

    def all(self) -> list[RunningRow]:
        """Every running transaction on disk."""
        rows = self.db.execute("SELECT connector, local_id, id_tag, started_at, meter_start_wh, "
                               "energy_wh, transaction_id, id_type, plugged_at FROM running"
                               ).fetchall()
        return [RunningRow(r[0], r[1], _token(r[2], r[7]), datetime.fromisoformat(r[3]), r[4],
                           r[5], None if r[6] is None else str(r[6]),
                           None if r[8] is None else datetime.fromisoformat(r[8]))
                for r in rows]


def _token(value: str, kind: str | None) -> IdToken | None:
    """A stored token: "" without a type is none yet (started at plug-in); a row from before
    types were kept is ISO14443 (`tokens.stored_type`); NoAuthorization keeps its empty value."""
    if not value and kind != TokenType.NO_AUTHORIZATION.value:
        return None
    return IdToken(value, stored_type(kind))


class ChargingProfiles:
    """The `profiles` table: installed charging profiles, whole list replaced on change."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> list[Installed]:
        """Every stored profile, by id."""
        rows = self.store.db.execute("SELECT body FROM profiles ORDER BY id").fetchall()
        return [Installed(**json.loads(r[0])) for r in rows]

    def save(self, profiles: list[Installed]) -> None:
        """Replace the stored profiles (TxProfiles included; they end with their transaction)."""
        with self.store.transaction():
            self.store.db.execute("DELETE FROM profiles")
            for p in profiles:
                self.store.db.execute(
                    "INSERT INTO profiles VALUES (?, ?)",
                    (p.id, json.dumps({"connector": p.connector, "profile": p.profile})))


class Availability:
    """ChangeAvailability across restarts and hard resets (OCPP 1.6 5.2): the station's and each
    connector's availability in the meta table, written when it changes."""

    KEY = "availability"

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last: tuple[bool, dict[int, bool]] | None = None

    def restore(self, model: StationModel) -> None:
        """Put the stored availability on the model (nothing stored: all operative)."""
        raw = self.store.meta(self.KEY)
        if raw:
            data = json.loads(raw)
            model.restore_availability(bool(data["station"]), {
                int(n): bool(v) for n, v in data["connectors"].items()})
        self._last = model.availability()

    def keep(self, model: StationModel) -> None:
        """Write the model's availability if it changed."""
        now = model.availability()
        if now == self._last:
            return
        self._last = now
        station, connectors = now
        with self.store.transaction():
            self.store.set_meta(self.KEY, json.dumps({
                "station": station, "connectors": {str(n): v for n, v in connectors.items()}}))


class DisplayMessageTable:
    """The `display_messages` table: the central system's display messages, one row each, kept
    across restarts (O01: a message stays until cleared, replaced, past its end or its
    transaction's end)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.db.execute("CREATE TABLE IF NOT EXISTS display_messages "
                         "(id INTEGER PRIMARY KEY, body TEXT NOT NULL)")

    def load(self) -> list[Message]:
        """Every stored message, by id (a row this version cannot read is skipped, logged)."""
        found = []
        for row_id, body in self.store.db.execute(
                "SELECT id, body FROM display_messages ORDER BY id").fetchall():
            try:
                found.append(_message(json.loads(body)))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("display message %s on disk is unreadable, skipped: %s", row_id, exc)
        return found

    def put(self, message: Message) -> None:
        """Store (or replace) a message."""
        with self.store.transaction():
            self.store.db.execute("INSERT OR REPLACE INTO display_messages VALUES (?, ?)",
                                  (message.id, json.dumps(_row(message))))

    def delete(self, ids: list[int]) -> None:
        """Remove messages."""
        if ids:
            with self.store.transaction():
                self.store.db.executemany("DELETE FROM display_messages WHERE id=?",
                                          [(i,) for i in ids])


def _row(m: Message) -> dict[str, object]:
    return {"id": m.id, "priority": m.priority.value, "format": m.format.value,
            "content": m.content, "set_at": m.set_at.isoformat(), "language": m.language,
            "state": m.state.value if m.state else None,
            "starts_at": m.starts_at.isoformat() if m.starts_at else None,
            "ends_at": m.ends_at.isoformat() if m.ends_at else None,
            "transaction_ref": m.transaction_ref, "local_id": m.local_id,
            "connector": m.connector, "display": m.display}


def _message(d: dict[str, Any]) -> Message:
    def when(key: str) -> datetime | None:
        return datetime.fromisoformat(d[key]) if d.get(key) else None
    return Message(
        id=int(d["id"]), priority=MessagePriority(d["priority"]),
        format=MessageFormat(d["format"]), content=str(d["content"]),
        set_at=datetime.fromisoformat(d["set_at"]), language=d.get("language"),
        state=MessageState(d["state"]) if d.get("state") else None,
        starts_at=when("starts_at"), ends_at=when("ends_at"),
        transaction_ref=d.get("transaction_ref"), local_id=d.get("local_id"),
        connector=d.get("connector"), display=d.get("display"))
