"""The durable outbox: transaction records are stored before they are sent, sent in order with
their original timestamps, and removed only when the central system has answered.

Rows hold version-neutral records (`records.py`), converted by the protocol adapter when sent. A
transaction started offline has only a local id; once its start is answered the central system's
transaction id is recorded, and every later message of that transaction is sent with it (OCPP 1.6
4.7, "transaction-related messages").
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from voltbus_ocpp.records import Record, encode
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Queued:
    """One stored message."""

    seq: int
    kind: str  # records.STARTED ... (or a 1.6 action for rows from before records)
    payload: dict[str, Any]
    local_id: int | None
    attempts: int


class OfflineQueue:
    """Transaction starts, meter values and stops on disk, in order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    def put(self, record: Record, local_id: int | None) -> int:
        """Store a record; its sequence number."""
        return self.add(*encode(record), local_id)

    def add(self, kind: str, payload: dict[str, Any], local_id: int | None) -> int:
        """Store a row (a JSON body of that kind); its sequence number."""
        cur = self.db.execute("INSERT INTO outbox (action, payload, local_id) VALUES (?, ?, ?)",
                              (kind, json.dumps(payload), local_id))
        return int(cur.lastrowid or 0)

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def peek(self) -> Queued | None:
        """The oldest message, not removed."""
        row = self.db.execute("SELECT seq, action, payload, local_id, attempts FROM outbox "
                              "ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        return Queued(row[0], row[1], json.loads(row[2]), row[3], row[4])

    def all(self) -> list[Queued]:
        """Every stored message in order (for inspection and tests)."""
        rows = self.db.execute("SELECT seq, action, payload, local_id, attempts FROM outbox "
                               "ORDER BY seq").fetchall()
        return [Queued(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def done(self, seq: int) -> None:
        """The central system answered: forget the message."""
        self.store.forget("DELETE FROM outbox WHERE seq=?", (seq,))

    def failed(self, seq: int) -> int:
        """Count a failed attempt; the attempts so far."""
        self.db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq=?", (seq,))
        row = self.db.execute("SELECT attempts FROM outbox WHERE seq=?", (seq,)).fetchone()
        return int(row[0]) if row else 0

    def resolve(self, local_id: int, transaction_id: str) -> None:
        """Record the central system's id of a local transaction."""
        self.db.execute("INSERT OR REPLACE INTO txmap VALUES (?, ?)", (local_id, transaction_id))

    def transaction_id(self, local_id: int) -> str | None:
        """The central system's id of a local transaction, once it gave it."""
        row = self.db.execute("SELECT transaction_id FROM txmap WHERE local_id=?",
                              (local_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def forget_transaction(self, local_id: int) -> int:
        """Drop every queued message of a transaction the central system never accepted."""
        return self.db.execute("DELETE FROM outbox WHERE local_id=?", (local_id,)).rowcount
