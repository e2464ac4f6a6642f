"""deploy/systemd: units checked by systemd-analyze; the Debian Mosquitto snippet run for real."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from voltbus_common.channels import ALL_USERS
from voltbus_common.devbroker import LocalMosquitto, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
SERVICES = {"hardware": "voltbus_hardware", "gateway": "voltbus_ocpp",
            "recorder": "voltbus_recorder", "api": "voltbus_api",
            "energy": "voltbus_energy"}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (apt-get install systemd)"
    venv = Path(sys.executable).parent.parent
    for path in [*UNITS.glob("*.service"), *UNITS.glob("*.target")]:
        text = path.read_text().replace("/opt/voltbus/venv", str(venv))
        (tmp_path / path.name).write_text(text.replace("/opt/voltbus/src", str(REPO)))
    names = sorted(p.name for p in tmp_path.iterdir())
    result = subprocess.run([analyze, "verify", "--man=no", *names], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "voltbus" not in result.stderr, result.stderr  # no warnings about our units


def test_each_service_gets_only_its_own_password() -> None:
    target = unit("voltbus.target")
    wanted = set(target["Unit"]["Wants"].split())
    assert wanted == {f"voltbus-{s}.service" for s in SERVICES}
    for service, module in SERVICES.items():
        text = (UNITS / f"voltbus-{service}.service").read_text()
        assert f"ExecStart=/opt/voltbus/venv/bin/python -m {module}\n" in text
        assert f"Environment=VOLTBUS_MQTT_USERNAME={service}\n" in text
        creds = re.findall(r"^LoadCredential=\w+:/etc/voltbus/secrets/(\S+)$", text, re.M)
        assert creds[0] == f"mqtt_{service}"
        assert set(creds) <= {f"mqtt_{service}", "influx_token"}
        assert "User=voltbus" in text
        assert f"StateDirectory=voltbus/{service}" in text
    hardware = (UNITS / "voltbus-hardware.service").read_text()
    assert "SupplementaryGroups=gpio spi i2c dialout" in hardware
    others = [(UNITS / f"voltbus-{s}.service").read_text() for s in SERVICES if s != "hardware"]
    assert not any("SupplementaryGroups" in t for t in others)


@pytest.fixture
def debian_broker(tmp_path: Path) -> Iterator[int]:
    """Debian's main config plus conf.d/voltbus.conf, files from init_broker.py; the port."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for user in ALL_USERS:
        (secrets / f"mqtt_{user}").write_text(f"pw-{user}-0123456789abcdef\n")
    out = tmp_path / "voltbus"
    env = {**os.environ, "VOLTBUS_BROKER_SECRETS_DIR": str(secrets),
           "VOLTBUS_BROKER_OUT_DIR": str(out), "VOLTBUS_BROKER_CERTS_DIR": str(tmp_path / "c"),
           "VOLTBUS_BROKER_USER": "root"}
    init = subprocess.run([sys.executable, str(REPO / "mosquitto" / "init_broker.py")], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert init.returncode == 0, init.stderr
    port = free_port()
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    snippet = (UNITS / "mosquitto-voltbus.conf").read_text()
    snippet = snippet.replace("/etc/mosquitto/voltbus", str(out))
    snippet = snippet.replace("listener 1883", f"listener {port} 127.0.0.1")
    (conf_d / "voltbus.conf").write_text(snippet)
    (tmp_path / "data").mkdir()
    main = [  # what Debian's /etc/mosquitto/mosquitto.conf holds
        "persistence true", f"persistence_location {tmp_path / 'data'}/",
        f"log_dest file {tmp_path / 'mosquitto.log'}", f"include_dir {conf_d}",
    ]
    if os.geteuid() == 0:
        main.append("user root")
    (tmp_path / "mosquitto.conf").write_text("\n".join(main) + "\n")
    binary = LocalMosquitto.binary()
    assert binary, "mosquitto is not installed (apt-get install mosquitto)"
    proc = subprocess.Popen([binary, "-c", str(tmp_path / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 10)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


async def test_debian_mosquitto_with_the_voltbus_snippet(debian_broker: int) -> None:
    async with aiomqtt.Client("127.0.0.1", debian_broker, username="api",
                              password="pw-api-0123456789abcdef", timeout=5):
        pass
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client("127.0.0.1", debian_broker, timeout=5):  # anonymous
            pass
