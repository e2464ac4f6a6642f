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


HOUSE_AT_NOON = ("--house-start", "11:00")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # no uv, no voltbus


def start_up(tmp_path: Path, *args: str, log_name: str = "up.log") -> subprocess.Popen[bytes]:
    """`voltbus up` as a user starts it, in tmp_path (its ./var is the data dir)."""
    log = open(tmp_path / log_name, "w")  # noqa: SIM115 - closed with the process
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLTBUS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "voltbus_common.cli", "up", *args],
        env={**env, "PATH": SYSTEM_PATH, "VOLTBUS_DATA_DIR": str(tmp_path / "var")}, cwd=tmp_path,
        stdout=log, stderr=subprocess.STDOUT)


def banner_of(tmp_path: Path, log_name: str = "up.log") -> str:
    """The banner, once printed (i.e. once the API answered)."""
    log = tmp_path / log_name
    wait_for(lambda: "voltbus is up" in log.read_text(), 90, "the banner")
    text = log.read_text()
    return text[text.index("voltbus is up"):]


def stop_up(up: subprocess.Popen[bytes], tmp_path: Path, log_name: str = "up.log") -> str:
    up.send_signal(signal.SIGINT)
    try:
        code = up.wait(30)
    except subprocess.TimeoutExpired:
        up.kill()
        raise
    output = (tmp_path / log_name).read_text()
    assert code == 0, output[-4000:]
    return output


def test_voltbus_up_sim_and_cmd_walk_a_session(tmp_path: Path) -> None:
    data = tmp_path / "var"
    mqtt_port, api_port, csms_port = free_port(), free_port(), free_port()
    while csms_port + 1 in (mqtt_port, api_port):
        csms_port = free_port()
    ports = ("--mqtt-port", str(mqtt_port), "--api-port", str(api_port),
             "--csms-port", str(csms_port))
    # The simulated house at a fixed hour: its evening loads (and no PV) leave the fuse no room
    # for a car at some wall-clock times, and this walk is about the CLI, not about that.
    up = start_up(tmp_path, *ports, "--connectors", "2", *HOUSE_AT_NOON)
    try:
        banner = banner_of(tmp_path)
        info = json.loads((data / "up.json").read_text())
        # Printed once the API answers: no retry needed now.
        assert httpx.get(f"{info['api_url']}/api/v1/health", timeout=5).status_code in (200, 503)
        assert f"{info['api_url']}/api/docs" in banner
        assert httpx.get(f"{info['api_url']}/api/docs", timeout=5).status_code == 200
        assert f"{info['api_url']}/api/v1/openapi.json" in banner
        assert httpx.get(f"{info['api_url']}/api/v1/openapi.json", timeout=5).is_success
        assert f"127.0.0.1:{mqtt_port}" in banner
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
        # The banner's command line, run as printed by a shell with the user's PATH.
        line = next(x.strip() for x in banner.splitlines() if x.strip().endswith("sim plug 1"))
        plugged = subprocess.run(["bash", "-c", line.replace("sim plug 1", "sim plug 2")],
                                 cwd=tmp_path, env={"PATH": SYSTEM_PATH, "HOME": str(tmp_path)},
                                 capture_output=True, text=True, timeout=30)
        assert plugged.returncode == 0, (line, plugged.stderr)
        assert "hw/2/pilot" in plugged.stdout  # it waited for the hardware to act
        wait_for(lambda: status() == "Preparing", 20, "Preparing")
        rejected = voltbus(data, "sim", "plug", "9")  # the station has connectors 1 and 2
        assert rejected.returncode == 1
        assert "the hardware rejected it: unknown connector 9" in rejected.stderr
        assert "sent" not in rejected.stdout
        unknown = voltbus(data, "cmd", "stop", "1", "--station", "CP9")
        assert unknown.returncode == 1
        assert "station 'CP9' is unknown on this broker" in unknown.stderr
        assert "(stations seen: CP1)" in unknown.stderr
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
        output = stop_up(up, tmp_path)
    assert not (data / "up.json").exists()
    for name in ("hardware", "gateway", "recorder", "api", "devcsms"):
        assert f"started {name}" in output
    # Nothing is left listening.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health", timeout=1)

    # A second start right away keeps every port (connections of the first are in TIME-WAIT).
    again = start_up(tmp_path, *ports, *HOUSE_AT_NOON, log_name="again.log")
    try:
        banner = banner_of(tmp_path, "again.log")
        info = json.loads((data / "up.json").read_text())
        assert info["mqtt_port"] == mqtt_port
        assert info["api_url"] == f"http://127.0.0.1:{api_port}"
        assert f"ws://127.0.0.1:{csms_port}/ocpp" in banner
    finally:
        stop_up(again, tmp_path, "again.log")
