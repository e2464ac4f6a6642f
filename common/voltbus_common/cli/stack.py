"""`voltbus up`: the whole stack on one machine, for development and demos."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from voltbus_common.cli.banner import Banner, cli_command, wait_for_api
from voltbus_common.cli.context import StackInfo, data_dir
from voltbus_common.cli.joined import JoinedBroker
from voltbus_common.cli.ports import claim, preferred_or_free
from voltbus_common.cli.supervisor import Supervisor
from voltbus_common.devbroker import EmbeddedBroker, LocalMosquitto, wait_for_port
from voltbus_common.devinflux import LocalInfluxDB
from voltbus_common.private_files import write_private
from voltbus_common.runtime import setup_logging

log = logging.getLogger("voltbus.up")
API_READY_TIMEOUT_S = 90.0


def _token(path_dir: Path, name: str) -> str:
    path = path_dir / name
    if not path.exists():
        path_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, secrets.token_urlsafe(32) + "\n")
    return str(path)


@dataclass(frozen=True)
class StackOptions:
    """What `voltbus up` was asked for."""

    connectors: int
    stations: str
    csms_url: str | None
    api_port: int
    mqtt_port: int
    csms_port: int
    influx: bool
    join: str | None = None  # HOST[:PORT] of an existing broker
    join_secrets: Path | None = None  # mqtt_<user> password files for it
    join_tls: bool = False
    house: bool = True  # the energy manager with a simulated house (cli/house.py)
    time_scale: float = 1.0  # the simulated house's clock runs this much faster
    house_start: str | None = None  # HH:MM the simulated day starts at (default: now)
    ocpp: str = "1.6"  # the OCPP version the gateway speaks (VOLTBUS_OCPP_VERSION)


HOUSE_SITE = "home"


def house_env(opts: StackOptions) -> dict[str, str]:
    """The energy manager's settings for the simulated house (its PV timers scaled too, so
    PV mode's hysteresis keeps its length in simulated time)."""
    scale = max(opts.time_scale, 1.0)
    env = {"VOLTBUS_ENERGY_SITE": HOUSE_SITE, "VOLTBUS_ENERGY_CONNECTORS": str(opts.connectors),
           "VOLTBUS_ENERGY_FUSE_A": "25", "VOLTBUS_ENERGY_CONNECTOR_MAX_A": "16",
           "VOLTBUS_HOUSE_TIME_SCALE": f"{opts.time_scale:g}"}
    for name, seconds in (("START_DELAY", 60), ("STOP_DELAY", 180), ("MIN_ON", 300),
                          ("MIN_OFF", 120)):
        env[f"VOLTBUS_ENERGY_PV_{name}_S"] = f"{seconds / scale:g}"
    if opts.house_start:
        env["VOLTBUS_HOUSE_START"] = opts.house_start
    return env


def _broker(opts: StackOptions, data: Path) -> LocalMosquitto | JoinedBroker:
    if opts.join is not None:
        return JoinedBroker.parse(opts.join, secrets_dir=opts.join_secrets or data / "secrets",
                                  tls=opts.join_tls)
    secrets_dir = data / "secrets"
    port = claim(opts.mqtt_port, "MQTT broker", "--mqtt-port",
                 hint="To use the broker that holds it (e.g. Home Assistant's), see "
                      "`voltbus up --join HOST:PORT` in docs/homeassistant.md; if it is the "
                      "system's Mosquitto service: `sudo systemctl disable --now mosquitto`.")
    if LocalMosquitto.binary() is not None:
        return LocalMosquitto(data / "mosquitto", port=port, secrets_dir=secrets_dir)
    log.warning("mosquitto is not installed (scripts/setup installs it); falling back to "
                "the embedded amqtt broker, installed into %s/tools", data)
    return EmbeddedBroker(data / "amqtt", tools_dir=data / "tools", port=port,
                          secrets_dir=secrets_dir)


def house_banner(opts: StackOptions) -> str:
    """The banner's line about the simulated house."""
    speed = "" if opts.time_scale == 1 else f", its day {opts.time_scale:g}x faster"
    return (f"PV 07:00-19:00, a 10 kWh battery, 25 A fuse{speed}; connectors start in Min+PV "
            "(the page's Home energy card; --no-house to leave it out)")


def start_stack(opts: StackOptions) -> None:
    """Start broker, InfluxDB, dev CSMS and the four services; supervise until Ctrl-C.

    Raises PortInUse (before starting anything) if a fixed port is taken.
    """
    setup_logging("up")
    data = data_dir().resolve()
    data.mkdir(parents=True, exist_ok=True)
    api_host = os.environ.get("VOLTBUS_API_HOST", "127.0.0.1")
    # Every fixed port is checked before anything starts: no half-started stack to clean up.
    api_port = claim(opts.api_port, "web page and API", "--api-port", host=api_host)
    if opts.csms_url is None:
        claim(opts.csms_port, "development central system, OCPP", "--csms-port")
        claim(opts.csms_port + 1, "development central system, HTTP control", "--csms-port")
    broker = _broker(opts, data)
    broker.prepare()
    broker.start()
    database: LocalInfluxDB | None = None
    supervisor = Supervisor()
    try:
        base = {"VOLTBUS_STATIONS": opts.stations, "VOLTBUS_DATA_DIR": str(data),
                "VOLTBUS_CONNECTORS": str(opts.connectors), "PYTHONUNBUFFERED": "1"}
        influx_env: dict[str, str] = {}
        influx_url = None
        if opts.influx and LocalInfluxDB.binary() is not None:
            port, preferred = preferred_or_free(8086)
            if not preferred:  # only this stack talks to it, so another port is harmless
                log.warning("port 8086 is in use (a system InfluxDB?): the local InfluxDB "
                            "listens on 127.0.0.1:%d instead", port)
            database = LocalInfluxDB(data / "influxdb", port=port)
            database.start()
            influx_url = database.url
            influx_env = {"VOLTBUS_INFLUX_API": "1", "VOLTBUS_INFLUX_URL": database.url,
                          "VOLTBUS_INFLUX_DATABASE": "voltbus"}
        elif opts.influx:
            log.warning("influxd not installed: the recorder will spool readings until an "
                        "InfluxDB is configured (VOLTBUS_INFLUX_URL)")
            influx_env = {"VOLTBUS_INFLUX_API": "1", "VOLTBUS_INFLUX_URL": "http://127.0.0.1:8086",
                          "VOLTBUS_INFLUX_DATABASE": "voltbus"}
        csms_url, csms_http = opts.csms_url, None
        if csms_url is None:
            ws_port, http_port = opts.csms_port, opts.csms_port + 1
            supervisor.add("devcsms", "voltbus_devcsms", {
                "VOLTBUS_DEVCSMS_PORT": str(ws_port), "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port),
                **base})
            wait_for_port(ws_port, 20)
            csms_url = f"ws://127.0.0.1:{ws_port}/ocpp"
            csms_http = f"http://127.0.0.1:{http_port}"
        token_file = _token(data / "secrets", "api_admin_token")
        supervisor.add("hardware", "voltbus_hardware", {**base, **broker.env("hardware")})
        supervisor.add("gateway", "voltbus_ocpp",
                       {**base, **broker.env("gateway"), "VOLTBUS_CSMS_URL": csms_url,
                        "VOLTBUS_OCPP_VERSION": opts.ocpp})
        site = {"VOLTBUS_ENERGY_SITE": HOUSE_SITE} if opts.house else {}
        supervisor.add("recorder", "voltbus_recorder",
                       {**base, **broker.env("recorder"), **influx_env, **site})
        house = house_env(opts) if opts.house else {}
        if opts.house:
            supervisor.add("energy", "voltbus_common.cli.house",
                           {**base, **broker.env("energy"), **house})
        supervisor.add("api", "voltbus_api", {
            **base, **broker.env("api"), **influx_env, "VOLTBUS_API_PORT": str(api_port),
            "VOLTBUS_API_ADMIN_TOKEN_FILE": token_file, **site})
        api_url = f"http://{api_host}:{api_port}"
        joined = isinstance(broker, JoinedBroker)
        host = broker.host if isinstance(broker, JoinedBroker) else "127.0.0.1"
        StackInfo(mqtt_port=broker.port, mqtt_host=host, root=broker.root,
                  stations=opts.stations.split(","), secrets_dir=str(broker.secrets_dir),
                  api_url=api_url, csms_http_url=csms_http,
                  mqtt_tls=joined and opts.join_tls).save(data)
        ready = wait_for_api(api_url, API_READY_TIMEOUT_S, supervisor.poll)
        print(Banner(api_url=api_url, mqtt=f"{host}:{broker.port}", csms_url=csms_url,
                     token_file=token_file, data=data, influx_url=influx_url,
                     cli=cli_command(cwd=Path.cwd(), data=data), api_ready=ready,
                     joined=joined, secrets_dir=broker.secrets_dir,
                     house=house_banner(opts) if opts.house else None).render(),
              file=sys.stderr, flush=True)
        supervisor.run_forever()
    finally:
        supervisor.stop()
        if database is not None:
            database.stop()
        broker.stop()
        (data / "up.json").unlink(missing_ok=True)
