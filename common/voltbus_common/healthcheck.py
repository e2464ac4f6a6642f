"""`python -m voltbus_common.healthcheck <service>`: exit 0 when the service is online on the bus.

The container healthcheck of every bus service. It logs in with the service's own settings
(VOLTBUS_MQTT_*, VOLTBUS_STATIONS, VOLTBUS_ROOT) and reads the retained
`{root}/{station}/service/{service}/status` of each station. A service sets it `online` when it
connects; its MQTT Last Will sets it `offline` when it dies or hangs (no keepalive for 1.5x the
keepalive interval, 15 s by default), and a clean stop sets it `offline` too. So "healthy" means
the broker is up, the service is logged in and its event loop still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
import uuid

import aiomqtt

from voltbus_common.channels import SERVICE_STATUS
from voltbus_common.enums import Service, ServiceState
from voltbus_common.settings import BusSettings


async def service_states(settings: BusSettings, service: str,
                         wait_s: float = 5.0) -> dict[str, str | None]:
    """The retained status of `service` for each station (None: nothing retained)."""
    topics = {SERVICE_STATUS.topic(settings.root, station=s, service=service): s
              for s in settings.stations}
    found: dict[str, str | None] = dict.fromkeys(settings.stations)
    tls = None
    if settings.mqtt_tls:
        tls = ssl.create_default_context(
            cafile=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)
    client = aiomqtt.Client(
        settings.mqtt_host, settings.mqtt_port, username=settings.mqtt_username,
        password=settings.mqtt_secret(), identifier=f"voltbus-health-{uuid.uuid4().hex[:10]}",
        tls_context=tls, timeout=wait_s)
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


def check(service: str, settings: BusSettings | None = None, timeout: float | None = None) -> int:
    """0 when every station shows the service online; 1 (and a reason on stderr) otherwise."""
    settings = settings or BusSettings()
    if timeout is None:
        timeout = float(os.environ.get("VOLTBUS_HEALTHCHECK_TIMEOUT_S", "5"))
    try:
        states = asyncio.run(service_states(settings, service, timeout))
    except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
        print(f"unhealthy: MQTT {settings.mqtt_host}:{settings.mqtt_port}: {exc}", file=sys.stderr)
        return 1
    bad = {s: v for s, v in states.items() if v != ServiceState.ONLINE.value}
    if bad:
        print(f"unhealthy: {service} status per station (None: never online): {bad}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    """Command line: one argument, the service name."""
    names = [s.value for s in Service]
    if len(argv) != 1 or argv[0] not in names:
        print(f"usage: python -m voltbus_common.healthcheck {{{'|'.join(names)}}}",
              file=sys.stderr)
        return 2
    return check(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
