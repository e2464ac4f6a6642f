"""`voltbus up`: the whole stack on one machine, for development and demos."""

from __future__ import annotations

import logging
import secrets
import sys

from voltbus_common.cli.context import StackInfo, data_dir
from voltbus_common.cli.main import port_or_free
from voltbus_common.cli.supervisor import Supervisor
from voltbus_common.devbroker import EmbeddedBroker, LocalMosquitto, wait_for_port
from voltbus_common.devinflux import LocalInfluxDB
from voltbus_common.runtime import setup_logging

log = logging.getLogger("voltbus.up")


def _token(path_dir: str, name: str) -> str:
    from pathlib import Path

    path = Path(path_dir) / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return str(path)


def start_stack(*, connectors: int, stations: str, csms_url: str | None, api_port: int,
                mqtt_port: int, influx: bool) -> None:
    """Start broker, InfluxDB, dev CSMS and the four services; supervise until Ctrl-C."""
    setup_logging("up")
    data = data_dir().resolve()
    data.mkdir(parents=True, exist_ok=True)
    secrets_dir = data / "secrets"
    broker: LocalMosquitto
    if LocalMosquitto.binary() is not None:
        broker = LocalMosquitto(data / "mosquitto", port=port_or_free(mqtt_port),
                                secrets_dir=secrets_dir)
    else:
        log.warning("mosquitto is not installed (scripts/setup installs it); falling back to "
                    "the embedded amqtt broker, installed into %s/tools", data)
        broker = EmbeddedBroker(data / "amqtt", tools_dir=data / "tools",
                                port=port_or_free(mqtt_port), secrets_dir=secrets_dir)
    broker.prepare()
    broker.start()
    database: LocalInfluxDB | None = None
    supervisor = Supervisor()
    try:
        base = {"VOLTBUS_STATIONS": stations, "VOLTBUS_DATA_DIR": str(data),
                "VOLTBUS_CONNECTORS": str(connectors), "PYTHONUNBUFFERED": "1"}
        influx_env: dict[str, str] = {}
        if influx and LocalInfluxDB.binary() is not None:
            database = LocalInfluxDB(data / "influxdb", port=port_or_free(8086))
            database.start()
            influx_env = {"VOLTBUS_INFLUX_API": "1", "VOLTBUS_INFLUX_URL": database.url,
                          "VOLTBUS_INFLUX_DATABASE": "voltbus"}
        elif influx:
            log.warning("influxd not installed: the recorder will spool readings until an "
                        "InfluxDB is configured (VOLTBUS_INFLUX_URL)")
            influx_env = {"VOLTBUS_INFLUX_API": "1", "VOLTBUS_INFLUX_URL": "http://127.0.0.1:8086",
                          "VOLTBUS_INFLUX_DATABASE": "voltbus"}
        csms_http = None
        if csms_url is None:
            ws_port, http_port = port_or_free(9000), port_or_free(9001)
            supervisor.add("devcsms", "voltbus_devcsms", {
                "VOLTBUS_DEVCSMS_PORT": str(ws_port), "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port),
                **base})
            wait_for_port(ws_port, 20)
            csms_url = f"ws://127.0.0.1:{ws_port}/ocpp"
            csms_http = f"http://127.0.0.1:{http_port}"
        api_port = port_or_free(api_port)
        token_file = _token(str(secrets_dir), "api_admin_token")
        supervisor.add("hardware", "voltbus_hardware", {**base, **broker.env("hardware")})
        supervisor.add("gateway", "voltbus_ocpp",
                       {**base, **broker.env("gateway"), "VOLTBUS_CSMS_URL": csms_url})
        supervisor.add("recorder", "voltbus_recorder",
                       {**base, **broker.env("recorder"), **influx_env})
        supervisor.add("api", "voltbus_api", {
            **base, **broker.env("api"), **influx_env, "VOLTBUS_API_PORT": str(api_port),
            "VOLTBUS_API_ADMIN_TOKEN_FILE": token_file})
        api_url = f"http://127.0.0.1:{api_port}"
        StackInfo(mqtt_port=broker.port, root=broker.root, stations=stations.split(","),
                  secrets_dir=str(secrets_dir), api_url=api_url,
                  csms_http_url=csms_http).save(data)
        print(_banner(api_url, broker.port, csms_url, token_file, data), file=sys.stderr,
              flush=True)
        supervisor.run_forever()
    finally:
        supervisor.stop()
        if database is not None:
            database.stop()
        broker.stop()
        (data / "up.json").unlink(missing_ok=True)


def _banner(api_url: str, mqtt_port: int, csms_url: str, token_file: str, data: object) -> str:
    return f"""
voltbus is up (simulated hardware). Ctrl-C stops everything.
  web page and API   {api_url}   (API docs: {api_url}/docs; admin token in {token_file};
                     the first admin password is written under {data}/api/)
  MQTT broker        127.0.0.1:{mqtt_port} (users and passwords in {data}/secrets)
  central system     {csms_url}
In another terminal:  voltbus sim plug 1 ; voltbus sim tap 04A1B2C3 ; voltbus watch
"""
