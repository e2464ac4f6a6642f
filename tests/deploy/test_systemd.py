"""deploy/systemd: units checked by systemd-analyze; the Debian Mosquitto snippet run for real."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class DebianBroker:
    port: int  # plain, loopback
    tls_port: int
    tls_dir: Path


@pytest.fixture
def debian_broker(tmp_path: Path) -> Iterator[DebianBroker]:
    """Debian's main config plus conf.d/voltbus.conf, files (and the TLS certificates) from
    init_broker.py as voltbus-broker-init.service runs it."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for user in ALL_USERS:
        (secrets / f"mqtt_{user}").write_text(f"pw-{user}-0123456789abcdef\n")
    out = tmp_path / "voltbus"
    env = {**os.environ, "VOLTBUS_BROKER_SECRETS_DIR": str(secrets),
           "VOLTBUS_BROKER_OUT_DIR": str(out), "VOLTBUS_BROKER_CERTS_DIR": str(tmp_path / "c"),
           "VOLTBUS_BROKER_USER": "root", "VOLTBUS_TLS_DIR": str(tmp_path / "tls"),
           "VOLTBUS_TLS_NAMES": "voltbus.local"}
    init = subprocess.run([sys.executable, str(REPO / "mosquitto" / "init_broker.py")], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert init.returncode == 0, init.stderr
    port, tls_port = free_port(), free_port()
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    snippet = (UNITS / "mosquitto-voltbus.conf").read_text()
    snippet = snippet.replace("/etc/mosquitto/voltbus", str(out))
    snippet = snippet.replace("/etc/voltbus/tls", str(tmp_path / "tls"))
    assert "listener 1883 127.0.0.1\n" in snippet
    assert "listener 8883\n" in snippet
    snippet = snippet.replace("listener 1883 ", f"listener {port} ")
    snippet = snippet.replace("listener 8883", f"listener {tls_port}")
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
        wait_for_port(tls_port, 10)
        yield DebianBroker(port, tls_port, tmp_path / "tls")
    finally:
        proc.terminate()
        proc.wait(5)


async def test_debian_mosquitto_with_the_voltbus_snippet(debian_broker: DebianBroker) -> None:
    async with aiomqtt.Client("127.0.0.1", debian_broker.port, username="api",
                              password="pw-api-0123456789abcdef", timeout=5):
        pass
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client("127.0.0.1", debian_broker.port, timeout=5):  # anonymous
            pass


def test_the_systemd_install_listens_plain_only_on_loopback() -> None:
    """Issue 15: the systemd path listened on every interface over plain MQTT and HTTP."""
    snippet = (UNITS / "mosquitto-voltbus.conf").read_text()
    listeners = [line.split() for line in snippet.splitlines() if line.startswith("listener")]
    assert listeners == [["listener", "1883", "127.0.0.1"], ["listener", "8883"]]
    tls_block = snippet.split("listener 8883", 1)[1]
    assert "certfile /etc/voltbus/tls/mqtt-server.crt" in tls_block
    env = dict(line.split("=", 1) for line in
               (UNITS / "voltbus.env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["VOLTBUS_MQTT_HOST"] == "127.0.0.1"
    # the page is on the LAN, so over HTTPS only, with the certificate broker-init makes
    assert env["VOLTBUS_API_TLS_CERT_FILE"] == "/etc/voltbus/tls/api-server.crt"
    assert env["VOLTBUS_API_TLS_KEY_FILE"] == "/etc/voltbus/tls/api-server.key"
    assert env["VOLTBUS_PUBLIC_URL"].startswith("https://")
    init = (UNITS / "voltbus-broker-init.service").read_text()
    assert "Environment=VOLTBUS_TLS_DIR=/etc/voltbus/tls\n" in init
    assert "Environment=VOLTBUS_API_USER=voltbus\n" in init  # owns api-server.key
    from voltbus_api.settings import ApiSettings
    settings = ApiSettings(**{k[len("VOLTBUS_"):].lower(): v for k, v in env.items()
                              if k.startswith("VOLTBUS_API_")})
    assert settings.api_tls_cert_file is not None


async def test_debian_mosquitto_tls_listener_is_verified(debian_broker: DebianBroker) -> None:
    ca = debian_broker.tls_dir / "ca.crt"
    assert (debian_broker.tls_dir / "mqtt-server.key").stat().st_mode & 0o777 == 0o600
    trusted = ssl.create_default_context(cafile=str(ca))
    async with aiomqtt.Client("localhost", debian_broker.tls_port, username="api",
                              password="pw-api-0123456789abcdef", timeout=5,
                              tls_context=trusted) as c:
        await c.publish("voltbus/v1/CP1/service/api/status", b"online", qos=1)
    with pytest.raises(aiomqtt.MqttError):  # a client that does not trust the private CA
        async with aiomqtt.Client("localhost", debian_broker.tls_port, username="api",
                                  password="pw-api-0123456789abcdef", timeout=5,
                                  tls_context=ssl.create_default_context()):
            pass
