"""`python -m voltbus_recorder`: wires settings, spool, writer, ingest, Bus and Inbox."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
from zoneinfo import ZoneInfo

from voltbus_common.bus import Bus
from voltbus_common.runtime import run
from voltbus_common.settings import ConfigError, load_settings
from voltbus_recorder.health import HealthReporter
from voltbus_recorder.inbox import Inbox
from voltbus_recorder.ingest import Ingest
from voltbus_recorder.settings import RecorderSettings
from voltbus_recorder.sinks import build_sink
from voltbus_recorder.spool import Spool
from voltbus_recorder.writer import Writer


def session_id(root: str, station: str) -> str:
    """The MQTT client id of the recorder's persistent session for a station.

    The id the recorder's Bus subscribed with before the Inbox existed, so an upgrade keeps the
    messages the broker queued for it.
    """
    return f"voltbus-recorder-{hashlib.sha1(f'{root}|{station}'.encode()).hexdigest()[:10]}"


async def main(settings: RecorderSettings) -> None:
    """Run the recorder until cancelled."""
    spool = Spool(settings.spool_path, max_points=settings.recorder_spool_max_points,
                  dead_letter_max=settings.recorder_dead_letter_max,
                  fsync=settings.recorder_spool_fsync)
    sink = build_sink(settings)
    writer = Writer(spool, sink, batch_size=settings.recorder_batch_size,
                    max_age_s=settings.recorder_batch_max_age_s,
                    live_share=settings.recorder_live_share,
                    retry_max_s=settings.recorder_retry_max_s)
    stations = settings.stations[:1] if settings.recorder_all_stations else settings.stations
    # The Bus publishes (status and its Will, health, rejections); the Inbox receives.
    buses = {s: Bus(settings, station=s, service="recorder", client_id=session_id(settings.root, s)
                    + "-pub") for s in stations}

    def reject(topic: str, station: str, reason: str) -> None:
        buses.get(station, next(iter(buses.values()))).reject(topic, reason)

    ingest = Ingest(spool, writer.notify, root=settings.root, on_reject=reject,
                    zone=ZoneInfo(settings.recorder_timezone),
                    commit_interval_s=settings.recorder_commit_interval_s,
                    link_sample_s=settings.recorder_link_sample_s)
    # The site's state comes with the first station's subscriptions (one persistent session).
    inboxes = [Inbox(settings, client_id=session_id(settings.root, s),
                     filters=ingest.filters("+" if settings.recorder_all_stations else s,
                                            site=settings.energy_site if i == 0 else None),
                     handler=ingest.feed) for i, s in enumerate(stations)]
    health = HealthReporter(spool, writer, ingest, list(buses.values()), target=sink.description,
                            interval_s=settings.recorder_health_interval_s)
    try:
        async with contextlib.AsyncExitStack() as running:
            for bus in buses.values():
                await running.enter_async_context(bus)
            async with asyncio.TaskGroup() as group:
                for inbox in inboxes:
                    group.create_task(inbox.run())
                group.create_task(ingest.run())
                group.create_task(ingest.run_link_sampler())
                group.create_task(writer.run())
                group.create_task(health.run())
    finally:
        for inbox in inboxes:
            await inbox.close()
        spool.close()
        await sink.aclose()


def cli() -> int:
    """Entry point: load settings (exit 2 with a readable message when invalid), then run."""
    settings = load_settings(RecorderSettings)
    try:  # secrets files are read now, so a missing one stops start-up with its name
        settings.influx_password_secret()
        settings.influx_token_secret()
        settings.mqtt_secret()
    except ConfigError as exc:
        print(f"voltbus: invalid configuration (RecorderSettings): {exc}", file=sys.stderr)
        return 2
    return run(lambda: main(settings), service="recorder", log_level=settings.log_level)


if __name__ == "__main__":
    raise SystemExit(cli())
