"""SmartEVSE v3's C2 contactor as the 1p/3p phase switch (issue 12), against a local HTTP
server that answers like the SmartEVSE-3 firmware's REST API (`GET /settings` with
`settings.enable_C2`, `POST /settings?enable_C2=N` with an empty body), so the real driver's
HTTP code runs; then through the hardware service on the real broker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode
from voltbus_common.models import PhaseCommand
from voltbus_common.settings import ConfigError
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.smartevse_c2 import SmartEvseC2
from voltbus_hardware.registry import build_station

C2_NAMES = {0: "Not present", 1: "Always Off", 2: "Solar Off", 3: "Always On", 4: "Auto"}


class FakeSmartEvse:
    """The firmware's /settings: `enable_C2` as its name; `ignore_posts` plays a board that
    does not take the setting, `garbage` one that answers something else than JSON."""

    def __init__(self, c2: str = "Always On") -> None:
        self.c2, self.ignore_posts, self.garbage = c2, False, False
        self.posts: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, body: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if urlsplit(self.path).path != "/settings":
                    return self._answer(b"{}", 404)
                if fake.garbage:
                    return self._answer(b"<html>oops</html>")
                self._answer(json.dumps({
                    "mode": "NORMAL", "mode_id": 1, "car_connected": True,
                    "settings": {"charge_current": 0, "current_min": 6, "current_max": 16,
                                 "enable_C2": fake.c2, "mains_meter": "InvEastrn"},
                }).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                url = urlsplit(self.path)
                value = parse_qs(url.query).get("enable_C2", [""])[0]
                fake.posts.append(value)
                if url.path != "/settings" or not value.isdigit() or int(value) not in C2_NAMES:
                    return self._answer(b'{"error": "bad request"}', 400)
                if not fake.ignore_posts:
                    fake.c2 = C2_NAMES[int(value)]
                self._answer(json.dumps({"enable_C2": fake.c2}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def board() -> Iterator[FakeSmartEvse]:
    fake = FakeSmartEvse()
    yield fake
    fake.stop()


async def test_c2_switches_by_the_setting_the_board_reports(board: FakeSmartEvse) -> None:
    switch = SmartEvseC2(board.url + "/", timeout_s=0.5)
    assert await switch.phases() == 3
    assert await switch.set_phases(1) == 1
    assert (board.c2, board.posts) == ("Always Off", ["1"])
    assert await switch.phases() == 1
    assert await switch.set_phases(1) == 1  # already there: nothing posted
    assert await switch.set_phases(3) == 3
    assert (board.c2, board.posts) == ("Always On", ["1", "3"])
    for name, phases in (("Solar Off", 3), ("Auto", 3), ("Not present", 3)):
        board.c2 = name  # the board decides (or L2/L3 wired straight): the most it may use
        assert await switch.phases() == phases


async def test_a_board_that_does_not_take_the_setting_or_has_no_c2(
        board: FakeSmartEvse) -> None:
    switch = SmartEvseC2(board.url, timeout_s=0.3)
    board.ignore_posts = True
    with pytest.raises(DeviceUnavailable) as stuck:
        await switch.set_phases(1)
    assert stuck.value.code is ChargePointErrorCode.POWER_SWITCH_FAILURE
    assert "enable_C2 still 'Always On' after 0.3s" in str(stuck.value)
    board.ignore_posts, board.c2 = False, "Not present"
    with pytest.raises(DeviceUnavailable, match="C2 is 'Not present'") as absent:
        await switch.set_phases(1)
    assert absent.value.code is ChargePointErrorCode.POWER_SWITCH_FAILURE
    assert board.posts == ["1"]  # nothing posted to a board without C2
    board.garbage = True
    with pytest.raises(DeviceUnavailable, match="GET /settings: not JSON"):
        await switch.phases()
    board.stop()
    with pytest.raises(DeviceUnavailable, match="SmartEVSE GET /settings: "):
        await switch.phases()


def test_station_file_entry() -> None:
    cfg = parse_station({"connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                                         "phase_switch": {"type": "smartevse_c2",
                                                          "url": "http://smartevse-1234.local"}}]})
    assert cfg.connectors[0].phase_switch is not None
    for url in ("smartevse-1234.local", "ftp://x", "http://"):
        with pytest.raises(ConfigError, match=r"phase_switch.*url must be http"):
            parse_station({"connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                                           "phase_switch": {"type": "smartevse_c2",
                                                            "url": url}}]})


async def test_c2_through_the_service(board: FakeSmartEvse, mosquitto: Broker,
                                      station: str) -> None:
    cfg = parse_station({"connectors": [
        {"evse": {"type": "sim"}, "relay": {"type": "sim"}, "meter": {"type": "sim"},
         "phase_switch": {"type": "smartevse_c2", "url": board.url, "timeout_s": 0.5}}]})
    hardware = build_station(cfg, station)
    async with rig(mosquitto, station, hardware=hardware) as r:
        w = r.watches
        start = await w["phases"].next()
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="down"), connector=1)
        down = await w["phases"].until(lambda m: m.payload.request_id == "down", within=5)
        board.ignore_posts = True
        r.send(ch.PHASES_SET, PhaseCommand(phases=3, request_id="up"), connector=1)
        stuck = await w["phases"].until(lambda m: m.payload.request_id == "up", within=5)
        fault = await w["error"].until(
            lambda m: m.payload.code is ChargePointErrorCode.POWER_SWITCH_FAILURE)
    assert (start.payload.phases, start.payload.switchable) == (3, True)
    assert (down.payload.phases, down.payload.reason, board.posts[0]) == (1, None, "1")
    assert stuck.payload.phases == 1
    assert "enable_C2 still 'Always Off'" in (stuck.payload.reason or "")
    assert fault.connector == 1
