"""`python -m voltbus_common.healthcheck <service>`: exit 0 when the service is online on the bus.

The container healthcheck of every bus service. It logs in with the service's own environment
(VOLTBUS_MQTT_*, VOLTBUS_STATIONS, VOLTBUS_ROOT) and reads the retained
`{root}/{station}/service/{service}/status` of each station. A service sets it `online` when it
connects; its MQTT Last Will sets it `offline` when it dies or hangs (no keepalive for 1.5x the
keepalive interval, 15 s by default), and a clean stop sets it `offline` too. So "healthy" means
the broker is up, the service is logged in and its event loop still answers.

It runs every 30 s in three containers on a Pi, so it imports only aiomqtt: the contract and
settings modules would cost five times the CPU (pydantic). tests/deploy/test_healthcheck.py
checks that the topic and the settings it reads are the contract's and BusSettings'.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

SERVICES = ("hardware", "gateway", "recorder", "api", "energy")
DEFAULT_ROOT = "voltbus/v1"  # = voltbus_common.channels.DEFAULT_ROOT (a test keeps them equal)
STATUS_PATTERN = "{root}/{station}/service/{service}/status"  # = channels.SERVICE_STATUS


def status_topic(root: str, station: str, service: str) -> str:
    """The retained status topic of a service at a station."""
    return STATUS_PATTERN.format(root=root, station=station, service=service)


@dataclass(frozen=True)
class ProbeSettings:
    """The few BusSettings fields the probe needs, read from the same environment variables."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    ca_file: str | None
    root: str
    stations: tuple[str, ...]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ProbeSettings:
        """VOLTBUS_* from the environment, with BusSettings' defaults."""
        env = dict(os.environ if env is None else env)
        password = env.get("VOLTBUS_MQTT_PASSWORD")
        if password is None and env.get("VOLTBUS_MQTT_PASSWORD_FILE"):
            password = Path(env["VOLTBUS_MQTT_PASSWORD_FILE"]).read_text().strip()
        stations = tuple(s.strip() for s in env.get("VOLTBUS_STATIONS", "CP1").split(",")
                         if s.strip())
        return cls(
            host=env.get("VOLTBUS_MQTT_HOST", "127.0.0.1"),
            port=int(env.get("VOLTBUS_MQTT_PORT", "1883")),
            username=env.get("VOLTBUS_MQTT_USERNAME"), password=password,
            tls=env.get("VOLTBUS_MQTT_TLS", "").lower() in ("1", "true", "yes", "on"),
            ca_file=env.get("VOLTBUS_MQTT_CA_FILE"), root=env.get("VOLTBUS_ROOT", DEFAULT_ROOT),
            stations=stations or ("CP1",))


async def service_states(settings: ProbeSettings, service: str,
                         wait_s: float = 5.0) -> dict[str, str | None]:
    """The retained status of `service` for each station (None: nothing retained)."""
    topics = {status_topic(settings.root, s, service): s for s in settings.stations}
    found: dict[str, str | None] = dict.fromkeys(settings.stations)
    tls = ssl.create_default_context(cafile=settings.ca_file) if settings.tls else None
    client = aiomqtt.Client(
        settings.host, settings.port, username=settings.username, password=settings.password,
        identifier=f"voltbus-health-{uuid.uuid4().hex[:10]}", tls_context=tls, timeout=wait_s)
    async with client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        # Retained messages follow each SUBACK: wait for all of them, or give up at the timeout
        # (a station whose status was never published stays None).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                async for message in client.messages:
                    station = topics.get(str(message.topic))
                    if station is not None:
                        payload = message.payload
                        text = payload.decode(errors="replace") if isinstance(
                            payload, bytes) else str(payload)
                        found[station] = text.strip()
                    if all(v is not None for v in found.values()):
                        break
    return found


def check(service: str, settings: ProbeSettings | None = None,
          timeout: float | None = None) -> int:
    """0 when every station shows the service online; 1 (and a reason on stderr) otherwise."""
    if timeout is None:
        timeout = float(os.environ.get("VOLTBUS_HEALTHCHECK_TIMEOUT_S", "5"))
    try:
        settings = settings or ProbeSettings.from_env()
        states = asyncio.run(service_states(settings, service, timeout))
    except (aiomqtt.MqttError, TimeoutError, OSError, ValueError) as exc:
        where = f"{settings.host}:{settings.port}" if settings else "settings"
        print(f"unhealthy: MQTT {where}: {exc}", file=sys.stderr)
        return 1
    bad = {s: v for s, v in states.items() if v != "online"}
    if bad:
        print(f"unhealthy: {service} status per station (None: never online): {bad}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    """Command line: one argument, the service name."""
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m voltbus_common.healthcheck {{{'|'.join(SERVICES)}}}",
              file=sys.stderr)
        return 2
    return check(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
