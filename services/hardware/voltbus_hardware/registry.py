"""Config `type:` -> driver factory; builds a station's drivers and wraps every failure.

Driver modules are imported only when a station uses them, so a simulated station needs no
serial port, GPIO chip or reader library.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voltbus_common.settings import ConfigError
from voltbus_hardware import config as c
from voltbus_hardware.drivers.simulated import (
    Clock,
    SimBuzzer,
    SimConnector,
    SimEvse,
    SimLed,
    SimLock,
    SimMeter,
    SimRelay,
    SimRfid,
    initial_register_wh,
)
from voltbus_hardware.station import ConnectorHardware, StationHardware

Factory = Callable[[Any, "BuildContext"], Any]


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


@dataclass
class BuildContext:
    """What factories share while one station is built."""

    station: c.StationConfig | None
    station_id: str
    clock: Clock = time.monotonic
    pin_factory_maker: Callable[[], Any] = make_pin_factory
    open_i2c: Callable[[int], Any] | None = None  # bus number -> smbus2.SMBus-like; None: SMBus
    connector_id: int = 0
    max_current_a: float = 32.0
    evse: Any = None
    _pin_factory: Any = None
    _sims: dict[int, SimConnector] = field(default_factory=dict)
    _lines: dict[str, Any] = field(default_factory=dict)

    @property
    def pin_factory(self) -> Any:
        """The GPIO pin factory, made on first use."""
        if self._pin_factory is None:
            self._pin_factory = self.pin_factory_maker()
        return self._pin_factory

    def sim(self) -> SimConnector:
        """The simulated EV and charge point behind this connector's sim devices."""
        if self.connector_id not in self._sims:
            self._sims[self.connector_id] = SimConnector(
                energy_wh=initial_register_wh(self.station_id, self.connector_id),
                max_current_a=self.max_current_a, clock=self.clock)
        return self._sims[self.connector_id]

    def modbus_line(self, name: str) -> Any:
        """The shared RS-485 line called `name` under serial:."""
        if name not in self._lines:
            from voltbus_hardware.drivers.modbus_meter import ModbusLine
            assert self.station is not None
            self._lines[name] = ModbusLine.from_config(self.station.serial[name])
        return self._lines[name]



def _openevse(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.openevse_rapi import OpenEvse
    return OpenEvse.from_config(cfg)


def _smartevse(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.smartevse import SmartEvse
    return SmartEvse.from_config(cfg, pin_factory=ctx.pin_factory)


def _no_evse(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.plain import NoPilot
    return NoPilot()


def _gpio(name: str) -> Factory:
    def make(cfg: Any, ctx: BuildContext) -> Any:
        from voltbus_hardware.drivers import gpio
        return getattr(gpio, name).from_config(cfg, pin_factory=ctx.pin_factory)
    return make


def _gpio_lock(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.gpio_lock import GpioMotorLock
    return GpioMotorLock.from_config(cfg, pin_factory=ctx.pin_factory)


def _evse_relay(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.plain import EvseRelay
    return EvseRelay(ctx.evse)


def _modbus_meter(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.modbus_meter import ModbusMeter
    return ModbusMeter.from_config(cfg, line=ctx.modbus_line(cfg.bus))


def _evse_meter(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.openevse_rapi import OpenEvseMeter
    return OpenEvseMeter(ctx.evse)


def _reader(module: str, name: str) -> Factory:
    def make(cfg: Any, ctx: BuildContext) -> Any:
        mod = __import__(f"voltbus_hardware.drivers.{module}", fromlist=[name])
        return getattr(mod, name).from_config(cfg)
    return make


def _pn532(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.rfid_pn532 import Pn532Reader
    return Pn532Reader.from_config(cfg, open_i2c=ctx.open_i2c)


def _mfrc522(cfg: Any, ctx: BuildContext) -> Any:
    from voltbus_hardware.drivers.rfid_mfrc522 import Mfrc522Reader
    factory = ctx.pin_factory if cfg.reset_pin is not None else None
    return Mfrc522Reader.from_config(cfg, pin_factory=factory)


FACTORIES: dict[tuple[str, str], Factory] = {
    ("evse", "sim"): lambda cfg, ctx: SimEvse(ctx.sim()),
    ("evse", "openevse"): _openevse,
    ("evse", "smartevse"): _smartevse,
    ("evse", "none"): _no_evse,
    ("relay", "sim"): lambda cfg, ctx: SimRelay(ctx.sim()),
    ("relay", "gpio"): _gpio("GpioRelay"),
    ("relay", "evse"): _evse_relay,
    ("meter", "sim"): lambda cfg, ctx: SimMeter(ctx.sim()),
    ("meter", "modbus"): _modbus_meter,
    ("meter", "evse"): _evse_meter,
    ("lock", "sim"): lambda cfg, ctx: SimLock(ctx.sim()),
    ("lock", "gpio_motor"): _gpio_lock,
    ("led", "sim"): lambda cfg, ctx: SimLed(),
    ("led", "gpio"): _gpio("GpioLed"),
    ("led", "gpio_rgb"): _gpio("GpioRgbLed"),
    ("buzzer", "sim"): lambda cfg, ctx: SimBuzzer(),
    ("buzzer", "gpio"): _gpio("GpioBuzzer"),
    ("rfid", "sim"): lambda cfg, ctx: SimRfid(cfg.name),
    ("rfid", "mfrc522"): _mfrc522,
    ("rfid", "pn532"): _pn532,
    ("rfid", "keyboard"): _reader("rfid_keyboard", "KeyboardReader"),
}


def create(kind: str, cfg: Any, ctx: BuildContext, where: str) -> Any:
    """One driver; ConfigError says which device, which type and why it failed."""
    factory = FACTORIES.get((kind, cfg.type))
    if factory is None:
        raise ConfigError(f"{where}: no {kind} driver of type {cfg.type!r}")
    try:
        return factory(cfg, ctx)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot create {kind} type {cfg.type!r} ({where}): {exc}") from exc


def build_station(cfg: c.StationConfig, station_id: str, *, clock: Clock = time.monotonic,
                  pin_factory: Any = None,
                  open_i2c: Callable[[int], Any] | None = None) -> StationHardware:
    """Every driver of the station file; on failure the ones already made are released."""
    ctx = BuildContext(cfg, station_id, clock, open_i2c=open_i2c)
    if pin_factory is not None:
        ctx._pin_factory = pin_factory
    station = StationHardware(station_id, {})
    try:
        for n, (conn, cid) in enumerate(zip(cfg.connectors, cfg.connector_ids(), strict=True)):
            where = f"connectors[{n}]"
            ctx.connector_id, ctx.max_current_a = cid, conn.max_current_a
            ctx.evse = create("evse", conn.evse, ctx, f"{where}.evse")
            hw = ConnectorHardware(cid, ctx.evse, None, max_current_a=conn.max_current_a)  # type: ignore[arg-type]
            station.connectors[cid] = hw
            hw.relay = create("relay", conn.relay, ctx, f"{where}.relay")
            if conn.meter is not None:
                hw.meter = create("meter", conn.meter, ctx, f"{where}.meter")
            if conn.led is not None:
                hw.led = create("led", conn.led, ctx, f"{where}.led")
            if conn.lock is not None:
                hw.lock = create("lock", conn.lock, ctx, f"{where}.lock")
        for n, reader in enumerate(cfg.rfid):
            station.readers.append(create("rfid", reader, ctx, f"rfid[{n}]"))
        if cfg.buzzer is not None:
            station.buzzer = create("buzzer", cfg.buzzer, ctx, "buzzer")
    except BaseException:
        station.close()
        for line in ctx._lines.values():
            with contextlib.suppress(Exception):
                line.close()
        raise
    station.resources.extend(ctx._lines.values())
    return station
