"""`python -m voltbus_recorder` as a process: a configuration it cannot use stops it with a
message naming the setting; a clean SIGTERM says offline and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, wait_until


def test_missing_bucket_for_the_2x_api_is_a_readable_error(tmp_path: Path) -> None:
    env = {**os.environ, "VOLTBUS_INFLUX_API": "2", "VOLTBUS_INFLUX_ORG": "home",
           "VOLTBUS_DATA_DIR": str(tmp_path)}
    env.pop("VOLTBUS_INFLUX_BUCKET", None)
    done = subprocess.run([sys.executable, "-m", "voltbus_recorder"], env=env, timeout=30,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "VOLTBUS_INFLUX_BUCKET is needed" in done.stderr


def test_unreadable_token_file_names_the_setting(tmp_path: Path) -> None:
    env = {**os.environ, "VOLTBUS_INFLUX_API": "2", "VOLTBUS_INFLUX_ORG": "home",
           "VOLTBUS_INFLUX_BUCKET": "b", "VOLTBUS_INFLUX_TOKEN_FILE": str(tmp_path / "missing"),
           "VOLTBUS_DATA_DIR": str(tmp_path)}
    env.pop("VOLTBUS_INFLUX_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "voltbus_recorder"], env=env, timeout=30,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "VOLTBUS_INFLUX_TOKEN_FILE: cannot read" in done.stderr


def test_sigterm_stops_cleanly_and_keeps_the_spool(
        mosquitto: Broker, influxdb: InfluxServer, services: ServiceGroup, station: str,
        tmp_path: Path) -> None:
    env = {**mosquitto.env("recorder"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_DATA_DIR": str(tmp_path / "data"), "VOLTBUS_INFLUX_URL": influxdb.url,
           "VOLTBUS_INFLUX_DATABASE": influxdb.create_database()}
    proc = services.start("recorder", env)
    wait_until(lambda: "connected to MQTT" in proc.log(), 15, "recorder connected")
    assert proc.stop() == 0, proc.log()
    assert (tmp_path / "data" / "recorder" / "spool.sqlite3").exists()
    assert "Traceback" not in proc.log()
