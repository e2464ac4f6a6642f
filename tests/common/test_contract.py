"""The topic contract: documented as coded, examples valid, topics round-trip, ACL per writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voltbus_common import channels as ch
from voltbus_common.broker import render_acl
from voltbus_common.channels import CHANNELS, DEFAULT_ROOT, PayloadError
from voltbus_common.docs import render_topics

REPO = Path(__file__).resolve().parents[2]


def test_committed_topic_docs_match_the_code() -> None:
    committed = (REPO / "docs" / "topics.md").read_text()
    assert committed == render_topics(), "docs/topics.md is stale: run `uv run voltbus docs`"


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.pattern)
def test_every_example_is_a_valid_payload(channel: ch.Channel) -> None:
    raw = (json.dumps(channel.example) if isinstance(channel.example, dict)
           else channel.example).encode()
    decoded = channel.decode(raw)
    assert decoded is not None
    assert channel.decode(channel.encode(decoded)) == decoded


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.pattern)
def test_topic_round_trip(channel: ch.Channel) -> None:
    args = {"station": "CP-7", "connector": 2, "service": "gateway"}
    topic = channel.topic(DEFAULT_ROOT, **args)
    matched = channel.match(DEFAULT_ROOT, topic)
    assert matched == {k: str(args[k]) for k in channel.fields}
    assert ch.channel_for(DEFAULT_ROOT, topic) == (channel, matched)


def test_topic_levels_cannot_be_injected() -> None:
    with pytest.raises(ValueError, match="not a valid topic level"):
        ch.PILOT.topic(DEFAULT_ROOT, station="CP1/#", connector=1)


@pytest.mark.parametrize(
    ("channel", "raw", "reason"),
    [
        (ch.METER, b'{"energy_wh": -1, "power_w": 0, "current_a": [0], "voltage_v": [230]}',
         "energy_wh: Input should be greater than or equal to 0"),
        (ch.METER, b'{"energy_wh": 1, "power_w": 0, "current_a": [0, 0], "voltage_v": [230]}',
         "current_a must hold 1 or 3 phase values"),
        (ch.METER, b'{"energy_wh": 1, "power_w": "NaN", "current_a": [0], "voltage_v": [230]}',
         "power_w"),
        (ch.PILOT, b'{"state": "X"}', "state: Input should be 'A', 'B'"),
        (ch.CURRENT_LIMIT_SET, b'{"amps": 500}', "amps: Input should be less than or equal to 100"),
        (ch.RFID, b'{"id_tag": "has space"}', "id_tag: String should match pattern"),
        (ch.RFID, b'{"id_tag": "' + b"1" * 37 + b'"}', "id_tag: String should have at most 36"),
        (ch.COMMAND, b'{"command": "start"}', "command 'start' needs field 'id_tag'"),
        (ch.COMMAND, b'{"command": "explode"}', "command: Input should be 'start'"),
        (ch.LED_SET, b'{"color": "red;rm", "pattern": "solid"}', "color: String should match"),
        (ch.SERVICE_STATUS, b"maybe", "expected one of online/offline"),
        (ch.RELAY_SET, b"", "empty payload"),
    ],
)
def test_invalid_payloads_say_what_is_wrong(channel: ch.Channel, raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        channel.decode(raw)
    assert reason in str(info.value)


def test_unknown_fields_are_ignored_and_empty_transaction_clears() -> None:
    reading = ch.PILOT.decode(b'{"state": "C", "ts": "2026-01-01T00:00:00+02:00", "new": 1}')
    assert reading is not None
    assert reading.ts.isoformat() == "2025-12-31T22:00:00+00:00"
    assert ch.TRANSACTION.decode(b"") is None
    assert ch.TRANSACTION.encode(None) == b""


def test_acl_lets_each_user_write_only_its_channels() -> None:
    acl = render_acl()
    sections = {block.splitlines()[0].split()[1]: block.splitlines()[1:]
                for block in acl.split("\n\n") if block.startswith("user ")}
    assert "topic write voltbus/v1/+/hw/+/relay/set" in sections["gateway"]
    assert "topic write voltbus/v1/+/hw/+/relay/set" not in sections["hardware"]
    assert "topic write voltbus/v1/+/service/hardware/status" in sections["hardware"]
    assert not any("service/gateway" in line for line in sections["hardware"])
    assert "topic write voltbus/v1/+/ocpp/+/command" in sections["homeassistant"]
    assert not any("hw/" in line and "write" in line for line in sections["api"])
