"""Malformed payloads on every topic the hardware service subscribes to (issue 15, MQTT fuzz):
each is rejected on service/hardware/rejected, nothing actuates, the service keeps obeying.

With the EV plugged in (pilot B) a relay/set that slipped through as `closed: true` would close
the relay at once, and a lock/set would move the lock: both must stay put.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.channels import PayloadError
from voltbus_common.enums import LockState, PilotState
from voltbus_common.models import LockCommand, RelayCommand, SimPlug

PER_TOPIC = int(os.environ.get("VOLTBUS_FUZZ_PER_TOPIC", "300"))
TOPICS: list[tuple[ch.Channel[Any], dict[str, int], list[str]]] = [
    (ch.RELAY_SET, {"connector": 1}, ["closed", "request_id"]),
    (ch.LOCK_SET, {"connector": 1}, ["locked", "request_id"]),
    (ch.CURRENT_LIMIT_SET, {"connector": 1}, ["amps"]),
    (ch.PHASES_SET, {"connector": 1}, ["phases", "request_id"]),
    (ch.LED_SET, {"connector": 1}, ["color", "pattern", "intensity_pct", "blink_repeat"]),
    (ch.SIM_PLUG, {"connector": 1}, ["plugged"]),
    (ch.SIM_EV, {"connector": 1}, ["max_current_a", "phases", "full"]),
    (ch.SIM_FAULT, {"connector": 1}, ["code", "info"]),
    (ch.SIM_TAP, {}, ["id_tag", "reader"]),
]
CONFUSED: list[Any] = ["yes", "on", "true", "1", 1, 1.0, 0, -1, 1e308, "NaN", None, [], {},
                       [True], {"value": True}, "", " ", "\u0000", "A" * 5000, 2**70]


def _value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rnd.choice(CONFUSED)
    if kind == 1:
        return rnd.uniform(-1e6, 1e6)
    if kind == 2:
        return rnd.randrange(-(2**40), 2**40)
    if kind == 3:
        return "".join(chr(rnd.randrange(1, 0x2FFF)) for _ in range(rnd.randrange(30)))
    if kind == 4:
        return rnd.choice([True, False, None])
    if kind == 5:
        return [_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {rnd.choice(["closed", "locked", "x", ""]): _value(rnd, depth + 1)
            for _ in range(rnd.randrange(4))}


def malformed(rnd: random.Random, fields: list[str]) -> bytes:
    """One hostile payload: broken bytes, the wrong JSON type, or the right fields mistyped."""
    kind = rnd.randrange(6)
    if kind == 0:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
    if kind == 1:
        depth = rnd.choice([50, 1000, 20_000])
        return b"[" * depth + b"]" * rnd.choice([0, depth])
    if kind == 2:
        return json.dumps(_value(rnd)).encode()[: rnd.randrange(1, 400)]  # often truncated
    if kind == 3:
        return json.dumps(rnd.choice(CONFUSED)).encode()  # not an object
    if kind == 4:
        return json.dumps({"x": "y" * rnd.choice([10, 10, 10, 200_000])}).encode()  # field missing
    return json.dumps({f: (rnd.choice(CONFUSED) if rnd.random() < 0.7 else _value(rnd))
                       for f in rnd.sample(fields, rnd.randrange(1, len(fields) + 1))}).encode()


def invalid_payloads(seed: int) -> list[tuple[ch.Channel[Any], dict[str, int], bytes]]:
    """PER_TOPIC payloads per topic that the contract refuses (valid ones are skipped)."""
    rnd, out = random.Random(seed), []
    for channel, args, fields in TOPICS:
        made = 0
        while made < PER_TOPIC:
            raw = malformed(rnd, fields)
            try:
                channel.decode(raw)
            except PayloadError:
                out.append((channel, args, raw))
                made += 1
    # The type confusions that used to actuate, always among them (issue 15).
    for channel, name in ((ch.RELAY_SET, "closed"), (ch.LOCK_SET, "locked"),
                          (ch.SIM_PLUG, "plugged")):
        for value in CONFUSED:
            raw = json.dumps({name: value}).encode()
            try:
                channel.decode(raw)
            except PayloadError:
                out.append((channel, {"connector": 1}, raw))
            else:
                raise AssertionError(f"{channel.pattern} accepts {raw!r}")
    rnd.shuffle(out)
    return out


async def test_malformed_commands_never_actuate(mosquitto: Broker, station: str) -> None:
    payloads = invalid_payloads(seed=15)
    async with rig(mosquitto, station) as r:
        w = r.watches
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is PilotState.B)
        await w["lock"].until(lambda m: m.payload.state is LockState.UNLOCKED)
        car = (r.sim().car.max_current_a, r.sim().car.phases, r.sim().car.full)
        limit = r.sim().limit_a
        for n, (channel, args, raw) in enumerate(payloads):
            r.send_raw(channel, raw, **args)
            if n % 200 == 0:
                await asyncio.sleep(0)  # let the outbox flow
        async with asyncio.timeout(120):  # every one announced on service/hardware/rejected
            while len(w["rejected"].seen) < len(payloads):  # noqa: ASYNC110 (a count)
                await asyncio.sleep(0.1)
        rejected = w["rejected"].drain()
        await asyncio.sleep(0.3)
        assert not [m for m in w["relay"].drain() if m.payload.closed]
        assert not [m for m in w["lock"].drain() if m.payload.state is not LockState.UNLOCKED]
        still = (r.sim().relay_closed, r.sim().plugged, r.sim().fault, r.sim().limit_a,
                 (r.sim().car.max_current_a, r.sim().car.phases, r.sim().car.full),
                 (r.sim().supply_phases, r.sim().phase_switches))
        # ...and it still obeys.
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
        r.send(ch.RELAY_SET, RelayCommand(closed=False), connector=1)
        await w["relay"].until(lambda m: not m.payload.closed)
        r.send(ch.LOCK_SET, LockCommand(locked=True, request_id="after"), connector=1)
        locked = await w["lock"].until(lambda m: m.payload.request_id == "after")
    assert r.hw_bus.invalid_count == len(payloads) == PER_TOPIC * len(TOPICS) + 3 * len(CONFUSED)
    assert len(rejected) == len(payloads)
    assert all(m.payload.reason for m in rejected)
    assert still == (False, True, None, limit, car, (3, 0))
    assert locked.payload.state is LockState.LOCKED
