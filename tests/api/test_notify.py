"""Notifications through apprise's json:// target to a real local HTTP endpoint."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Peers, api_settings, eventually, running_api
from tests.api.test_history import summary
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode, RegistrationStatus
from voltbus_common.models import HardwareError, OcppConnection, TransactionState


class Inbox:
    """A real HTTP server that records the JSON bodies apprise posts to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with inbox.arrived:
                    inbox.messages.append(json.loads(body))
                    inbox.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/notify"

    async def wait(self, count: int, within_s: float = 10.0) -> list[dict[str, Any]]:
        def block() -> list[dict[str, Any]]:
            with self.arrived:
                self.arrived.wait_for(lambda: len(self.messages) >= count, within_s)
                return list(self.messages)
        messages = await asyncio.to_thread(block)
        assert len(messages) >= count, messages
        return messages


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    thread = threading.Thread(target=box.server.serve_forever, daemon=True)
    thread.start()
    yield box
    box.server.shutdown()
    box.server.server_close()


async def test_session_started_stopped_and_error_are_notified(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path, inbox: Inbox) -> None:
    settings = api_settings(mosquitto, station, tmp_path, api_notify_urls=inbox.url)
    async with running_api(settings):
        started = datetime(2026, 1, 5, 8, tzinfo=UTC)
        for energy in (0.0, 100.0, 200.0):  # updates of one running transaction
            peers.gateway.publish(ch.TRANSACTION, TransactionState(
                transaction_id=1, id_tag="04A1B2C3", started_at=started, meter_start_wh=10_000,
                energy_wh=energy), connector=1)
        peers.gateway.publish(ch.SESSION, summary("2026-01-05T08:00:00", 60, 7250.0),
                              connector=1)
        peers.hardware.publish(ch.HW_ERROR, HardwareError(
            code=ChargePointErrorCode.GROUND_FAILURE, info="RCD tripped"), connector=1)
        messages = await inbox.wait(3)
        await asyncio.sleep(0.3)
    assert len(inbox.messages) == 3  # one "started", not one per transaction update
    # Gateway and hardware are separate connections: their messages may interleave.
    by_kind = {m["title"].split(" on ")[0]: m for m in messages}
    start, stop, error = (by_kind["Charging started"], by_kind["Charging finished"],
                          by_kind["Error"])
    assert start["title"] == f"Charging started on {station}/1"
    assert "04A1B2C3" in start["message"]
    assert stop["title"] == f"Charging finished on {station}/1: 7.25 kWh"
    assert "7.25 kWh in 60 min" in stop["message"]
    assert stop["type"] == "success"
    assert error["title"] == f"Error on {station}/1: GroundFailure"
    assert "RCD tripped" in error["message"]
    assert error["type"] == "failure"


async def test_retained_state_on_start_is_not_news(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path, inbox: Inbox) -> None:
    peers.hardware.publish(ch.HW_ERROR, HardwareError(code=ChargePointErrorCode.GROUND_FAILURE),
                           connector=1)
    peers.gateway.publish(ch.TRANSACTION, TransactionState(
        transaction_id=1, id_tag="04A1B2C3", started_at=datetime(2026, 1, 5, tzinfo=UTC),
        meter_start_wh=0), connector=1)
    await peers.hardware.drain()
    await peers.gateway.drain()
    settings = api_settings(mosquitto, station, tmp_path, api_notify_urls=inbox.url)
    async with running_api(settings) as (client, _):
        async def replayed() -> bool:
            r = await client.get(f"/api/v1/stations/{station}/connectors/1")
            return r.status_code == 200 and (r.json()["error"] or {}).get("code") == "GroundFailure"

        await eventually(replayed)
        peers.hardware.publish(ch.HW_ERROR, HardwareError(
            code=ChargePointErrorCode.HIGH_TEMPERATURE), connector=1)
        messages = await inbox.wait(1)
    assert [m["title"] for m in messages] == [f"Error on {station}/1: HighTemperature"]


async def test_ocpp_link_lost_longer_than_n_minutes(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path, inbox: Inbox) -> None:
    settings = api_settings(mosquitto, station, tmp_path, api_notify_urls=inbox.url,
                            api_notify_ocpp_lost_min=0.01)  # 0.6 s
    async with running_api(settings):
        # A short drop (shorter than N) is not reported...
        peers.gateway.publish(ch.OCPP_CONNECTION, OcppConnection(connected=False))
        peers.gateway.publish(ch.OCPP_CONNECTION, OcppConnection(
            connected=True, registration=RegistrationStatus.ACCEPTED))
        await asyncio.sleep(0.9)
        assert inbox.messages == []
        # ... a long one is, once, and so is the recovery.
        peers.gateway.publish(ch.OCPP_CONNECTION, OcppConnection(connected=False))
        peers.gateway.publish(ch.OCPP_CONNECTION, OcppConnection(connected=False))
        first = await inbox.wait(1)
        peers.gateway.publish(ch.OCPP_CONNECTION, OcppConnection(
            connected=True, registration=RegistrationStatus.ACCEPTED))
        both = await inbox.wait(2)
    assert first[0]["title"] == f"{station}: central system unreachable"
    assert "more than 0.6 min" not in first[0]["message"]
    assert "down for more than 0.01 min" in first[0]["message"]
    assert both[1]["title"] == f"{station}: central system connected again"
    assert len(inbox.messages) == 2


async def test_unreachable_target_is_a_warning_not_a_crash(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from voltbus_common.devbroker import free_port
    url = f"json://127.0.0.1:{free_port()}/nobody"
    settings = api_settings(mosquitto, station, tmp_path, api_notify_urls=url)
    async with running_api(settings) as (client, ctx):
        peers.gateway.publish(ch.SESSION, summary("2026-01-05T08:00:00", 60, 1000.0),
                              connector=1)
        for _ in range(200):
            if "could not deliver notification" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "could not deliver notification" in caplog.text
        assert (await client.get("/api/v1/health")).status_code == 200
        assert ctx.notifier is not None
        assert ctx.notifier.sent == 0


async def test_link_down_since_long_before_the_api_started_is_reported_at_once(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path, inbox: Inbox) -> None:
    long_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    peers.gateway.publish(ch.OCPP_CONNECTION, OcppConnection(connected=False, since=long_ago))
    await peers.gateway.drain()
    settings = api_settings(mosquitto, station, tmp_path, api_notify_urls=inbox.url,
                            api_notify_ocpp_lost_min=30)
    async with running_api(settings):
        messages = await inbox.wait(1)
    assert messages[0]["title"] == f"{station}: central system unreachable"
