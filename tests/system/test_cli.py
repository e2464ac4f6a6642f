"""The README's first command: `voltbus up` runs the whole stack, `voltbus sim`/`cmd` drive it.

Runs the real CLI as processes, as a new user would, then stops the stack with Ctrl-C (SIGINT)
and checks everything it started is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from voltbus_common.devbroker import free_port

pytestmark = pytest.mark.system


def voltbus(data: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOLTBUS_DATA_DIR": str(data)}
    env = {k: v for k, v in env.items() if not k.startswith("VOLTBUS_MQTT")}
    return subprocess.run([sys.executable, "-m", "voltbus_common.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_voltbus_up_sim_and_cmd_walk_a_session(tmp_path: Path) -> None:
    data = tmp_path / "var"
    mqtt_port, api_port = free_port(), free_port()
    log = open(tmp_path / "up.log", "w")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLTBUS_")}
    up = subprocess.Popen(
        [sys.executable, "-m", "voltbus_common.cli", "up", "--mqtt-port", str(mqtt_port),
         "--api-port", str(api_port), "--connectors", "2"],
        env={**env, "VOLTBUS_DATA_DIR": str(data)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (data / "up.json").exists(), 60, "up.json")
        info = json.loads((data / "up.json").read_text())
        token = (data / "secrets" / "api_admin_token").read_text().strip()
        api = httpx.Client(base_url=info["api_url"], timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
        connector = "/api/v1/stations/CP1/connectors/2"

        def status() -> str | None:
            try:
                response = api.get(connector)
            except httpx.TransportError:
                return None
            if not response.is_success:
                return None
            return (response.json().get("status") or {}).get("status")

        wait_for(lambda: status() == "Available", 60, "connector 2 Available in the API")
        assert voltbus(data, "sim", "plug", "2").returncode == 0
        wait_for(lambda: status() == "Preparing", 20, "Preparing")
        tapped = voltbus(data, "sim", "tap", "04A1B2C3")
        assert tapped.returncode == 0, tapped.stderr
        wait_for(lambda: status() == "Charging", 20, "Charging")
        limited = voltbus(data, "cmd", "limit", "2", "10")
        assert limited.returncode == 0, limited.stderr
        assert "set_current_limit: Accepted" in limited.stdout
        refused = voltbus(data, "cmd", "stop", "1")  # nothing runs on connector 1
        assert refused.returncode == 1
        assert "stop: Rejected" in refused.stdout
        assert voltbus(data, "sim", "tap", "04A1B2C3").returncode == 0
        wait_for(lambda: status() == "Finishing", 20, "Finishing after the second tap")
        body = api.get(connector).json()
        assert body["last_session"]["id_tag"] == "04A1B2C3"
        assert body["last_session"]["stop_reason"] == "Local"
        assert voltbus(data, "sim", "unplug", "2").returncode == 0
        wait_for(lambda: status() == "Available", 20, "Available after unplugging")
        api.close()
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert code == 0, output[-4000:]
    assert not (data / "up.json").exists()
    for name in ("hardware", "gateway", "recorder", "api", "devcsms"):
        assert f"started {name}" in output
    # Nothing is left listening.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health", timeout=1)
