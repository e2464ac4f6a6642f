"""Simulated hardware: an EV on each connector, a meter that integrates energy, a card reader.

Every class implements the same protocol as the real drivers, so simulation is a config choice.
Physics are computed when read (energy integrates in closed form between events), so hundreds of
connectors cost nothing while idle: no task or timer per connector. Test hooks follow gpiozero's
mock style: `plug_in()`, `unplug()`, `set_ev(...)`, `inject_fault(...)`, `present_card(uid)`.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from voltbus_common.enums import CardType, ChargePointErrorCode, LedPattern, PilotState
from voltbus_common.models import MeterReading
from voltbus_hardware.drivers.base import DeviceUnavailable, EvseStatus, Rgb

Clock = Callable[[], float]
E = ChargePointErrorCode

# Faults a real EVSE answers with pilot F (EVSE not available) or E (pilot short / EVSE off).
PILOT_FAULTS: dict[ChargePointErrorCode, PilotState] = {
    E.GROUND_FAILURE: PilotState.F, E.HIGH_TEMPERATURE: PilotState.F,
    E.INTERNAL_ERROR: PilotState.F, E.OVER_VOLTAGE: PilotState.F, E.UNDER_VOLTAGE: PilotState.F,
    E.POWER_SWITCH_FAILURE: PilotState.F, E.EV_COMMUNICATION_ERROR: PilotState.E,
}
MIN_PWM_CURRENT_A = 6.0  # IEC 61851: the pilot cannot offer less than 6 A (0 pauses)


def initial_register_wh(station: str, connector: int) -> float:
    """A realistic, stable, non-zero starting register (0.5..4.5 MWh) per station and connector."""
    return 500_000.0 + zlib.crc32(f"{station}/{connector}".encode()) % 4_000_000


@dataclass
class SimCar:
    """How the simulated EV behaves."""

    max_current_a: float = 16.0
    phases: int = 3
    full: bool = False


@dataclass
class SimConnector:
    """One connector's physics: plug, relay, limit, EV, faults, and the energy register."""

    energy_wh: float
    max_current_a: float = 32.0
    voltage_v: float = 230.0
    clock: Clock = time.monotonic
    plugged: bool = False
    relay_closed: bool = False
    limit_a: float | None = None
    car: SimCar = field(default_factory=SimCar)
    fault: tuple[ChargePointErrorCode, str | None] | None = None
    forced_current_a: float | None = None
    supply_phases: int = 3  # the phase switch's position (L2/L3 connected or not)
    phase_switches: int = 0
    switched_under_load: int = 0  # phase switches while current flowed (must stay 0)
    bay_occupied: bool = False  # a vehicle in the bay (a connector with `bay: {type: sim}`)
    _last: float = 0.0
    _wake: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._last = self.clock()

    @classmethod
    def for_connector(cls, station: str, connector: int, *, max_current_a: float = 32.0,
                      clock: Clock = time.monotonic) -> SimConnector:
        """The simulated EV and charge point of one connector, with its stable register."""
        return cls(energy_wh=initial_register_wh(station, connector),
                   max_current_a=max_current_a, clock=clock)

    # --- physics ---------------------------------------------------------------------------

    def current_a(self) -> float:
        """Current per phase the EV draws now."""
        if not (self.plugged and self.relay_closed) or self._pilot_fault() is not None:
            return 0.0
        if self.forced_current_a is not None:
            return self.forced_current_a
        if self.car.full:
            return 0.0
        offered = self.max_current_a if self.limit_a is None else min(self.limit_a,
                                                                      self.max_current_a)
        if offered < MIN_PWM_CURRENT_A:
            return 0.0
        return min(offered, self.car.max_current_a)

    def phase_currents(self) -> list[float]:
        """Current on each of the meter's three phases (a 1-phase EV, or any EV on a supply
        switched to one phase, draws on L1 only)."""
        amps = self.current_a()
        three = self.car.phases == 3 and self.supply_phases == 3
        return [amps, amps, amps] if three else [amps, 0.0, 0.0]

    def power_w(self) -> float:
        """Active power drawn now."""
        return sum(self.phase_currents()) * self.voltage_v

    def pilot(self) -> PilotState:
        """The pilot state the EVSE would measure."""
        faulted = self._pilot_fault()
        if faulted is not None:
            return faulted
        if not self.plugged:
            return PilotState.A
        return PilotState.C if self.current_a() > 0 else PilotState.B

    def advance(self) -> None:
        """Integrate energy up to now at the power drawn since the last event."""
        now = self.clock()
        self.energy_wh += self.power_w() * max(0.0, now - self._last) / 3600.0
        self._last = now

    def _pilot_fault(self) -> PilotState | None:
        return None if self.fault is None else PILOT_FAULTS.get(self.fault[0])

    def _changed(self) -> None:
        if self._wake is not None:
            self._wake()

    # --- test hooks (gpiozero mock style) ------------------------------------------------

    def park(self, occupied: bool) -> None:
        """A vehicle drives into (True) or out of the bay."""
        self.bay_occupied = occupied
        self._changed()

    def plug_in(self) -> None:
        """The EV's cable goes in (pilot B)."""
        self.advance()
        self.plugged = True
        self._changed()

    def unplug(self) -> None:
        """The EV's cable comes out (pilot A)."""
        self.advance()
        self.plugged = False
        self._changed()

    def set_car(self, *, max_current_a: float | None = None, phases: int | None = None,
                full: bool | None = None) -> None:
        """Change the EV; unset arguments stay as they are."""
        self.advance()
        if max_current_a is not None:
            self.car.max_current_a = max_current_a
        if phases is not None:
            self.car.phases = phases
        if full is not None:
            self.car.full = full
        self._changed()

    def inject_fault(self, code: ChargePointErrorCode, info: str | None = None) -> None:
        """A hardware fault; NoError clears it."""
        self.advance()
        self.fault = None if code is E.NO_ERROR else (code, info)
        self._changed()

    def force_current(self, amps: float | None) -> None:
        """Make the EV draw this much whatever the limit (overcurrent tests); None ends it."""
        self.advance()
        self.forced_current_a = amps
        self._changed()


class SimEvse:
    """The EVSE side of a simulated connector: pilot, board faults, current limit."""

    wakes_on_every_change = True  # every test hook calls _changed()

    def __init__(self, sim: SimConnector) -> None:
        self.sim = sim

    async def status(self) -> EvseStatus:
        """Pilot state and the injected fault (meter faults belong to the meter)."""
        fault = self.sim.fault
        if fault is None or fault[0] is E.POWER_METER_FAILURE:
            return EvseStatus(self.sim.pilot())
        return EvseStatus(self.sim.pilot(), fault[0], fault[1])

    async def set_current_limit(self, amps: float) -> None:
        """The pilot PWM offer, A per phase."""
        self.sim.advance()
        self.sim.limit_a = amps
        self.sim._changed()

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Poll the connector at once after a simulated change."""
        self.sim._wake = wake


class SimRelay:
    """The simulated contactor."""

    def __init__(self, sim: SimConnector) -> None:
        self.sim = sim

    async def set_closed(self, closed: bool) -> bool:
        """Switch; the EV starts or stops drawing at once."""
        self.sim.advance()
        self.sim.relay_closed = closed
        self.sim._changed()
        return closed


class SimMeter:
    """A 3-phase meter on the simulated connector; fails like a real one on PowerMeterFailure."""

    def __init__(self, sim: SimConnector) -> None:
        self.sim = sim
        # Called with the register before a reading leaves (sim_registers.py keeps it on disk,
        # so a killed simulator never comes back with a register below one it published).
        self.on_read: Callable[[float], None] | None = None

    async def read(self) -> MeterReading:
        """The register integrated up to now, with power, current and voltage."""
        if self.sim.fault is not None and self.sim.fault[0] is E.POWER_METER_FAILURE:
            raise DeviceUnavailable(self.sim.fault[1] or "simulated meter does not answer",
                                    E.POWER_METER_FAILURE)
        self.sim.advance()
        volts = self.sim.voltage_v
        if self.on_read is not None:
            self.on_read(round(self.sim.energy_wh, 3))
        return MeterReading(energy_wh=round(self.sim.energy_wh, 3),
                            power_w=round(self.sim.power_w(), 1),
                            current_a=[round(a, 2) for a in self.sim.phase_currents()],
                            voltage_v=[volts, volts, volts])


class SimBay:
    """The simulated parking bay detector: what `park` last said."""

    wakes_on_every_change = True  # park() wakes the state loop

    def __init__(self, sim: SimConnector) -> None:
        self.sim = sim

    def occupied(self) -> bool:
        """A vehicle is in the bay."""
        return self.sim.bay_occupied


class SimLock:
    """The simulated cable lock: it moves in `travel_s`, and is jammed (the move fails) while
    ConnectorLockFailure is injected on the connector (sim/{connector}/fault)."""

    wakes_on_every_change = True  # its feedback moves only when the controller moves it

    def __init__(self, sim: SimConnector, *, travel_s: float = 0.05) -> None:
        self.sim, self.travel_s = sim, travel_s
        self.locked = False

    async def set_locked(self, locked: bool) -> None:
        """Move, unless jammed."""
        await asyncio.sleep(self.travel_s)
        if self.sim.fault is not None and self.sim.fault[0] is E.CONNECTOR_LOCK_FAILURE:
            raise DeviceUnavailable("lock jammed (simulated)", E.CONNECTOR_LOCK_FAILURE)
        self.locked = locked

    async def is_locked(self) -> bool:
        """The simulated feedback."""
        return self.locked


class SimPhaseSwitch:
    """The simulated L2/L3 contactor: the meter then shows current on 1 or 3 phases. It counts
    every switch, and each one made while current flowed (a real contactor would arc)."""

    def __init__(self, sim: SimConnector, *, travel_s: float = 0.02) -> None:
        self.sim, self.travel_s = sim, travel_s

    async def set_phases(self, phases: int) -> int:
        """Switch (a jammed contactor, PowerSwitchFailure injected, does not move)."""
        await asyncio.sleep(self.travel_s)
        sim = self.sim
        if sim.fault is not None and sim.fault[0] is E.POWER_SWITCH_FAILURE:
            raise DeviceUnavailable("phase contactor stuck (simulated)", E.POWER_SWITCH_FAILURE)
        sim.advance()
        if phases != sim.supply_phases:
            sim.phase_switches += 1
            if sim.current_a() > 0:
                sim.switched_under_load += 1
        sim.supply_phases = phases
        sim._changed()
        return sim.supply_phases

    async def phases(self) -> int:
        """The simulated position."""
        return self.sim.supply_phases


class SimLed:
    """Remembers what it was told to show."""

    def __init__(self) -> None:
        self.color: Rgb | None = None
        self.pattern: LedPattern = LedPattern.OFF

    async def show(self, color: Rgb, pattern: LedPattern) -> None:
        """Record the colour and pattern."""
        self.color, self.pattern = color, pattern


class SimBuzzer:
    """Counts beeps."""

    def __init__(self) -> None:
        self.beeps = 0

    async def beep(self, *, on_s: float = 0.1, times: int = 1) -> None:
        """Count them."""
        self.beeps += times


class SimRfid:
    """A card reader fed by `present_card`; each presentation is read once."""

    wakes_on_every_change = True  # present_card wakes the reader loop

    def __init__(self, name: str = "sim", card_type: CardType = CardType.ISO14443) -> None:
        self.name = name
        self.card_type = card_type
        self._cards: deque[str] = deque()
        self._wake: Callable[[], None] | None = None
        self.failing: str | None = None

    def present_card(self, uid: str) -> None:
        """A card is tapped on the reader."""
        self._cards.append(uid)
        if self._wake is not None:
            self._wake()

    async def read_tag(self) -> str | None:
        """The next tapped card, or None."""
        if self.failing is not None:
            raise DeviceUnavailable(self.failing, E.READER_FAILURE)
        return self._cards.popleft() if self._cards else None

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Read at once after a tap."""
        self._wake = wake
