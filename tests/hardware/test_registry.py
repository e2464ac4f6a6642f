"""The registry (issue 11): typed factories over fixed parts; the simulator is a station file."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest

from voltbus_hardware import config as c
from voltbus_hardware.drivers.simulated import (
    SimBuzzer,
    SimEvse,
    SimLed,
    SimLock,
    SimMeter,
    SimRelay,
    SimRfid,
    initial_register_wh,
)
from voltbus_hardware.registry import FACTORIES, Parts, Pins, build_station, simulated_station


def test_the_simulated_station_is_every_device_sim_on_one_ev_per_connector() -> None:
    station = simulated_station("CP7", 3, max_current_a=20)
    assert sorted(station.connectors) == [1, 2, 3]
    for cid, hw in station.connectors.items():
        kinds = (hw.evse, hw.relay, hw.meter, hw.led, hw.lock)
        assert [type(d) for d in kinds] == [SimEvse, SimRelay, SimMeter, SimLed, SimLock]
        assert isinstance(hw.evse, SimEvse)
        assert isinstance(hw.relay, SimRelay)
        assert isinstance(hw.meter, SimMeter)
        assert isinstance(hw.lock, SimLock)
        assert hw.evse.sim is hw.relay.sim is hw.meter.sim is hw.lock.sim
        assert hw.evse.sim.energy_wh == initial_register_wh("CP7", cid)  # same as before
        assert hw.max_current_a == hw.evse.sim.max_current_a == 20
    sims = {id(hw.evse.sim) for hw in station.connectors.values()}  # type: ignore[attr-defined]
    assert len(sims) == 3
    assert [type(r) for r in station.readers] == [SimRfid]
    assert station.readers[0].name == "sim"
    assert isinstance(station.buzzer, SimBuzzer)


def test_a_sim_only_station_never_asks_for_gpio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)  # making one would fail here
    simulated_station("CP1", 2)


def test_parts_cannot_change_while_a_station_is_built() -> None:
    parts = Parts(Pins(), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.evse = object()  # type: ignore[misc]
    made = []
    pins = Pins(make=lambda: made.append(1) or "factory")
    assert (pins.factory, pins.factory, made) == ("factory", "factory", [1])  # made once


@pytest.mark.parametrize(("key", "factory"), sorted(FACTORIES.items(), key=lambda kv: kv[0]),
                         ids=lambda v: "-".join(v) if isinstance(v, tuple) else "")
def test_each_factory_is_typed_by_its_config_class(key: tuple[str, str], factory: object) -> None:
    if getattr(factory, "__name__", "") == "<lambda>":
        assert key[1] == "sim"  # only the simulator's one-liners
        return
    hints = typing.get_type_hints(factory, {"c": c, "Parts": Parts, "Any": typing.Any})
    cfg_type = hints[next(iter(inspect.signature(factory).parameters))]  # type: ignore[arg-type]
    assert issubclass(cfg_type, c.Device)
    assert cfg_type.model_fields["type"].annotation == typing.Literal[key[1]]


def test_a_shared_rs485_line_is_one_object_for_its_meters() -> None:
    cfg = c.StationConfig.model_validate({
        "serial": {"rs485": {"port": "/dev/ttyNOPE9"}},
        "connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                        "meter": {"type": "modbus", "model": "eastron_sdm120", "bus": "rs485",
                                  "address": a}} for a in (1, 2)]})
    station = build_station(cfg, "CP1")
    lines = {id(hw.meter.line) for hw in station.connectors.values()}  # type: ignore[union-attr]
    assert len(lines) == 1
    assert len(station.resources) == 1  # closed with the station
    station.close()
