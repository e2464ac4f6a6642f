"""The live stream (SSE) over a real uvicorn: a snapshot, then every change as it happens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Peers, api_settings
from tests.api.served import served_api
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.enums import ConnectorStatus
from voltbus_common.models import MeterReading, OcppConnectorStatus


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """Parse `event:` / `data:` blocks from a text/event-stream."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


async def test_stream_sends_snapshot_then_changes(mosquitto: Broker, peers: Peers, station: str,
                                                  tmp_path: Path) -> None:
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                          connector=1)
    await peers.gateway.drain()
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        r = await client.get("/api/v1/events")  # no token
        assert r.status_code == 401
        headers = {"Authorization": f"Bearer {api.token}"}
        async with client.stream("GET", "/api/v1/events", headers=headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            kind, snapshot = await anext(events)
            assert kind == "snapshot"
            assert snapshot[0]["station"] == station
            peers.hardware.publish(ch.METER, MeterReading(
                energy_wh=500.0, power_w=3680.0, current_a=[16.0], voltage_v=[230.0]),
                connector=1)
            async for kind, change in events:
                if kind == "change" and change["kind"] == "meter":
                    break
            assert change["station"] == station
            assert change["connector"] == 1
            assert change["data"]["power_w"] == 3680.0
            assert change["retained"] is False
