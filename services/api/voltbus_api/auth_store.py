"""Users (argon2-hashed passwords), API tokens and login sessions in a small sqlite file.

Tokens are random (256 bits) and stored only as SHA-256 digests: a stolen database does not
yield a usable token, and a fast hash is enough for secrets with that much entropy.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from voltbus_common.private_files import private_sqlite, write_private

if TYPE_CHECKING:
    from argon2 import PasswordHasher

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
INITIAL_PASSWORD_FILE = "initial-admin-password"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    role TEXT NOT NULL, kind TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL);
"""


class Role(StrEnum):
    """viewer reads; admin also sends commands and manages users and tokens."""

    VIEWER = "viewer"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who made a request: a user (login session) or an API token."""

    name: str
    role: Role
    kind: str  # "session" or "api"
    token_id: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh bearer token."""
    return "vb_" + secrets.token_urlsafe(32)


def write_secret_file(path: Path, text: str) -> None:
    """Write a secret readable by the owner only (0600 from the first byte, any umask)."""
    write_private(path, text + "\n")


class AuthStore:
    """The API's accounts; one sqlite connection used from the event loop thread only."""

    def __init__(self, path: Path, *, session_ttl_s: int) -> None:
        # Password hashes and token digests: 0600 before sqlite creates the file 0644.
        self._db = sqlite3.connect(private_sqlite(path), isolation_level=None,
                                   check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._session_ttl_s = session_ttl_s

    @functools.cached_property
    def _hasher(self) -> PasswordHasher:
        """The argon2 hasher, loaded at the first password (not needed for token checks)."""
        from argon2 import PasswordHasher

        return PasswordHasher()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # --- bootstrap ----------------------------------------------------------------------------

    def ensure_admin(self, directory: Path) -> Path | None:
        """On first start create user admin with a generated password written to a 0600 file."""
        if self._db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
            return None
        password = secrets.token_urlsafe(12)
        path = directory / INITIAL_PASSWORD_FILE
        write_secret_file(path, password)
        self.add_user(ADMIN_USER, password, Role.ADMIN)
        log.warning("first start: created user %r with a generated password; read it from %s "
                    "and change it after logging in", ADMIN_USER, path)
        return path

    def provision_token(self, path: Path) -> None:
        """Make the token in `path` a valid admin API token, generating the file if missing."""
        try:
            token = path.read_text().strip() if path.exists() else ""
            if not token:
                token = new_token()
                write_secret_file(path, token)
                log.info("wrote a new admin API token to %s", path)
        except OSError as exc:
            raise ValueError(f"VOLTBUS_API_ADMIN_TOKEN_FILE {path}: {exc.strerror}") from None
        if len(token) < 16:
            raise ValueError(f"{path}: an admin token must be at least 16 characters")
        if self._db.execute("SELECT 1 FROM tokens WHERE token_hash=?",
                            (_digest(token),)).fetchone() is None:
            self._insert_token(token, f"provisioned:{path.name}", Role.ADMIN, "api", None)

    # --- users --------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: Role) -> bool:
        """Create a user; False if the name is taken."""
        try:
            self._db.execute("INSERT INTO users VALUES (?, ?, ?, ?)",
                             (username, self._hasher.hash(password), role.value, time.time()))
        except sqlite3.IntegrityError:
            return False
        return True

    def users(self) -> list[tuple[str, Role]]:
        """Every user and role."""
        rows = self._db.execute("SELECT username, role FROM users ORDER BY username")
        return [(name, Role(role)) for name, role in rows]

    def delete_user(self, username: str) -> bool:
        """Remove a user and their sessions; False if there was none."""
        self._db.execute("DELETE FROM tokens WHERE kind='session' AND name=?", (username,))
        return self._db.execute("DELETE FROM users WHERE username=?", (username,)).rowcount > 0

    def set_role(self, username: str, role: Role) -> bool:
        """Change a user's role, ending their sessions (they log in again with it)."""
        changed = self._db.execute("UPDATE users SET role=? WHERE username=?",
                                   (role.value, username)).rowcount > 0
        self._db.execute("DELETE FROM tokens WHERE kind='session' AND name=?", (username,))
        return changed

    def role_of(self, username: str) -> Role | None:
        """A user's role, None if there is no such user."""
        row = self._db.execute("SELECT role FROM users WHERE username=?", (username,)).fetchone()
        return Role(row[0]) if row else None

    def admins(self) -> int:
        """How many users are admins."""
        return int(self._db.execute("SELECT count(*) FROM users WHERE role=?",
                                    (Role.ADMIN.value,)).fetchone()[0])

    def check_password(self, username: str, password: str) -> Role | None:
        """The user's role if the password is right (slow on purpose: run it in a thread)."""
        row = self._db.execute("SELECT password_hash, role FROM users WHERE username=?",
                               (username,)).fetchone()
        if row is None:
            # Same work as a real check, so timing does not reveal which names exist.
            self._hasher.hash(password)
            return None
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            self._hasher.verify(row[0], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return Role(row[1])

    def set_password(self, username: str, password: str, keep_session: str | None = None
                     ) -> None:
        """Replace a user's password and end their sessions, but for the one that changed it
        (keep_session: its token), so that the page doing the change stays logged in."""
        self._db.execute("UPDATE users SET password_hash=? WHERE username=?",
                         (self._hasher.hash(password), username))
        self._db.execute("DELETE FROM tokens WHERE kind='session' AND name=? AND token_hash<>?",
                         (username, _digest(keep_session) if keep_session else ""))

    # --- tokens -------------------------------------------------------------------------------

    def _insert_token(self, token: str, name: str, role: Role, kind: str,
                      expires_at: float | None) -> int:
        cur = self._db.execute(
            "INSERT INTO tokens (token_hash, name, role, kind, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(token), name, role.value, kind, time.time(), expires_at))
        return int(cur.lastrowid or 0)

    def create_session(self, username: str, role: Role) -> tuple[str, float]:
        """A login session token and its expiry (epoch seconds)."""
        token = new_token()
        expires = time.time() + self._session_ttl_s
        self._insert_token(token, username, role, "session", expires)
        return token, expires

    def create_api_token(self, name: str, role: Role) -> tuple[int, str]:
        """A long-lived API token for scripts; the secret is shown once."""
        token = new_token()
        return self._insert_token(token, name, role, "api", None), token

    def api_tokens(self) -> list[tuple[int, str, Role, float]]:
        """API tokens (never the secrets)."""
        rows = self._db.execute(
            "SELECT id, name, role, created_at FROM tokens WHERE kind='api' ORDER BY id")
        return [(i, n, Role(r), c) for i, n, r, c in rows]

    def revoke(self, token_id: int) -> bool:
        """Delete a token by id."""
        return self._db.execute("DELETE FROM tokens WHERE id=?", (token_id,)).rowcount > 0

    def revoke_secret(self, token: str) -> None:
        """Delete the token with this secret (logout)."""
        self._db.execute("DELETE FROM tokens WHERE token_hash=?", (_digest(token),))

    def authenticate(self, token: str) -> Principal | None:
        """Who holds this token, if it is valid and not expired."""
        row = self._db.execute(
            "SELECT id, name, role, kind, expires_at FROM tokens WHERE token_hash=?",
            (_digest(token),)).fetchone()
        if row is None:
            return None
        token_id, name, role, kind, expires_at = row
        if expires_at is not None and expires_at < time.time():
            self._db.execute("DELETE FROM tokens WHERE id=?", (token_id,))
            return None
        if kind == "session" and self._db.execute(
                "SELECT 1 FROM users WHERE username=?", (name,)).fetchone() is None:
            return None
        return Principal(name, Role(role), kind, token_id)
