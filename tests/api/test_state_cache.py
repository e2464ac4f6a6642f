"""StateCache without a broker: fan-out, slow live clients, connector 0, unknown stations."""

from __future__ import annotations

import pytest

from voltbus_api.state_cache import StateCache
from voltbus_common.enums import ConnectorStatus, PilotState
from voltbus_common.models import OcppConnectorStatus, PilotEvent


async def test_a_client_that_does_not_read_is_cut_off(caplog: pytest.LogCaptureFixture) -> None:
    cache = StateCache(["CP1"], queue_size=5)
    slow, fast = cache.subscribe(), cache.subscribe()
    for i in range(8):
        await cache.set_connector("CP1", 1, "pilot", PilotEvent(state=PilotState.B))
        while not fast.empty():
            assert (await fast.get()) is not None, i
    items = [slow.get_nowait() for _ in range(slow.qsize())]
    assert items[-1] is None  # told to resync
    assert all(item is not None for item in items[:-1])
    assert "fell behind" in caplog.text
    await cache.set_connector("CP1", 1, "pilot", PilotEvent(state=PilotState.C))
    assert slow.empty()  # no longer fed
    assert (await fast.get()).data["state"] == "C"  # type: ignore[union-attr]


async def test_connector_0_status_is_the_stations_and_unknown_stations_are_ignored() -> None:
    cache = StateCache(["CP1"])
    await cache.set_connector("CP1", 0, "status",
                              OcppConnectorStatus(status=ConnectorStatus.UNAVAILABLE))
    await cache.set_connector("CP9", 1, "status",
                              OcppConnectorStatus(status=ConnectorStatus.CHARGING))
    station = cache.station("CP1")
    assert station.station_status is not None
    assert station.station_status.status is ConnectorStatus.UNAVAILABLE
    assert station.connectors == []
    assert not cache.has_station("CP9")


@pytest.mark.expected_errors
async def test_a_failing_listener_does_not_stop_the_others(
        caplog: pytest.LogCaptureFixture) -> None:
    cache = StateCache(["CP1"])
    seen = []

    async def broken(change: object) -> None:
        raise RuntimeError("bug")

    async def good(change: object) -> None:
        seen.append(change)

    cache.add_listener(broken)
    cache.add_listener(good)
    await cache.set_connector("CP1", 1, "pilot", PilotEvent(state=PilotState.A))
    assert len(seen) == 1
    assert "state listener failed" in caplog.text
