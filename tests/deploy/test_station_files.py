"""The station files in deploy/stations and docs/install-pi.md: valid for the hardware service,
identical to each other, and naming register maps that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_compose import compose
from voltbus_hardware.config import ModbusMeterConfig, load_station_file, parse_station

REPO = Path(__file__).resolve().parents[2]
STATIONS = sorted((REPO / "deploy" / "stations").glob("*.yaml"))
DOC = (REPO / "docs" / "install-pi.md").read_text()
MODELS = REPO / "services/hardware/voltbus_hardware/drivers/meter_models"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC, re.S)


@pytest.mark.parametrize("path", STATIONS, ids=lambda p: p.name)
def test_station_file_is_valid(path: Path) -> None:
    station = load_station_file(path)
    for connector in station.connectors:
        if isinstance(connector.meter, ModbusMeterConfig):
            assert (MODELS / f"{connector.meter.model}.yaml").exists(), connector.meter.model


def test_docs_show_exactly_the_shipped_files() -> None:
    shown = [b for b in yaml_blocks() if "connectors:" in b]
    assert sorted(shown) == sorted(p.read_text() for p in STATIONS)
    for block in shown:
        parse_station(yaml.safe_load(block))


def test_docker_admin_override_in_the_docs_is_valid_compose(tmp_path: Path) -> None:
    override = next(b for b in yaml_blocks() if "VOLTBUS_API_DOCKER_ADMIN" in b)
    (tmp_path / "override.yaml").write_text(override)
    files = ("compose.yaml", str(tmp_path / "override.yaml"))
    result = compose(tmp_path, "config", "-q", files=files)
    assert result.returncode == 0, result.stderr
