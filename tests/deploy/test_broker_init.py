"""mosquitto/init_broker.py and mosquitto/mosquitto.conf, run with the real Mosquitto binary.

The compose broker config is used as committed, with only its container paths and port
rewritten to a temp dir, so a config Mosquitto would refuse fails here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
import trustme
import yaml

from voltbus_common.channels import ALL_USERS, COMMAND, DEFAULT_ROOT
from voltbus_common.devbroker import LocalMosquitto, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
INIT = REPO / "mosquitto" / "init_broker.py"


def run_init(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, VOLTBUS_BROKER_SECRETS_DIR=str(tmp / "secrets"),
                VOLTBUS_BROKER_OUT_DIR=str(tmp / "generated"),
                VOLTBUS_BROKER_CERTS_DIR=str(tmp / "certs"), **env)
    return subprocess.run([sys.executable, str(INIT)], env=full, capture_output=True, text=True,
                          timeout=30, check=False)


def write_secrets(tmp: Path) -> dict[str, str]:
    (tmp / "secrets").mkdir(exist_ok=True)
    passwords = {user: f"pw-{user}-0123456789abcdef" for user in ALL_USERS}
    for user, password in passwords.items():
        (tmp / "secrets" / f"mqtt_{user}").write_text(password + "\n")
    return passwords


class Broker:
    """The compose broker config, rewritten to tmp paths, running."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.tls_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = (REPO / "mosquitto" / "mosquitto.conf").read_text()
        conf = conf.replace("/mosquitto/generated", str(self.tmp / "generated"))
        conf = conf.replace("/mosquitto/data/", f"{self.tmp / 'data'}/")
        conf = conf.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("log_dest stdout", f"log_dest file {self.tmp / 'mosquitto.log'}")
        if os.geteuid() == 0:
            conf += "user root\n"  # as root it would switch to a user that cannot read the files
        (self.tmp / "data").mkdir(exist_ok=True)
        (self.tmp / "mosquitto.conf").write_text(conf)
        binary = LocalMosquitto.binary()
        assert binary, "mosquitto is not installed (apt-get install mosquitto)"
        self.process = subprocess.Popen([binary, "-c", str(self.tmp / "mosquitto.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(self.port, 10)
        except TimeoutError:
            self.stop()
            log = self.tmp / "mosquitto.log"
            raise AssertionError(log.read_text() if log.exists() else "no log") from None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)


def run_compose_healthcheck(broker: Broker) -> int:
    """compose.yaml's mosquitto healthcheck (CMD-SHELL), paths and port moved to the test's."""
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$")  # compose's escape for a literal $
    command = command.replace("/mosquitto/generated", str(broker.tmp / "generated"))
    command = command.replace("-p 1883", f"-p {broker.port}")
    assert shutil.which("mosquitto_sub"), "apt-get install mosquitto-clients"
    return subprocess.run(["sh", "-c", command], timeout=20, check=False).returncode


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.stop()


def client(port: int, user: str | None, password: str | None, **kw: object) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, timeout=5,
                          **kw)  # type: ignore[arg-type]


async def test_generated_files_work_with_the_committed_config(broker: Broker) -> None:
    passwords = write_secrets(broker.tmp)
    result = run_init(broker.tmp, VOLTBUS_MQTT_TLS_PORT=str(broker.tls_port))
    assert result.returncode == 0, result.stderr
    assert "TLS listener off" in result.stderr
    generated = broker.tmp / "generated"
    assert (generated / "passwd").stat().st_mode & 0o777 == 0o600
    assert not (generated / "conf.d" / "tls.conf").exists()
    assert passwords["gateway"] not in (generated / "passwd").read_text()  # hashed
    broker.start()
    # Every voltbus user logs in with its password from the secrets.
    for user, password in passwords.items():
        async with client(broker.port, user, password):
            pass
    for user, password in (("gateway", "wrong-password"), (None, None)):
        with pytest.raises(aiomqtt.MqttCodeError):
            async with client(broker.port, user, password):
                pass
    # The healthcheck user (random password, from the generated file) reads the broker uptime,
    # which is what the compose healthcheck's mosquitto_sub does.
    health = (generated / "healthcheck").read_text().strip()
    async with client(broker.port, "healthcheck", health) as probe:
        await probe.subscribe("$SYS/broker/uptime")
        async with asyncio.timeout(5):
            message = await anext(aiter(probe.messages))
        assert b"seconds" in message.payload  # type: ignore[operator]
    # The compose healthcheck's own command line, as the container's shell runs it.
    assert await asyncio.to_thread(run_compose_healthcheck, broker) == 0
    (generated / "healthcheck").write_text("wrong-password\n")
    assert await asyncio.to_thread(run_compose_healthcheck, broker) != 0
    (generated / "healthcheck").write_text(health + "\n")
    # The ACL came through: Home Assistant's command reaches the gateway's subscription.
    topic = COMMAND.topic(DEFAULT_ROOT, station="CP1", connector=1)
    async with client(broker.port, "gateway", passwords["gateway"]) as gateway, \
            client(broker.port, "homeassistant", passwords["homeassistant"]) as ha:
        await gateway.subscribe(topic, qos=1)
        await ha.publish(topic, b'{"command":"stop"}', qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(gateway.messages))
    assert message.payload == b'{"command":"stop"}'


async def test_tls_listener_when_certificates_are_mounted(broker: Broker) -> None:
    passwords = write_secrets(broker.tmp)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certs = broker.tmp / "certs"
    certs.mkdir()
    cert.private_key_pem.write_to_path(str(certs / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(certs / "server.crt"))
    ca.cert_pem.write_to_path(str(certs / "ca.crt"))
    result = run_init(broker.tmp, VOLTBUS_MQTT_TLS_PORT=str(broker.tls_port))
    assert result.returncode == 0, result.stderr
    assert f"TLS listener on port {broker.tls_port}" in result.stderr
    tls_conf = (broker.tmp / "generated" / "conf.d" / "tls.conf").read_text()
    tls_conf = tls_conf.replace(f"listener {broker.tls_port}",
                                f"listener {broker.tls_port} 127.0.0.1")
    (broker.tmp / "generated" / "conf.d" / "tls.conf").write_text(tls_conf)
    broker.start()
    wait_for_port(broker.tls_port, 10)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with client(broker.tls_port, "operator", passwords["operator"], tls_context=context,
                      tls_insecure=False):
        pass
    # Certificates removed: the next start has no TLS listener again.
    for name in ("server.key", "server.crt"):
        (certs / name).unlink()
    assert run_init(broker.tmp).returncode == 0
    assert not (broker.tmp / "generated" / "conf.d" / "tls.conf").exists()


async def test_custom_ha_prefix_is_granted_to_the_discovery_writers(broker: Broker) -> None:
    passwords = write_secrets(broker.tmp)
    result = run_init(broker.tmp, VOLTBUS_HA_PREFIX="ha-test")
    assert result.returncode == 0, result.stderr
    broker.start()
    topic = "ha-test/device/voltbus_CP1/config"
    async with client(broker.port, "homeassistant", passwords["homeassistant"]) as ha, \
            client(broker.port, "api", passwords["api"]) as api, \
            client(broker.port, "hardware", passwords["hardware"]) as hardware:
        await ha.subscribe(topic, qos=1)
        await hardware.publish(topic, b"from hardware", qos=1)  # not a discovery writer: denied
        await api.publish(topic, b"from api", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(ha.messages))
    assert message.payload == b"from api"


def test_missing_passwords_stop_the_init_with_their_names(tmp_path: Path) -> None:
    write_secrets(tmp_path)
    (tmp_path / "secrets" / "mqtt_recorder").unlink()
    (tmp_path / "secrets" / "mqtt_api").write_text("short\n")
    result = run_init(tmp_path)
    assert result.returncode != 0
    assert "mqtt_recorder" in result.stderr
    assert "mqtt_api" in result.stderr
    assert not (tmp_path / "generated" / "passwd").exists()


def test_a_pi_bridge_config_is_taken_into_conf_d(tmp_path: Path) -> None:
    """`voltbus bridge --out mosquitto/certs/bridge.conf` on a compose Pi: the init puts it
    where the broker includes it, 0600 (it holds the bridge password), and removes it again."""
    write_secrets(tmp_path)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "bridge.conf").write_text("connection p1\naddress site:8883\n")
    assert run_init(tmp_path).returncode == 0
    taken = tmp_path / "generated" / "conf.d" / "bridge.conf"
    assert taken.read_text() == "connection p1\naddress site:8883\n"
    assert taken.stat().st_mode & 0o777 == 0o600
    (tmp_path / "certs" / "bridge.conf").unlink()
    assert run_init(tmp_path).returncode == 0
    assert not taken.exists()
