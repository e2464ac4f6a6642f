"""The station's state on disk (sqlite, one file per station): config, outbox, transactions, auth.

Writes are committed with synchronous=FULL, so a kill -9 or a power cut loses nothing that a caller
was told is stored. Inside a running event loop the writes of one loop iteration share one commit
(group commit): `transaction()` opens it and a `call_soon` callback commits it before any other
task runs, so nothing the station does afterwards (a relay command, an OCPP frame: both are sent by
other tasks) can be seen before its state is on disk, and a burst of meter readings from many
connectors costs one fsync instead of one each. Removing answered outbox rows (`forget`) needs no
fsync of its own: in WAL mode the row is gone after a kill -9 anyway, and the next FULL commit makes
it durable against a power cut; until then a power cut can only re-send, never lose, a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterator, MutableMapping
from datetime import datetime
from pathlib import Path

from voltbus_common.private_files import private_sqlite
from voltbus_ocpp.model.authorisation import AuthEntry
from voltbus_ocpp.model.results import AuthStatus
from voltbus_ocpp.model.tokens import IdToken, stored_type

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, payload TEXT NOT NULL,
    local_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS txmap (local_id INTEGER PRIMARY KEY, transaction_id INTEGER);
CREATE TABLE IF NOT EXISTS running (
    connector INTEGER PRIMARY KEY, local_id INTEGER NOT NULL, id_tag TEXT NOT NULL,
    started_at TEXT NOT NULL, meter_start_wh REAL NOT NULL, energy_wh REAL NOT NULL,
    transaction_id INTEGER, id_type TEXT);
CREATE TABLE IF NOT EXISTS auth (
    kind TEXT NOT NULL, id_tag TEXT NOT NULL, status TEXT NOT NULL, expiry TEXT, parent TEXT,
    id_type TEXT NOT NULL DEFAULT 'ISO14443', PRIMARY KEY (kind, id_tag, id_type));
CREATE TABLE IF NOT EXISTS profiles (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""


class Store:
    """One sqlite database; ':memory:' for tests of parts that need no disk."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):  # it holds the AuthorizationKey: readable by its owner only
            path.parent.mkdir(parents=True, exist_ok=True)
            private_sqlite(path)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self._migrate()

    def _columns(self, table: str) -> set[str]:
        return {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}

    def _migrate(self) -> None:
        """Files from before id tokens had types: the running table gets an id_type column
        (NULL: ISO14443, what was sent for every token then), the auth table is keyed by value
        and type (its rows become ISO14443: the cards they were learnt from)."""
        if "id_type" not in self._columns("running"):
            self.db.execute("ALTER TABLE running ADD COLUMN id_type TEXT")
        if "id_type" not in self._columns("auth"):
            self.db.executescript("""
                BEGIN IMMEDIATE;
                ALTER TABLE auth RENAME TO auth_untyped;
                CREATE TABLE auth (
                    kind TEXT NOT NULL, id_tag TEXT NOT NULL, status TEXT NOT NULL, expiry TEXT,
                    parent TEXT, id_type TEXT NOT NULL DEFAULT 'ISO14443',
                    PRIMARY KEY (kind, id_tag, id_type));
                INSERT INTO auth (kind, id_tag, status, expiry, parent)
                    SELECT kind, id_tag, status, expiry, parent FROM auth_untyped;
                DROP TABLE auth_untyped;
                COMMIT;""")
            log.info("auth table migrated: entries are per id token value and type")

    def close(self) -> None:
        """Close the database (a pending group commit is committed first)."""
        self.flush()
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit (one fsync); nested use joins the outer one.

        With a running event loop the commit is deferred to the end of this loop iteration and
        shared with every other write made until then (see the module docstring); a failed block
        rolls back only its own writes (a savepoint).
        """
        if self.db.in_transaction:
            self.db.execute("SAVEPOINT joined")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK TO joined")
                self.db.execute("RELEASE joined")
                raise
            self.db.execute("RELEASE joined")
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if loop is None:
            self.db.execute("COMMIT")
        else:
            loop.call_soon(self._commit_group)

    def _commit_group(self) -> None:
        """Commit the writes of the loop iteration that just ended (one fsync)."""
        if not self.db.in_transaction:
            return
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error:
            # Kept open: the next group retries the commit; nothing is dropped.
            log.exception("cannot commit the station state; retrying with the next write")

    def flush(self) -> None:
        """Commit a pending group now (before closing, or before a deliberate exit)."""
        self._commit_group()

    def forget(self, sql: str, args: tuple[object, ...]) -> int:
        """A delete that needs no fsync of its own (see the module docstring); rows deleted."""
        if self.db.in_transaction:  # part of the pending group commit
            return self.db.execute(sql, args).rowcount
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            return self.db.execute(sql, args).rowcount
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    def meta(self, key: str, default: str | None = None) -> str | None:
        """A value from the meta table."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        """Store a meta value."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        """Forget a meta value."""
        self.db.execute("DELETE FROM meta WHERE key=?", (key,))


class KeyRotation:
    """A new AuthorizationKey is only trusted once the central system accepted a connection with
    it: until then the key before it is kept here, and a 401 with the new key falls back to it
    (the station would be locked out otherwise). States: "" (the configured key is in use),
    "pending" (a new key not yet accepted), "refused" (the new key got a 401 and the previous
    one was accepted: keep using the previous one until the central system sets another key).
    The previous key "" means the one from VOLTBUS_CSMS_AUTH_KEY(_FILE)."""

    STATE, PREVIOUS = "auth_key_state", "auth_key_previous"

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def state(self) -> str:
        """"", "pending" or "refused"."""
        return self.store.meta(self.STATE, "") or ""

    @property
    def previous(self) -> str:
        """The last key known to be accepted ("": the environment's)."""
        return self.store.meta(self.PREVIOUS, "") or ""

    def rotated(self, in_use: str) -> None:
        """A new key is set; in_use is the configured one until now ("" for none). A key that
        was never accepted is not kept as the fallback."""
        with self.store.transaction():
            if self.state == "":
                self.store.set_meta(self.PREVIOUS, in_use)
            self.store.set_meta(self.STATE, "pending")

    def accepted(self) -> None:
        """The central system accepted a connection with the new key: forget the previous."""
        with self.store.transaction():
            self.store.delete_meta(self.STATE)
            self.store.delete_meta(self.PREVIOUS)

    def refused(self) -> None:
        """The new key got a 401 and the previous one was accepted."""
        with self.store.transaction():
            self.store.set_meta(self.STATE, "refused")


class AuthTable(MutableMapping[IdToken, AuthEntry]):
    """The authorisation cache ('cache') or the local list ('list') as a mapping on disk, keyed
    by id token (value and type)."""

    def __init__(self, store: Store, kind: str) -> None:
        self.store = store
        self.db = store.db
        self.kind = kind

    def __getitem__(self, id_tag: IdToken) -> AuthEntry:
        row = self.db.execute("SELECT status, expiry, parent FROM auth WHERE kind=? AND id_tag=? "
                              "AND id_type=?", (self.kind, id_tag.value, id_tag.type.value)
                              ).fetchone()
        if row is None:
            raise KeyError(id_tag)
        expiry = datetime.fromisoformat(row[1]) if row[1] else None
        return AuthEntry(AuthStatus(row[0]), expiry, row[2])  # also reads 1.6 spelling

    def __setitem__(self, id_tag: IdToken, entry: AuthEntry) -> None:
        # in the group commit: an Authorize answer's cache write shares the fsync of the
        # StartTransaction that follows it in the same loop iteration (it was an autocommit of
        # its own, a second fsync on the tap-to-relay path; issue 14)
        with self.store.transaction():
            self._put(id_tag, entry)

    def _put(self, id_tag: IdToken, entry: AuthEntry) -> None:
        self.db.execute("INSERT OR REPLACE INTO auth (kind, id_tag, status, expiry, parent, "
                        "id_type) VALUES (?, ?, ?, ?, ?, ?)",
                        (self.kind, id_tag.value, entry.status.value,
                         entry.expiry.isoformat() if entry.expiry else None, entry.parent_id_tag,
                         id_tag.type.value))

    def __delitem__(self, id_tag: IdToken) -> None:
        if self.db.execute("DELETE FROM auth WHERE kind=? AND id_tag=? AND id_type=?",
                           (self.kind, id_tag.value, id_tag.type.value)).rowcount == 0:
            raise KeyError(id_tag)

    def __iter__(self) -> Iterator[IdToken]:
        rows = self.db.execute("SELECT id_tag, id_type FROM auth WHERE kind=?",
                               (self.kind,)).fetchall()
        return iter([IdToken(r[0], stored_type(r[1])) for r in rows])

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM auth WHERE kind=?",
                                   (self.kind,)).fetchone()[0])

    def clear(self) -> None:
        """Remove every entry at once."""
        self.db.execute("DELETE FROM auth WHERE kind=?", (self.kind,))
