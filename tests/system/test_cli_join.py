"""`voltbus up --join HOST:PORT`: the stack on a broker that already runs (as Home Assistant's
does), documented in docs/homeassistant.md. A real Mosquitto plays the existing broker; the real
CLI runs as a process."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.fixtures.mosquitto import Broker
from tests.system.test_cli import banner_of, start_up, stop_up, voltbus, wait_for
from voltbus_common.cli.joined import USERS
from voltbus_common.devbroker import free_port

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parents[2]


def password_files(broker: Broker, directory: Path, users: tuple[str, ...] = USERS) -> Path:
    """mqtt_<user> files holding the broker's passwords, as `voltbus secrets` writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    for user in users:
        (directory / f"mqtt_{user}").write_text(broker.passwords[user] + "\n")
    return directory


def test_up_joins_an_existing_broker_and_the_cli_drives_it(own_mosquitto: Broker,
                                                           tmp_path: Path) -> None:
    secrets = password_files(own_mosquitto, tmp_path / "ha-secrets")
    api_port, csms_port = free_port(), free_port()
    up = start_up(tmp_path, "--join", f"127.0.0.1:{own_mosquitto.port}",
                  "--join-secrets", str(secrets), "--api-port", str(api_port),
                  "--csms-port", str(csms_port), "--no-influx")
    try:
        banner = banner_of(tmp_path)
        assert f"MQTT broker        127.0.0.1:{own_mosquitto.port} (joined; passwords in " \
               f"{secrets})" in banner
        assert not (tmp_path / "var" / "mosquitto").exists()  # no broker of its own

        def all_online() -> bool:
            health = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health").json()
            services = health["services"].get("CP1", {})
            return all(services.get(s) == "online" for s in ("hardware", "gateway", "recorder",
                                                              "api"))

        wait_for(all_online, 30, "every service online on the joined broker")
        # The CLI finds the joined broker through the stack's up.json.
        plug = voltbus(tmp_path / "var", "sim", "plug", "1")
        assert plug.returncode == 0, plug.stderr

        def preparing() -> bool:
            state = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/stations/CP1",
                              headers={"Authorization": "Bearer " + (
                                  tmp_path / "var/secrets/api_admin_token").read_text().strip()})
            connector = state.json()["connectors"][0]
            return (connector["status"] or {}).get("status") == "Preparing"

        wait_for(preparing, 20, "connector 1 Preparing")
    finally:
        stop_up(up, tmp_path)
    assert own_mosquitto.process is not None  # the broker is not ours: it still runs
    assert own_mosquitto.process.poll() is None, "voltbus up stopped a broker it did not start"


def test_join_names_missing_password_files_and_refused_users(own_mosquitto: Broker,
                                                             tmp_path: Path) -> None:
    where = f"127.0.0.1:{own_mosquitto.port}"
    partial = password_files(own_mosquitto, tmp_path / "partial", ("hardware", "gateway"))
    missing = voltbus(tmp_path / "var", "up", "--join", where, "--join-secrets", str(partial),
                      "--no-influx", "--api-port", str(free_port()),
                      "--csms-port", str(free_port()))
    assert missing.returncode == 1
    assert "missing mqtt_recorder, mqtt_api, mqtt_operator" in missing.stderr, missing.stderr
    assert f"voltbus secrets {partial}" in missing.stderr

    wrong = password_files(own_mosquitto, tmp_path / "wrong")
    (wrong / "mqtt_gateway").write_text("not the gateway's password\n")
    refused = voltbus(tmp_path / "var", "up", "--join", where, "--join-secrets", str(wrong),
                      "--no-influx", "--api-port", str(free_port()),
                      "--csms-port", str(free_port()))
    assert refused.returncode == 1
    assert re.search(rf"broker at {where} refused gateway \(.*\): add these users",
                     refused.stderr), refused.stderr
    assert "hardware" not in refused.stderr.split("refused")[1].split(":")[0]

    nobody = voltbus(tmp_path / "var", "up", "--join", f"127.0.0.1:{free_port()}",
                     "--join-secrets", str(wrong), "--no-influx")
    assert nobody.returncode == 1
    assert "cannot reach the broker to join" in nobody.stderr, nobody.stderr
    shutil.rmtree(tmp_path / "var", ignore_errors=True)


def test_the_join_section_is_where_the_readme_and_the_cli_point() -> None:
    readme = (REPO / "README.md").read_text()
    assert "docs/homeassistant.md#join-an-existing-broker" in readme
    doc = (REPO / "docs/homeassistant.md").read_text()
    assert "\n## Join an existing broker\n" in doc  # GitHub's anchor: #join-an-existing-broker
    section = doc.split("\n## Join an existing broker\n")[1].split("\n## ")[0]
    for needed in ("voltbus secrets", "voltbus acl", "--join", "--join-secrets", "--join-tls",
                   "mosquitto_passwd", *(f"mqtt_{u}" for u in USERS)):
        assert needed in section, needed
