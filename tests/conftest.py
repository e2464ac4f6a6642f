"""Shared fixtures: real Mosquitto (tests/fixtures/mosquitto.py) and a tripwire for hidden errors.

The tripwire fails a test that logged an ERROR it did not declare with
`@pytest.mark.expected_errors`, so a swallowed exception cannot pass unseen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

# Every module in tests/fixtures is a plugin: one module per real peer (broker, database, CSMS...).
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)


@pytest.fixture(autouse=True)
def _error_tripwire(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> object:
    caplog.set_level(logging.INFO)
    yield
    if request.node.get_closest_marker("expected_errors"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail("unexpected ERROR logged: " + "; ".join(
            f"{r.name}: {r.getMessage()}" for r in errors[:5]), pytrace=False)
