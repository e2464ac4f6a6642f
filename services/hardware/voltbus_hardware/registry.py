"""Config `type:` -> typed driver factory; builds a station's drivers and wraps every failure.

Each factory takes its own config class and the fixed `Parts` of its connector (what is shared
with other devices: the GPIO pin factory, the RS-485 lines, the simulated EV, the EVSE board).
Parts are decided before the first driver is made and never change while a station is built.
Driver modules are imported only when a station uses them, so a simulated station needs no
serial port, GPIO chip or reader library. The all-simulated station is a station file too.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from voltbus_common.settings import ConfigError
from voltbus_hardware import config as c
from voltbus_hardware.drivers.base import Evse
from voltbus_hardware.drivers.simulated import (
    Clock,
    SimBay,
    SimBuzzer,
    SimConnector,
    SimEvse,
    SimLed,
    SimLock,
    SimMeter,
    SimPhaseSwitch,
    SimRelay,
    SimRfid,
)
from voltbus_hardware.station import ConnectorHardware, StationHardware

if TYPE_CHECKING:
    from voltbus_hardware.drivers.modbus_meter import ModbusLine

Factory = Callable[[Any, "Parts"], Any]  # each entry below takes its own config class


def make_pin_factory() -> Any:
    """The real GPIO pin factory (lgpio, then RPi.GPIO), or mock when GPIOZERO_PIN_FACTORY=mock."""
    wanted = os.environ.get("GPIOZERO_PIN_FACTORY", "")
    if wanted == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin
        return MockFactory(pin_class=MockPWMPin)
    errors = []
    for module, name in (("gpiozero.pins.lgpio", "LGPIOFactory"),
                         ("gpiozero.pins.rpigpio", "RPiGPIOFactory")):
        try:
            mod = __import__(module, fromlist=[name])
            return getattr(mod, name)()
        except Exception as exc:  # no GPIO chip here: try the next, then say why
            errors.append(f"{name}: {exc}")
    raise ConfigError("no GPIO available (" + "; ".join(errors) + "); on a PC set "
                      "GPIOZERO_PIN_FACTORY=mock or use type: sim")


@dataclass(frozen=True)
class Pins:
    """The station's GPIO pin factory, made when the first device asks (a PC has none)."""

    make: Callable[[], Any] = make_pin_factory
    given: Any = None

    @cached_property
    def factory(self) -> Any:
        """The pin factory (the one given, else made once)."""
        return self.given if self.given is not None else self.make()


@dataclass(frozen=True)
class Parts:
    """What the factories of one connector may use; fixed before its first driver is made."""

    pins: Pins
    lines: Mapping[str, ModbusLine]
    open_i2c: Callable[[int], Any] | None = None  # bus number -> smbus2.SMBus-like; None: SMBus
    sim: SimConnector | None = None  # the simulated EV behind this connector's sim devices
    evse: Evse | None = None  # this connector's EVSE board, for relay/meter type evse


def _sim(parts: Parts) -> SimConnector:
    assert parts.sim is not None  # made for every connector that has a sim device
    return parts.sim


def _openevse(cfg: c.OpenEvseConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.openevse_rapi import OpenEvse
    return OpenEvse.from_config(cfg)


def _smartevse(cfg: c.SmartEvseConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.smartevse import SmartEvse
    return SmartEvse.from_config(cfg, pin_factory=parts.pins.factory)


def _no_evse(cfg: c.NoEvseConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.plain import NoPilot
    return NoPilot()


def _gpio_relay(cfg: c.GpioRelayConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.gpio import GpioRelay
    return GpioRelay.from_config(cfg, pin_factory=parts.pins.factory)


def _evse_relay(cfg: c.EvseRelayConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.plain import EvseRelay
    return EvseRelay(parts.evse)


def _modbus_meter(cfg: c.ModbusMeterConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.modbus_meter import ModbusMeter
    return ModbusMeter.from_config(cfg, line=parts.lines[cfg.bus])


def _evse_meter(cfg: c.EvseMeterConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.openevse_rapi import OpenEvse, OpenEvseMeter
    if not isinstance(parts.evse, OpenEvse):  # the station file's check makes this impossible
        raise ValueError("meter type 'evse' needs evse type openevse")
    return OpenEvseMeter(parts.evse)


def _gpio_led(cfg: c.GpioLedConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.gpio import GpioLed
    return GpioLed.from_config(cfg, pin_factory=parts.pins.factory)


def _gpio_rgb_led(cfg: c.GpioRgbLedConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.gpio import GpioRgbLed
    return GpioRgbLed.from_config(cfg, pin_factory=parts.pins.factory)


def _gpio_lock(cfg: c.GpioMotorLockConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.gpio_lock import GpioMotorLock
    return GpioMotorLock.from_config(cfg, pin_factory=parts.pins.factory)


def _gpio_bay(cfg: c.GpioBayDetectorConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.gpio_bay import GpioBayDetector
    return GpioBayDetector.from_config(cfg, pin_factory=parts.pins.factory)


def _gpio_phase_switch(cfg: c.GpioPhaseSwitchConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.gpio_phases import GpioPhaseSwitch
    return GpioPhaseSwitch.from_config(cfg, pin_factory=parts.pins.factory)


def _smartevse_c2(cfg: c.SmartEvseC2Config, parts: Parts) -> Any:
    from voltbus_hardware.drivers.smartevse_c2 import SmartEvseC2
    return SmartEvseC2.from_config(cfg)


def _gpio_buzzer(cfg: c.GpioBuzzerConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.gpio import GpioBuzzer
    return GpioBuzzer.from_config(cfg, pin_factory=parts.pins.factory)


def _mfrc522(cfg: c.Mfrc522Config, parts: Parts) -> Any:
    from voltbus_hardware.drivers.rfid_mfrc522 import Mfrc522Reader
    factory = parts.pins.factory if cfg.reset_pin is not None else None
    return Mfrc522Reader.from_config(cfg, pin_factory=factory)


def _pn532(cfg: c.Pn532Config, parts: Parts) -> Any:
    from voltbus_hardware.drivers.rfid_pn532 import Pn532Reader
    return Pn532Reader.from_config(cfg, open_i2c=parts.open_i2c)


def _keyboard(cfg: c.KeyboardReaderConfig, parts: Parts) -> Any:
    from voltbus_hardware.drivers.rfid_keyboard import KeyboardReader
    return KeyboardReader.from_config(cfg)


def _sim_reader(cfg: c.SimReaderConfig, parts: Parts) -> Any:
    return SimRfid(cfg.name, cfg.card_type)


FACTORIES: dict[tuple[str, str], Factory] = {
    ("evse", "sim"): lambda cfg, parts: SimEvse(_sim(parts)),
    ("evse", "openevse"): _openevse,
    ("evse", "smartevse"): _smartevse,
    ("evse", "none"): _no_evse,
    ("relay", "sim"): lambda cfg, parts: SimRelay(_sim(parts)),
    ("relay", "gpio"): _gpio_relay,
    ("relay", "evse"): _evse_relay,
    ("meter", "sim"): lambda cfg, parts: SimMeter(_sim(parts)),
    ("meter", "modbus"): _modbus_meter,
    ("meter", "evse"): _evse_meter,
    ("lock", "sim"): lambda cfg, parts: SimLock(_sim(parts)),
    ("bay", "sim"): lambda cfg, parts: SimBay(_sim(parts)),
    ("bay", "gpio"): _gpio_bay,
    ("lock", "gpio_motor"): _gpio_lock,
    ("phase_switch", "sim"): lambda cfg, parts: SimPhaseSwitch(_sim(parts)),
    ("phase_switch", "gpio"): _gpio_phase_switch,
    ("phase_switch", "smartevse_c2"): _smartevse_c2,
    ("led", "sim"): lambda cfg, parts: SimLed(),
    ("led", "gpio"): _gpio_led,
    ("led", "gpio_rgb"): _gpio_rgb_led,
    ("buzzer", "sim"): lambda cfg, parts: SimBuzzer(),
    ("buzzer", "gpio"): _gpio_buzzer,
    ("rfid", "sim"): _sim_reader,
    ("rfid", "mfrc522"): _mfrc522,
    ("rfid", "pn532"): _pn532,
    ("rfid", "keyboard"): _keyboard,
}


def create(kind: str, cfg: Any, parts: Parts, where: str) -> Any:
    """One driver; ConfigError says which device, which type and why it failed."""
    factory = FACTORIES.get((kind, cfg.type))
    if factory is None:
        raise ConfigError(f"{where}: no {kind} driver of type {cfg.type!r}")
    try:
        return factory(cfg, parts)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot create {kind} type {cfg.type!r} ({where}): {exc}") from exc


def _lines(cfg: c.StationConfig) -> dict[str, ModbusLine]:
    """The RS-485 lines the meters name (made here; a port opens on its first request)."""
    names = sorted({conn.meter.bus for conn in cfg.connectors
                    if isinstance(conn.meter, c.ModbusMeterConfig)})
    if not names:
        return {}
    from voltbus_hardware.drivers.modbus_meter import ModbusLine
    return {name: ModbusLine.from_config(cfg.serial[name]) for name in names}


def _has_sim(conn: c.ConnectorConfig) -> bool:
    devices = (conn.evse, conn.relay, conn.meter, conn.led, conn.lock, conn.phase_switch,
               conn.bay)
    return any(isinstance(d, c.SimDevice) for d in devices)


def _connector(conn: c.ConnectorConfig, cid: int, where: str, parts: Parts) -> ConnectorHardware:
    evse = create("evse", conn.evse, parts, f"{where}.evse")
    parts = replace(parts, evse=evse)
    hw = ConnectorHardware(cid, evse, create("relay", conn.relay, parts, f"{where}.relay"),
                           max_current_a=conn.max_current_a)
    hw.meter = None if conn.meter is None else create("meter", conn.meter, parts,
                                                      f"{where}.meter")
    hw.led = None if conn.led is None else create("led", conn.led, parts, f"{where}.led")
    hw.lock = None if conn.lock is None else create("lock", conn.lock, parts, f"{where}.lock")
    hw.phase_switch = None if conn.phase_switch is None else create(
        "phase_switch", conn.phase_switch, parts, f"{where}.phase_switch")
    hw.lock_required = isinstance(conn.lock, c.GpioMotorLockConfig) and conn.lock.required_to_close
    hw.bay = None if conn.bay is None else create("bay", conn.bay, parts, f"{where}.bay")
    return hw


def build_station(cfg: c.StationConfig, station_id: str, *, clock: Clock = time.monotonic,
                  pin_factory: Any = None,
                  open_i2c: Callable[[int], Any] | None = None) -> StationHardware:
    """Every driver of the station file; on failure the ones already made are released."""
    station = StationHardware(station_id, {})
    lines: dict[str, ModbusLine] = {}
    try:
        lines = _lines(cfg)
        shared = Parts(Pins(given=pin_factory), lines, open_i2c)
        for n, (conn, cid) in enumerate(zip(cfg.connectors, cfg.connector_ids(), strict=True)):
            sim = (SimConnector.for_connector(station_id, cid, max_current_a=conn.max_current_a,
                                              clock=clock) if _has_sim(conn) else None)
            station.connectors[cid] = _connector(conn, cid, f"connectors[{n}]",
                                                 replace(shared, sim=sim))
        for n, reader in enumerate(cfg.rfid):
            station.readers.append(create("rfid", reader, shared, f"rfid[{n}]"))
        if cfg.buzzer is not None:
            station.buzzer = create("buzzer", cfg.buzzer, shared, "buzzer")
    except BaseException:
        station.close()
        for line in lines.values():
            with contextlib.suppress(Exception):
                line.close()
        raise
    station.resources.extend(lines.values())
    return station


def simulated_config(connectors: int, *, max_current_a: float = 32.0) -> c.StationConfig:
    """The all-simulated station: every device of every connector sim, one reader, a buzzer."""
    sim = {"type": "sim"}
    conn = {"max_current_a": max_current_a, "evse": sim, "relay": sim, "meter": sim, "led": sim,
            "lock": sim, "phase_switch": sim}
    return c.StationConfig.model_validate({"connectors": [conn] * connectors,
                                           "rfid": [{"type": "sim", "name": "sim"}],
                                           "buzzer": sim})


def simulated_station(station: str, connectors: int, *, max_current_a: float = 32.0,
                      clock: Clock = time.monotonic) -> StationHardware:
    """A station of `connectors` simulated connectors (what runs without a station file)."""
    return build_station(simulated_config(connectors, max_current_a=max_current_a), station,
                         clock=clock)
