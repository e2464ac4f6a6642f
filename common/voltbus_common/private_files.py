"""Files only the service's own user may read (0600), whatever the umask: secrets and databases.

`write_text` then `chmod` leaves the file readable by everyone for a moment under the usual
umask 022, and `sqlite3.connect` creates its file 0644. These create the file 0600 from the
first byte (O_CREAT with the mode, then fchmod, since O_CREAT's mode is itself masked by the
umask) and tighten an existing file left by an older version.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# sqlite's side files: the unix VFS gives them the database's mode, but only when it creates
# them; an old one left 0644 is tightened too.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create directory path (and parents) 0700 if missing; an existing one is left alone."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Make sure path exists with mode 0600 (created empty if missing), creating its directory."""
    if not path.parent.is_dir():
        private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def private_sqlite(path: Path) -> Path:
    """Prepare a sqlite database file (and existing side files) as 0600 before connecting."""
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, PRIVATE_FILE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write text to path as a 0600 file, replacing it atomically (never readable by others)."""
    if not path.parent.is_dir():
        private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "w") as f:
            fd = -1
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    finally:
        if fd != -1:
            os.close(fd)
    os.replace(tmp, path)
