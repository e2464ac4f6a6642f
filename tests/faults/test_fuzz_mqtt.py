"""Malformed payloads on every topic each service subscribes to (issue 15, MQTT fuzz).

All five services run as real processes on one station and a real Mosquitto with the generated
ACL: hardware (simulated, EV plugged in), gateway (its central system unreachable), recorder
(InfluxDB unreachable: it spools), API and energy manager (simulated grid). Every channel of the
contract gets PER_TOPIC payloads the contract refuses (broken bytes, deep nesting, wrong JSON
types, mistyped fields; each checked with `Channel.decode`), published with the credentials of
one of its writers, as the ACL demands. Each service must announce every one it received on
`service/{service}/rejected` (so the test learns which topics each subscribes to, and checks
that against SUBSCRIBED), actuate nothing (no relay/lock/limit/LED command, no relay or lock
move, every command answered Rejected), keep running, keep its RSS flat and its log short (the
RejectLog's rate limit).

VOLTBUS_FUZZ_PER_TOPIC sets the count (150 here, well under a minute; `VOLTBUS_FUZZ_PER_TOPIC=5000`
is the long run of docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from typing import Any

import pytest

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, rss_kib, wait_online
from tests.hardware.helpers import Watch
from tests.hardware.test_fuzz_commands import malformed
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.channels import PayloadError
from voltbus_common.enums import CommandStatus, PilotState, ServiceState
from voltbus_common.models import SimPlug
from voltbus_ocpp.bus_bridge import _salvage

PER_TOPIC = int(os.environ.get("VOLTBUS_FUZZ_PER_TOPIC", "150"))
BIG = 3  # payloads over 10 kB kept per topic (200 kB ones would make the long run gigabytes)
Sub = tuple[ch.Channel[Any], str | None]  # a channel, and the service it is about (if any)

# What each service subscribes to, as the rejections show it (the test fails when a service
# starts listening on a topic not listed here, or stops listening on one).
SERVICES = sorted(ch.SERVICE_STATUS.writers)
SUBSCRIBED: dict[str, list[Sub]] = {
    "hardware": [*((c, None) for c in (ch.RELAY_SET, ch.LOCK_SET, ch.CURRENT_LIMIT_SET,
                                       ch.LED_SET, ch.PHASES_SET, ch.SIM_PLUG, ch.SIM_EV,
                                       ch.SIM_FAULT, ch.SIM_TAP, ch.SIM_BAY)),
                 (ch.SERVICE_STATUS, "gateway")],
    "gateway": [*((c, None) for c in (ch.PILOT, ch.METER, ch.RELAY, ch.SWITCH_READING, ch.LOCK,
                                      ch.HW_ERROR, ch.RFID, ch.ENERGY_LIMIT, ch.COMMAND,
                                      ch.BAY)),
                (ch.SERVICE_STATUS, "hardware"),
                # every site's energy manager (its Will: the fail-safe, model/energy_limit.py)
                (ch.SERVICE_STATUS, "energy")],
    "recorder": [*((c, None) for c in (ch.PILOT, ch.METER, ch.RELAY, ch.HW_ERROR, ch.OCPP_STATUS,
                                       ch.CHARGING, ch.SESSION, ch.OCPP_CONNECTION,
                                       ch.ENERGY_COST)),
                 *((ch.SERVICE_STATUS, s) for s in SERVICES)],
    "api": [*((c, None) for c in (ch.PILOT, ch.METER, ch.RELAY, ch.HW_ERROR, ch.RFID,
                                  ch.OCPP_STATUS, ch.CHARGING, ch.TRANSACTION, ch.SESSION,
                                  ch.COMMAND_RESULT, ch.OCPP_CONNECTION, ch.ENERGY_MODE,
                                  ch.RECORDER_HEALTH, ch.LAST_SESSION, ch.RFID_LAST,
                                  ch.ENERGY_COST, ch.DISPLAY, ch.PHASES)),
            *((ch.SERVICE_STATUS, s) for s in SERVICES)],
    "energy": [*((c, None) for c in (ch.METER, ch.TRANSACTION, ch.ENERGY_MODE,
                                     ch.ENERGY_MODE_SET, ch.SESSION, ch.ENERGY_COST,
                                     ch.PHASES, ch.OCPP_STATUS)),
               (ch.SERVICE_STATUS, "gateway")],
}
ACTUATORS = [ch.RELAY_SET, ch.LOCK_SET, ch.CURRENT_LIMIT_SET, ch.LED_SET, ch.ENERGY_LIMIT,
             ch.PHASES_SET]


# every channel a voltbus user may write (bridge/state is written by Mosquitto's bridge only:
# the ACL refuses it to every user, tests/faults/test_security_checks.py)
FUZZED = [c for c in ch.CHANNELS if c.writers & set(ch.ALL_USERS)]


def _topic(channel: ch.Channel[Any], station: str, service: str | None) -> str:
    args: dict[str, str | int] = {"station": station, "connector": 1}
    if "service" in channel.fields:
        args["service"] = service or "gateway"
    return channel.topic(ch.DEFAULT_ROOT, **args)


def _writer(channel: ch.Channel[Any], service: str | None) -> str:
    if "service" in channel.fields and service:
        return service  # the ACL lets a service write only its own service/{service}/...
    return sorted(channel.writers)[0]


def bad_payloads(channel: ch.Channel[Any], rnd: random.Random, count: int) -> list[bytes]:
    """count payloads the channel's contract refuses."""
    fields = list(getattr(channel.model, "model_fields", {})) or ["state"]
    out: list[bytes] = []
    big = 0
    while len(out) < count:
        if issubclass(channel.model, ServiceState) and rnd.random() < 0.5:
            raw = rnd.choice([b"Online", b"on", b"1", b"", b"offline!", b"\xff\xfe",
                              b'"online"', b"online offline", b"x" * rnd.randrange(1, 300)])
        else:
            raw = malformed(rnd, fields)
        if len(raw) > 10_000:
            if big >= BIG:
                continue
            big += 1
        try:
            channel.decode(raw)
        except PayloadError:
            out.append(raw)
    return out


def fuzz_plan(station: str, seed: int) -> list[tuple[str, str, bytes, bool]]:
    """(writer, topic, payload, retain) for every channel of the contract, shuffled; the
    per-service channels once per service."""
    rnd = random.Random(seed)
    plan = []
    for channel in FUZZED:
        services = sorted(channel.writers) if "{service}" in channel.pattern else [None]
        for service in services:
            topic = _topic(channel, station, service)
            writer = _writer(channel, service)
            plan += [(writer, topic, raw, channel.retain)
                     for raw in bad_payloads(channel, rnd, PER_TOPIC)]
    rnd.shuffle(plan)
    return plan


@pytest.mark.expected_errors
async def test_malformed_payloads_on_every_subscribed_topic(
        mosquitto: Broker, station: str, services: ServiceGroup, tmp_path: Any) -> None:
    from voltbus_common.devbroker import free_port

    data = tmp_path / "data"
    base = {"VOLTBUS_STATIONS": station, "VOLTBUS_DATA_DIR": str(data),
            "VOLTBUS_LOG_LEVEL": "INFO"}
    envs = {
        "hardware": {"VOLTBUS_METER_INTERVAL_S": "1"},
        "gateway": {"VOLTBUS_CSMS_URL": f"ws://127.0.0.1:{free_port()}/ocpp"},
        "recorder": {"VOLTBUS_INFLUX_URL": f"http://127.0.0.1:{free_port()}"},
        "api": {"VOLTBUS_API_PORT": str(free_port())},
        "energy": {"VOLTBUS_ENERGY_SITE": station},
    }
    procs = {name: services.start(name, {**base, **mosquitto.env(name), **env})
             for name, env in envs.items()}
    watcher = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                  service=None)
    rejected: dict[str, Counter[str]] = {name: Counter() for name in envs}

    async def count(msg: Any) -> None:
        rejected[msg.args["service"]][msg.payload.topic] += 1
    watcher.on(ch.SERVICE_REJECTED, count)
    acts = {c.pattern: Watch(watcher, c, connector=1) for c in ACTUATORS}
    relay, lock = Watch(watcher, ch.RELAY, connector=1), Watch(watcher, ch.LOCK, connector=1)
    pilot = Watch(watcher, ch.PILOT, connector=1)
    results = Watch(watcher, ch.COMMAND_RESULT, connector=1)
    publishers = {user: Bus(mosquitto.settings(user, stations=[station]), station=station,
                            service=None, outbox_limit=10_000_000)
                  for user in ch.ALL_USERS}
    tasks = [asyncio.create_task(b.run()) for b in (watcher, *publishers.values())]
    try:
        await wait_online(mosquitto, station, tuple(envs))
        await watcher.wait_connected(5)
        watcher.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await pilot.until(lambda m: m.payload.state is PilotState.B, 10)
        await asyncio.sleep(1.5)  # settle: the gateway's LED and status for the plug-in
        for w in (*acts.values(), relay, lock, results):
            w.drain()
        before = {name: rss_kib(p.pid) for name, p in procs.items()}
        logs_before = {name: p.log().count("\n") for name, p in procs.items()}

        plan = fuzz_plan(station, seed=15)
        started = time.monotonic()
        for n, (user, topic, raw, retain) in enumerate(plan):
            publishers[user].publish_raw(topic, raw, qos=1, retain=retain)
            if n % 500 == 0:
                await asyncio.sleep(0)
        for b in publishers.values():
            assert await b.drain(timeout=max(300.0, PER_TOPIC * 0.5))
        published = time.monotonic() - started
        per_topic = Counter(topic for _, topic, _, _ in plan)
        # Done when no rejection arrived for 2 s (every service has worked through its queue).
        last, seen = time.monotonic(), 0
        while time.monotonic() - last < 2.0:
            await asyncio.sleep(0.2)
            now = sum(sum(c.values()) for c in rejected.values())
            if now != seen:
                seen, last = now, time.monotonic()
        took = time.monotonic() - started
        after = {name: rss_kib(p.pid) for name, p in procs.items()}
        alive = {name: p.alive() for name, p in procs.items()}
        log_growth = {name: p.log().count("\n") - logs_before[name]
                      for name, p in procs.items()}
        actuated = {pattern: w.drain() for pattern, w in acts.items()}
        moved = [m for m in relay.drain() if m.payload.closed] + [
            m for m in lock.drain() if m.payload.state.value != "unlocked"]
        answers = results.drain()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    subscribed = {name: sorted(c) for name, c in rejected.items()}
    print(f"\n{len(plan)} malformed payloads on {len(per_topic)} topics ({PER_TOPIC} each), "
          f"published in {published:.1f} s, all handled after {took:.1f} s")
    for name in envs:
        print(f"  {name}: {sum(rejected[name].values())} rejected on "
              f"{len(subscribed[name])} topics; RSS {before[name]} -> {after[name]} KiB; "
              f"log +{log_growth[name]} lines: "
              + " ".join(t.split(station + "/")[1] for t in subscribed[name]))
    assert all(alive.values()), alive
    for name, counts in rejected.items():
        for topic, got in counts.items():
            assert got == per_topic[topic], (name, topic, got, per_topic[topic])
    for name, expected in SUBSCRIBED.items():
        assert set(subscribed[name]) == {_topic(c, station, s) for c, s in expected}, name
    # The energy manager re-sends an unchanged limit every resend_s: 0 A, no session is running.
    refreshes = actuated.pop(ch.ENERGY_LIMIT.pattern)
    assert {m.payload.amps for m in refreshes} <= {0.0}
    assert not any(actuated.values()), {k: [m.payload for m in v][:3]
                                        for k, v in actuated.items() if v}
    assert not moved
    commands = per_topic[_topic(ch.COMMAND, station, None)]
    assert len(answers) == commands  # the contract: every command is answered...
    assert all(m.payload.status is CommandStatus.REJECTED for m in answers)  # ...and refused
    for name in envs:
        assert after[name] - before[name] < 20 * 1024, (name, before[name], after[name])
        # the RejectLog: at most 40 lines a minute one by one, and the counts once a minute
        assert log_growth[name] <= 50 * (1 + int(took // 60)) + 20, (name, log_growth[name])


def test_salvage_survives_deep_nesting() -> None:
    raw = b'{"request_id": "r1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _salvage(raw) == (None, None)


def test_every_plan_payload_is_refused_by_its_channel() -> None:
    plan = fuzz_plan("S1", seed=1)
    by_topic = {_topic(c, "S1", s): c for c in FUZZED
                for s in (sorted(c.writers) if "{service}" in c.pattern else [None])}
    for _, topic, raw, _ in plan[:2000]:
        with pytest.raises(PayloadError):
            by_topic[topic].decode(raw)
    assert {t for _, t, _, _ in plan} == set(by_topic)  # every channel of the contract
    assert len(plan) == PER_TOPIC * len(by_topic)
