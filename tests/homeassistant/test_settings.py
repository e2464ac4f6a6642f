"""HaDiscoverySettings: the web page link on the HA device, as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.homeassistant import ha_schema
from voltbus_common.homeassistant.settings import DEFAULT_PUBLIC_URL, HaDiscoverySettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "homeassistant.md"


def documented_default(variable: str) -> str:
    """The default column of the settings table in docs/homeassistant.md."""
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == f"`{variable}`":
            return cells[1].strip("`")
    raise AssertionError(f"{variable} is not in the settings table")


def test_public_url_default_is_the_documented_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: the docs gave a default the code did not have, so outside compose the HA
    device had no link to the page."""
    monkeypatch.delenv("VOLTBUS_PUBLIC_URL", raising=False)
    assert HaDiscoverySettings().public_url == DEFAULT_PUBLIC_URL
    assert documented_default("VOLTBUS_PUBLIC_URL") == DEFAULT_PUBLIC_URL
    assert ha_schema.check_url(DEFAULT_PUBLIC_URL) == []
    # Compose serves the page over HTTPS and sets its own default; that one is documented too.
    compose = (DOCS.parents[1] / "compose.yaml").read_text()
    found = re.search(r"VOLTBUS_PUBLIC_URL: \$\{VOLTBUS_PUBLIC_URL:-(\S+)\}", compose)
    assert found is not None
    assert f"`{found.group(1)}`" in DOCS.read_text()


@pytest.mark.parametrize(("value", "expected"), [
    ("https://charger.example.org/voltbus/", "https://charger.example.org/voltbus/"),
    ("", None),  # no link
    ("  ", None),
])
def test_public_url_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str,
                                         expected: str | None) -> None:
    monkeypatch.setenv("VOLTBUS_PUBLIC_URL", value)
    assert HaDiscoverySettings().public_url == expected


@pytest.mark.parametrize("value", ["voltbus.local:8080", "ftp://voltbus.local/", "http://"])
def test_a_url_ha_would_reject_stops_start_up(monkeypatch: pytest.MonkeyPatch,
                                              value: str) -> None:
    """HA drops the whole device for a configuration_url it cannot parse: refuse it here."""
    monkeypatch.setenv("VOLTBUS_PUBLIC_URL", value)
    with pytest.raises(ValidationError, match="VOLTBUS_PUBLIC_URL must be an http"):
        HaDiscoverySettings()
