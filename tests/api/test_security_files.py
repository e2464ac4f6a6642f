"""The API's secrets and databases are 0600 whatever the umask (issue 15: they were 0644)."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Peers, api_settings, running_api
from tests.fixtures.mosquitto import Broker
from voltbus_common.private_files import private_sqlite, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


async def test_every_file_the_api_writes_is_private(mosquitto: Broker, peers: Peers,
                                                    station: str, tmp_path: Path,
                                                    umask: int) -> None:
    data_dir = tmp_path / "data"
    settings = api_settings(mosquitto, station, data_dir)
    api_dir = data_dir / "api"
    async with running_api(settings) as (client, _):
        assert (await client.get("/api/v1/sessions")).status_code == 200  # history opened
        written = sorted(p.name for p in api_dir.iterdir())  # WAL side files exist while open
        assert {"auth.sqlite", "history.sqlite", "history.sqlite-wal", "history.sqlite-shm",
                "initial-admin-password"} <= set(written)
        for name in written:
            assert mode(api_dir / name) == 0o600, (name, oct(mode(api_dir / name)))
    assert mode(data_dir / "admin-token") == 0o600
    assert mode(api_dir) == 0o700


async def test_an_older_installs_readable_database_is_tightened(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    for name in ("auth.sqlite", "history.sqlite"):
        sqlite3.connect(api_dir / name).close()
        os.chmod(api_dir / name, 0o644)
    async with running_api(api_settings(mosquitto, station, tmp_path)):
        pass
    assert mode(api_dir / "auth.sqlite") == 0o600
    assert mode(api_dir / "history.sqlite") == 0o600


def test_private_files_are_0600_from_the_start(tmp_path: Path, umask: int) -> None:
    write_private(tmp_path / "new" / "token", "secret\n")
    assert (tmp_path / "new" / "token").read_text() == "secret\n"
    assert mode(tmp_path / "new" / "token") == 0o600
    assert mode(tmp_path / "new") == 0o700
    write_private(tmp_path / "new" / "token", "other\n")  # replaced, still private
    assert mode(tmp_path / "new" / "token") == 0o600
    db = private_sqlite(tmp_path / "x.sqlite")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    for suffix in ("", "-wal", "-shm"):
        assert mode(tmp_path / f"x.sqlite{suffix}") == 0o600, suffix
    conn.close()
