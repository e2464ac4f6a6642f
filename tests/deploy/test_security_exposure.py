"""Secure by default: compose publishes to loopback only, and the broker and API speak TLS
with certificates init_broker.py generates from a private CA (issue 15)."""

from __future__ import annotations

import json
import os
import ssl
import stat
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509

from tests.deploy.test_broker_init import Broker, broker, client, run_init, write_secrets
from tests.deploy.test_compose import compose, example_env, resolved
from voltbus_common.devbroker import wait_for_port

__all__ = ["broker"]  # the fixture, imported for the TLS test
PUBLISHED = {"mosquitto": {1883, 8883}, "api": {8080}, "grafana": {3000}, "influxdb": {8086}}


def published(config: dict[str, object]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for name, svc in config["services"].items():  # type: ignore[attr-defined]
        for port in svc.get("ports", []):
            out.setdefault(name, {})[int(port["target"])] = port.get("host_ip", "0.0.0.0")
    return out


def test_every_published_port_is_loopback_by_default(tmp_path: Path) -> None:
    ports = published(resolved(tmp_path, "--profile", "dev"))
    for service, targets in PUBLISHED.items():
        assert set(ports[service]) == targets, service
    for service, by_target in ports.items():
        for target, host_ip in by_target.items():
            assert host_ip == "127.0.0.1", f"{service}:{target} is published on {host_ip}"


def test_opening_the_api_and_mqtts_is_one_setting_each(tmp_path: Path) -> None:
    env = {**example_env(), "VOLTBUS_API_BIND": "0.0.0.0", "VOLTBUS_MQTTS_BIND": "0.0.0.0"}
    (tmp_path / "x").mkdir()
    result = compose(tmp_path / "x", "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    ports = published(json.loads(result.stdout))
    assert ports["api"][8080] == "0.0.0.0"
    assert ports["mosquitto"] == {1883: "127.0.0.1", 8883: "0.0.0.0"}


def test_api_speaks_tls_with_the_generated_certificate(tmp_path: Path) -> None:
    config = resolved(tmp_path)
    api, init = config["services"]["api"], config["services"]["mosquitto-init"]
    env = api["environment"]
    assert env["VOLTBUS_API_TLS_CERT_FILE"] == "/etc/voltbus/tls/api-server.crt"
    assert env["VOLTBUS_API_TLS_KEY_FILE"] == "/etc/voltbus/tls/api-server.key"
    assert env["VOLTBUS_PUBLIC_URL"].startswith("https://")
    assert api["healthcheck"]["test"][1:4] == ["python", "-m", "voltbus_api.healthcheck"]
    mounts = {v["source"]: (v["target"], v.get("read_only", False)) for v in api["volumes"]
              if v["type"] == "volume"}
    assert mounts["tls"] == ("/etc/voltbus/tls", True)
    assert init["environment"]["VOLTBUS_TLS_DIR"] == "/mosquitto/tls"
    assert init["environment"]["VOLTBUS_API_UID"] == "10001"  # the image's voltbus user


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_generated_ca_serves_mqtts_and_is_kept(broker: Broker) -> None:
    passwords = write_secrets(broker.tmp)
    tls_dir = broker.tmp / "tls"
    result = run_init(broker.tmp, VOLTBUS_MQTT_TLS_PORT=str(broker.tls_port),
                      VOLTBUS_TLS_DIR=str(tls_dir), VOLTBUS_TLS_NAMES="voltbus.local,192.0.2.7")
    assert result.returncode == 0, result.stderr
    assert "generated TLS ca, mqtt-server, api-server" in result.stderr
    for key in ("ca.key", "mqtt-server.key", "api-server.key"):
        assert mode(tls_dir / key) == 0o600, key
    cert = x509.load_pem_x509_certificate((tls_dir / "api-server.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"api", "voltbus.local", "localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert "192.0.2.7" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    tls_conf = (broker.tmp / "generated" / "conf.d" / "tls.conf").read_text()
    assert f"certfile {tls_dir / 'mqtt-server.crt'}" in tls_conf
    (broker.tmp / "generated" / "conf.d" / "tls.conf").write_text(tls_conf.replace(
        f"listener {broker.tls_port}", f"listener {broker.tls_port} 127.0.0.1"))
    broker.start()
    wait_for_port(broker.tls_port, 10)
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))  # verifies the name
    async with client(broker.tls_port, "operator", passwords["operator"], tls_context=context,
                      tls_insecure=False):
        pass
    stranger = ssl.create_default_context()  # without the CA: refused
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker.tls_port, "operator", passwords["operator"],
                          tls_context=stranger, tls_insecure=False):
            pass
    # A restart keeps the CA (clients keep trusting it); new names re-issue the servers only.
    ca_before = (tls_dir / "ca.crt").read_bytes()
    again = run_init(broker.tmp, VOLTBUS_TLS_DIR=str(tls_dir),
                     VOLTBUS_TLS_NAMES="voltbus.local,192.0.2.7")
    assert "generated TLS" not in again.stderr
    renamed = run_init(broker.tmp, VOLTBUS_TLS_DIR=str(tls_dir), VOLTBUS_TLS_NAMES="pi.lan")
    assert "generated TLS mqtt-server, api-server" in renamed.stderr
    assert (tls_dir / "ca.crt").read_bytes() == ca_before


def test_mounted_certificates_win_over_generated_ones(tmp_path: Path) -> None:
    write_secrets(tmp_path)
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("server.crt", "server.key"):
        (certs / name).write_text("mounted\n")
    assert run_init(tmp_path, VOLTBUS_TLS_DIR=str(tmp_path / "tls")).returncode == 0
    tls_conf = (tmp_path / "generated" / "conf.d" / "tls.conf").read_text()
    assert f"certfile {certs / 'server.crt'}" in tls_conf
    assert os.path.exists(tmp_path / "tls" / "api-server.crt")  # the API's is made regardless
