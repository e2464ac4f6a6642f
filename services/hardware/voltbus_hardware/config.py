"""The station file: which driver for each device of each connector, validated with field paths.

```yaml
connectors:
  - evse: {type: openevse, port: /dev/ttyUSB0}
    relay: {type: evse}
    meter: {type: modbus, model: eastron_sdm630, bus: rs485, address: 1}
```
Errors name the field the way the file reads: `connectors[1].meter.address: must be 1..247`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from voltbus_common.enums import CardType
from voltbus_common.settings import ConfigError


def _range(lo: float, hi: float) -> AfterValidator:
    def check(value: float) -> float:
        if not lo <= value <= hi:
            raise ValueError(f"must be {lo:g}..{hi:g}")
        return value
    return AfterValidator(check)


Pin = Annotated[int, _range(0, 53)]
ModbusAddress = Annotated[int, _range(1, 247)]
Amps = Annotated[float, _range(6, 80)]


class Device(BaseModel):
    """Base of every device entry: unknown keys are mistakes, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SimDevice(Device):
    """The simulator plays this device."""

    type: Literal["sim"]


class SerialLine(Device):
    """A serial port, shared by the devices that name it (several meters on one RS-485 bus)."""

    port: str
    baudrate: Annotated[int, _range(1200, 921600)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    timeout_s: Annotated[float, _range(0.05, 10)] = 0.5


# --- EVSE ----------------------------------------------------------------------------------------

class OpenEvseConfig(Device):
    """OpenEVSE board over RAPI (serial)."""

    type: Literal["openevse"]
    port: str
    baudrate: Annotated[int, _range(1200, 921600)] = 115200
    timeout_s: Annotated[float, _range(0.05, 10)] = 1.0


class SmartEvseConfig(Device):
    """SmartEVSE as Oppleo wires it: an enable pin, and the status LED read back by PWM."""

    type: Literal["smartevse"]
    enable_pin: Pin
    status_pin: Pin
    enable_active_high: bool = True


class NoEvseConfig(Device):
    """A socket with no pilot (ChargePi's Schuko outlets): always treated as plugged in (B)."""

    type: Literal["none"]


EvseConfig = Annotated[SimDevice | OpenEvseConfig | SmartEvseConfig | NoEvseConfig,
                       Field(discriminator="type")]

# --- relay, meter, LED, buzzer -------------------------------------------------------------------


class GpioRelayConfig(Device):
    """A relay module on a GPIO pin."""

    type: Literal["gpio"]
    pin: Pin
    active_high: bool = True


class EvseRelayConfig(Device):
    """The EVSE board switches (OpenEVSE $FE/$FS, SmartEVSE enable pin)."""

    type: Literal["evse"]


RelayConfig = Annotated[SimDevice | GpioRelayConfig | EvseRelayConfig, Field(discriminator="type")]


class ModbusMeterConfig(Device):
    """A Modbus RTU meter: a model (bundled name or a register-map file) at an address."""

    type: Literal["modbus"]
    model: str = Field(description="eastron_sdm630, eastron_sdm120, eastron_sdm72d, abb_b23, "
                                   "or a path to a register-map YAML")
    bus: str = Field(description="name of an entry under serial:")
    address: ModbusAddress = 1


class EvseMeterConfig(Device):
    """The EVSE board measures (OpenEVSE $GG/$GU)."""

    type: Literal["evse"]


MeterConfig = Annotated[SimDevice | ModbusMeterConfig | EvseMeterConfig,
                        Field(discriminator="type")]


class GpioLedConfig(Device):
    """A single-colour LED on one pin (colour is ignored; off/black switches it off)."""

    type: Literal["gpio"]
    pin: Pin


class GpioRgbLedConfig(Device):
    """An RGB LED on three PWM pins."""

    type: Literal["gpio_rgb"]
    red: Pin
    green: Pin
    blue: Pin
    common_anode: bool = False


LedConfig = Annotated[SimDevice | GpioLedConfig | GpioRgbLedConfig, Field(discriminator="type")]


class GpioMotorLockConfig(Device):
    """A motor cable lock: lock and unlock motor pins (H-bridge) and a feedback switch."""

    type: Literal["gpio_motor"]
    lock_pin: Pin
    unlock_pin: Pin
    feedback_pin: Pin
    motor_active_high: bool = True
    feedback_pull_up: bool = Field(default=True, description="switch to GND; False: to 3.3 V")
    locked_when_active: bool = Field(default=True,
                                     description="the switch closes when the pin is home")
    pulse_s: Annotated[float, _range(0.05, 5)] = 0.6
    timeout_s: Annotated[float, _range(0.1, 10)] = 1.5
    required_to_close: bool = Field(
        default=True, description="the relay closes only while the lock confirms locked "
                                  "(IEC 61851-1 socket-outlets); false: lock and relay apart")

    @model_validator(mode="after")
    def _three_pins(self) -> GpioMotorLockConfig:
        if len({self.lock_pin, self.unlock_pin, self.feedback_pin}) != 3:
            raise ValueError("lock_pin, unlock_pin and feedback_pin must be three pins")
        return self


LockConfig = Annotated[SimDevice | GpioMotorLockConfig, Field(discriminator="type")]


class GpioBayDetectorConfig(Device):
    """A parking bay detector with a switching output on a GPIO pin: an inductive loop
    detector's relay or an ultrasonic sensor's output (through an optocoupler or a divider to
    3.3 V)."""

    type: Literal["gpio"]
    pin: Pin
    pull_up: bool = Field(default=True, description="output to GND (open collector, relay "
                                                    "contact); False: drives 3.3 V")
    occupied_when_active: bool = Field(default=True,
                                       description="the output is on while a vehicle is there")
    bounce_s: Annotated[float, _range(0, 10)] = Field(
        default=1.0, description="a change counts once it held this long (a person walking "
                                 "past an ultrasonic sensor, a loop's flicker)")


BayConfig = Annotated[SimDevice | GpioBayDetectorConfig, Field(discriminator="type")]


class GpioPhaseSwitchConfig(Device):
    """A contactor on L2/L3 driven from a GPIO pin (through a relay module), for 1p/3p
    switching; optionally its auxiliary contact on an input pin as feedback."""

    type: Literal["gpio"]
    pin: Pin
    active_high: bool = True
    three_phase_when_active: bool = Field(
        default=True, description="the energised contactor connects L2/L3 (3 phases); false: "
                                  "a normally-closed contactor that opens L2/L3 when energised")
    feedback_pin: Pin | None = Field(default=None,
                                     description="the contactor's auxiliary contact (NO)")
    feedback_pull_up: bool = Field(default=True, description="contact to GND; False: to 3.3 V")
    settle_s: Annotated[float, _range(0.01, 2)] = 0.1
    timeout_s: Annotated[float, _range(0.05, 10)] = 1.0

    @model_validator(mode="after")
    def _two_pins(self) -> GpioPhaseSwitchConfig:
        if self.feedback_pin == self.pin:
            raise ValueError("pin and feedback_pin must be two pins")
        return self


class SmartEvseC2Config(Device):
    """A SmartEVSE v3's own second contactor output (C2, on L2/L3), switched through the
    board's REST API (`enable_C2`): 'Always On' is 3 phases, 'Always Off' 1 phase."""

    type: Literal["smartevse_c2"]
    url: str = Field(description="the SmartEVSE's web server, e.g. http://smartevse-1234.local")
    timeout_s: Annotated[float, _range(0.2, 30)] = Field(
        default=3.0, description="per HTTP request, and for the board to confirm a switch")

    @model_validator(mode="after")
    def _http_url(self) -> SmartEvseC2Config:
        from urllib.parse import urlsplit
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host[:port], not {self.url!r}")
        return self


PhaseSwitchConfig = Annotated[SimDevice | GpioPhaseSwitchConfig | SmartEvseC2Config,
                              Field(discriminator="type")]


class GpioBuzzerConfig(Device):
    """An active buzzer on a GPIO pin."""

    type: Literal["gpio"]
    pin: Pin


BuzzerConfig = Annotated[SimDevice | GpioBuzzerConfig, Field(discriminator="type")]

# --- card readers --------------------------------------------------------------------------------


class SimReaderConfig(Device):
    """A simulated reader fed by sim/rfid."""

    type: Literal["sim"]
    name: str = "sim"
    card_type: CardType = Field(default=CardType.ISO14443,
                                description="what its cards are sent as (ISO15693: vicinity)")


class Mfrc522Config(Device):
    """MFRC522 on SPI."""

    type: Literal["mfrc522"]
    name: str = "mfrc522"
    spi_bus: Annotated[int, _range(0, 6)] = 0
    spi_device: Annotated[int, _range(0, 2)] = 0
    reset_pin: Pin | None = 25


class Pn532Config(Device):
    """PN532 on I2C or UART."""

    type: Literal["pn532"]
    name: str = "pn532"
    interface: Literal["i2c", "uart"] = "i2c"
    i2c_bus: Annotated[int, _range(0, 20)] = 1
    i2c_address: Annotated[int, _range(0x03, 0x77)] = 0x24
    port: str | None = None
    baudrate: Annotated[int, _range(9600, 921600)] = 115200

    @model_validator(mode="after")
    def _port_for_uart(self) -> Pn532Config:
        if self.interface == "uart" and not self.port:
            raise ValueError("port: needed when interface is uart")
        return self


class KeyboardReaderConfig(Device):
    """A USB keyboard-wedge reader (evdev input device)."""

    type: Literal["keyboard"]
    name: str = "usb"
    device: str = Field(description="/dev/input/by-id/... of the reader")
    format: Literal["hex", "decimal"] = "hex"
    card_type: CardType = Field(
        default=CardType.ISO14443, description="the cards it reads: ISO14443 (13.56 MHz "
        "proximity, Mifare) or ISO15693 (vicinity cards); sent so in OCPP 2.0.1")


ReaderConfig = Annotated[SimReaderConfig | Mfrc522Config | Pn532Config | KeyboardReaderConfig,
                         Field(discriminator="type")]

# --- the station ---------------------------------------------------------------------------------


class ConnectorConfig(Device):
    """One connector: its devices, and what its wiring is rated for."""

    id: Annotated[int, _range(1, 1000)] | None = None
    max_current_a: Amps = 16.0
    evse: EvseConfig
    relay: RelayConfig
    meter: MeterConfig | None = None
    led: LedConfig | None = None
    lock: LockConfig | None = None
    phase_switch: PhaseSwitchConfig | None = None
    bay: BayConfig | None = None


class StationConfig(Device):
    """The whole station file."""

    id: str | None = Field(default=None, description="must match VOLTBUS_STATIONS when given")
    serial: dict[str, SerialLine] = Field(default_factory=dict)
    connectors: list[ConnectorConfig] = Field(min_length=1)
    rfid: list[ReaderConfig] = Field(default_factory=list)
    buzzer: BuzzerConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StationConfig:
        ids = self.connector_ids()
        if len(set(ids)) != len(ids):
            raise ValueError(f"connectors: ids must be unique, got {ids}")
        for n, c in enumerate(self.connectors):
            if isinstance(c.meter, ModbusMeterConfig) and c.meter.bus not in self.serial:
                raise ValueError(f"connectors[{n}].meter.bus: {c.meter.bus!r} is not under "
                                 f"serial: (have {sorted(self.serial)})")
            needs_board = isinstance(c.relay, EvseRelayConfig) or isinstance(c.meter,
                                                                              EvseMeterConfig)
            if needs_board and isinstance(c.evse, SimDevice | NoEvseConfig):
                raise ValueError(f"connectors[{n}]: relay/meter type 'evse' needs an EVSE board "
                                 f"(openevse or smartevse), not {c.evse.type!r}")
            if isinstance(c.meter, EvseMeterConfig) and not isinstance(c.evse, OpenEvseConfig):
                raise ValueError(f"connectors[{n}].meter: type 'evse' needs evse type openevse")
        names = [r.name for r in self.rfid]
        if len(set(names)) != len(names):
            raise ValueError(f"rfid: reader names must be unique, got {names}")
        return self

    def connector_ids(self) -> list[int]:
        """Each connector's id: given, or its position from 1."""
        return [c.id or n + 1 for n, c in enumerate(self.connectors)]


def _path(loc: tuple[int | str, ...], data: Any) -> str:
    """`connectors[1].meter.address` from pydantic's loc, dropping the union's `type` tags."""
    out, node = "", data
    for part in loc:
        if isinstance(node, dict) and part not in node and part == node.get("type"):
            continue  # pydantic's discriminator level: not in the file
        if isinstance(part, str) and part.startswith("function-"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def parse_station(data: Any, *, source: str = "station file") -> StationConfig:
    """Validate a parsed station file; ConfigError lists every problem with its field path."""
    try:
        return StationConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            where = _path(tuple(err["loc"]), data)
            lines.append(f"{where}: {msg}" if where else msg)
        raise ConfigError(f"{source}: " + "; ".join(lines)) from None


def load_station_file(path: Path) -> StationConfig:
    """Read and validate a station YAML file."""
    import yaml  # only with a station file (the simulated default has none)

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"VOLTBUS_STATION_FILE: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_station(data, source=str(path))
