"""What a service loads at start: heavy modules stay out until they are used (issue 14)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from tests.fixtures.mosquitto import Broker
from voltbus_common.bus import Bus


def loaded_after(statement: str) -> set[str]:
    """Top-level modules a fresh interpreter holds after running `statement`."""
    code = (f"{statement}\nimport json, sys\n"
            "print(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def test_httpx_without_its_command_line_client() -> None:
    loaded = loaded_after("import voltbus_common\nimport httpx\nhttpx.Client().close()")
    assert "httpx" in loaded
    assert not loaded & {"rich", "pygments"}


@pytest.mark.parametrize(("module", "absent"), [
    ("voltbus_api.__main__", {"docker", "requests", "apprise", "httpx", "argon2", "rich",
                              "openpyxl", "reportlab", "cryptography"}),
    ("voltbus_hardware.__main__", {"yaml", "httpx"}),
    ("voltbus_recorder.__main__", {"rich", "pygments", "httpx", "httpcore", "anyio"}),
])
def test_no_unused_heavy_modules_at_start(module: str, absent: set[str]) -> None:
    loaded = loaded_after(f"import {module}")
    assert not loaded & absent


async def test_bus_disconnected_is_the_opposite_of_connected(mosquitto: Broker,
                                                             station: str) -> None:
    """A loop can wait for the loss of the connection instead of polling `connected`."""
    bus = Bus(mosquitto.settings("operator", stations=[station]), station=station, service=None)
    assert bus.disconnected.is_set()
    assert not bus.connected.is_set()
    task = asyncio.create_task(bus.run())
    try:
        await bus.wait_connected(5)
        assert not bus.disconnected.is_set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert bus.disconnected.is_set()
    assert not bus.connected.is_set()


def test_a_16_gateway_does_not_load_ocpp_201() -> None:
    """The 2.0.1 adapter and ocpp.v201 load only for a station that speaks 2.0.1."""
    code = ("import sys, voltbus_ocpp.__main__\n"
            "print(sorted(m for m in sys.modules if m.startswith(('ocpp.v201', "
            "'voltbus_ocpp.protocol.v201'))))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout.strip()
    assert out == "[]"


def test_an_http_request_searches_for_no_module() -> None:
    """httpcore imports sniffio at every request; where it is not installed that must not be a
    fresh search of sys.path each time (issue 14: a fifth of the idle recorder's CPU)."""
    code = """
import asyncio, http.server, importlib.abc, sys, threading
import voltbus_common
import httpx

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
searched = []

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        searched.append(name)

async def main():
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.server_port}") as client:
        assert (await client.post("/write", content=b"m v=1")).status_code == 204
        sys.meta_path.insert(0, Spy())
        for _ in range(5):
            assert (await client.post("/write", content=b"m v=1")).status_code == 204

asyncio.run(main())
print(sorted(set(searched)))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout.strip()
    assert out == "[]"
