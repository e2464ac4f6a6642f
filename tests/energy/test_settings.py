"""Settings: what cannot work is refused at start with a readable reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voltbus_energy.__main__ import build_grid, build_tariff
from voltbus_energy.settings import EnergySettings
from voltbus_energy.tariff.feed import FeedTariff
from voltbus_energy.tariff.tou import TouTariff


def test_a_fuse_above_the_contracts_range_is_refused_at_start() -> None:
    """SiteState.fuse_limit_a holds at most 100 A: a bigger fuse would fail every decision."""
    with pytest.raises(ValidationError, match="energy_fuse_a"):
        EnergySettings(energy_fuse_a=150.0)
    assert EnergySettings(energy_fuse_a=100.0).energy_fuse_a == 100.0


def test_tariff_and_grid_settings(tmp_path: object) -> None:
    tou, feeds = build_tariff(EnergySettings(energy_tariff="tou", energy_timezone="Europe/Vienna",
                                             energy_tou_windows="daily 00:00-06:00=0.2"))
    assert isinstance(tou, TouTariff)
    assert feeds == []
    with pytest.raises(ValueError, match="not a weekday"):
        build_tariff(EnergySettings(energy_tariff="tou", energy_tou_windows="xyz 1:00-2:00=1"))
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        build_tariff(EnergySettings(energy_tariff="tou", energy_timezone="Mars/Olympus"))
    with pytest.raises(ValueError, match="VOLTBUS_ENERGY_TARIFF_SOURCE"):
        build_tariff(EnergySettings(energy_tariff="feed"))
    fixed_co2, feeds = build_tariff(EnergySettings(energy_co2_source="/nonexistent.csv"))
    assert isinstance(fixed_co2, FeedTariff)
    assert [f.what for f in feeds] == ["CO2 feed"]
    with pytest.raises(ValueError, match="VOLTBUS_ENERGY_GRID_HOST"):
        build_grid(EnergySettings(energy_grid="sunspec"))
    with pytest.raises(ValueError, match="unknown grid meter model 'sdm999'"):
        build_grid(EnergySettings(energy_grid="modbus", energy_grid_model="sdm999"))
