"""`python -m voltbus_devcsms` as a process: its settings reach the central system."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from ocpp.v201 import call
from websockets.exceptions import InvalidStatus

from tests.devcsms.station201 import station201
from voltbus_common.devbroker import free_port, wait_for_port


@pytest.fixture
def devcsms() -> Iterator[tuple[str, str]]:
    port, http_port = free_port(), free_port()
    env = {**os.environ, "VOLTBUS_DEVCSMS_PORT": str(port),
           "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port), "VOLTBUS_DEVCSMS_OCPP": "2.0.1",
           "VOLTBUS_DEVCSMS_BOOT_STATUS": "Pending", "VOLTBUS_DEVCSMS_BOOT_INTERVAL_S": "9",
           "VOLTBUS_DEVCSMS_HISTORY_LIMIT": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "voltbus_devcsms"], env=env)
    try:
        wait_for_port(port)
        wait_for_port(http_port)
        yield f"ws://127.0.0.1:{port}/ocpp", f"http://127.0.0.1:{http_port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_settings_force_201_boot_pending_and_bound_the_history(
        devcsms: tuple[str, str]) -> None:
    url, http = devcsms
    with pytest.raises(InvalidStatus):
        async with station201(url, "S1", subprotocols=("ocpp1.6",)):
            pass
    async with station201(url, "S1", subprotocols=("ocpp1.6", "ocpp2.0.1")) as st:
        answer = await st.boot()
        assert (answer.status, answer.interval) == ("Pending", 9)
        for _ in range(4):
            await st.call(call.Heartbeat())
    async with httpx.AsyncClient(base_url=http) as client:
        assert (await client.get("/chargers/S1/counts")).json() == {
            "BootNotification": 1, "Heartbeat": 4}
        assert len((await client.get("/chargers/S1/messages")).json()) == 3


def test_a_bad_setting_stops_it_with_the_variable_named() -> None:
    env = {**os.environ, "VOLTBUS_DEVCSMS_OCPP": "3.0"}
    done = subprocess.run([sys.executable, "-m", "voltbus_devcsms"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "VOLTBUS_DEVCSMS_OCPP" in done.stderr
