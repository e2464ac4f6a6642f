"""The station store's group commit: one fsync per loop iteration, nothing lost to a kill -9."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.store import Store


def commits(store: Store) -> list[str]:
    """Record every COMMIT the store's connection executes."""
    seen: list[str] = []
    store.db.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


def rows_seen_by_another_reader(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        db.close()


async def test_writes_of_one_loop_iteration_share_one_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    queue = OfflineQueue(store)
    seen = commits(store)
    for i in range(50):  # a burst of meter readings from 50 connectors, handled back to back
        with store.transaction():
            queue.add("MeterValues", {"connectorId": i}, local_id=i)
    assert seen == []
    assert rows_seen_by_another_reader(tmp_path / "state.sqlite") == 0  # not committed yet
    await asyncio.sleep(0)  # the iteration ends: the group is committed before anything else
    assert seen == ["COMMIT"]
    assert rows_seen_by_another_reader(tmp_path / "state.sqlite") == 50
    store.close()


async def test_a_failed_block_rolls_back_only_its_own_writes(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    queue = OfflineQueue(store)
    with store.transaction():
        queue.add("MeterValues", {"n": 1}, local_id=1)
    def failing_block() -> None:
        with store.transaction():
            queue.add("MeterValues", {"n": 2}, local_id=1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_block()
    with store.transaction():
        queue.add("MeterValues", {"n": 3}, local_id=1)
    await asyncio.sleep(0)
    assert [q.payload["n"] for q in queue.all()] == [1, 3]
    assert rows_seen_by_another_reader(tmp_path / "state.sqlite") == 2
    store.close()


def test_without_an_event_loop_every_transaction_commits_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    seen = commits(store)
    with store.transaction():
        OfflineQueue(store).add("StartTransaction", {}, local_id=1)
    assert seen == ["COMMIT"]
    assert rows_seen_by_another_reader(tmp_path / "state.sqlite") == 1
    store.close()


async def test_answered_rows_are_removed_without_a_commit_of_their_own(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    queue = OfflineQueue(store)
    with store.transaction():
        seqs = [queue.add("MeterValues", {"n": n}, local_id=1) for n in range(3)]
    await asyncio.sleep(0)
    queue.done(seqs[0])  # outside a group: autocommitted with synchronous=NORMAL
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again afterwards
    assert rows_seen_by_another_reader(tmp_path / "state.sqlite") == 2
    with store.transaction():
        queue.add("MeterValues", {"n": 3}, local_id=1)
        queue.done(seqs[1])  # inside a group: part of its commit
    await asyncio.sleep(0)
    assert [q.payload["n"] for q in queue.all()] == [2, 3]
    store.close()


WRITER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from voltbus_ocpp.offline_queue import OfflineQueue
    from voltbus_ocpp.store import Store

    async def main() -> None:
        store = Store(Path(sys.argv[1]))
        queue = OfflineQueue(store)
        n = 0
        while True:
            for _ in range(7):
                with store.transaction():
                    n += 1
                    queue.add("MeterValues", {"n": n}, local_id=1)
            await asyncio.sleep(0)  # what a station does next runs after the commit
            print(n, flush=True)    # "told it is stored"

    asyncio.run(main())
""")


def test_kill_9_loses_nothing_that_was_reported_stored(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    reported = 0
    for line in proc.stdout:
        reported = int(line)
        if reported >= 2000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(path)
    stored = [row[0] for row in db.execute("SELECT json_extract(payload, '$.n') FROM outbox "
                                           "ORDER BY seq")]
    db.close()
    assert len(stored) >= reported
    assert stored == list(range(1, len(stored) + 1))  # in order, no gap, none twice


async def test_an_authorize_answer_cached_shares_the_start_transactions_commit(
        tmp_path: Path) -> None:
    """The tap path: the Authorize answer goes into the cache, then StartTransaction into the
    outbox, in one dispatch: one commit (the cache write was an autocommit of its own, a second
    fsync before the relay could close; issue 14)."""
    from voltbus_ocpp.model.authorisation import AuthEntry
    from voltbus_ocpp.model.results import AuthStatus
    from voltbus_ocpp.store import AuthTable

    store = Store(tmp_path / "state.sqlite")
    cache, queue = AuthTable(store, "cache"), OfflineQueue(store)
    seen = commits(store)
    cache[IdToken("TAG")] = AuthEntry(AuthStatus.ACCEPTED)
    assert store.db.in_transaction  # pending in the group, not committed on its own
    with store.transaction():
        queue.add("StartTransaction", {"idTag": "TAG"}, local_id=1)
    await asyncio.sleep(0)
    assert seen == ["COMMIT"]
    assert rows_seen_by_another_reader(tmp_path / "state.sqlite") == 1
    reader = sqlite3.connect(tmp_path / "state.sqlite")
    assert reader.execute("SELECT status FROM auth WHERE id_tag='TAG'").fetchone() == (
        AuthStatus.ACCEPTED.value,)
    reader.close()
    store.close()


async def test_a_tap_start_is_on_disk_before_it_is_on_the_wire(rig: Rig) -> None:
    """The StartTransaction an Authorize answer makes is stored in the messenger's own task,
    which went on to send it before the group commit ran: on the wire before it was on disk (a
    kill -9 then lost a transaction the central system had), and its encoding held up the relay
    command (issue 14). Now the commit, then the CALL."""
    rig.meter(1000.0)
    rig.pilot("B")
    gw = await rig.start_gateway()
    await rig.status("Preparing")
    await asyncio.sleep(0.2)  # the Preparing StatusNotification answered
    assert gw.session is not None
    connection = gw.session.cp._connection  # type: ignore[attr-defined]
    events: list[str] = []
    gw.store.db.set_trace_callback(lambda sql: events.append(sql) if sql == "COMMIT" else None)
    send = connection.send

    async def recording_send(frame: str) -> None:
        events.append(json.loads(frame)[2] if json.loads(frame)[0] == 2 else "answer")
        await send(frame)

    connection.send = recording_send
    rig.tap("TAG1")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("relay_set", lambda p: p.closed is True)
    connection.send = send
    gw.store.db.set_trace_callback(None)
    after_authorize = events[events.index("Authorize"):]
    assert "COMMIT" in after_authorize[:after_authorize.index("StartTransaction")], events
