"""The simulated meters' registers survive restarts, as a real meter's do.

Without this a restarted simulator would start its registers again at the initial value, and a
session running across the restart would end with meterStop below meterStart. Saved at a clean
stop, and also before each reading that moved the register leaves the simulated meter: a
simulator killed with SIGKILL comes back with the register it published last, never below it
(before, the dev central system saw a sub-Wh `meter-register-decreased` in test_resync).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from voltbus_hardware.drivers.simulated import SimEvse, SimMeter
from voltbus_hardware.station import StationHardware

log = logging.getLogger(__name__)


class SimRegisterStore:
    """`{data_dir}/hardware/sim-registers.json`: "station/connector" -> Wh."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: dict[str, float] = {}  # what the file holds for each register

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("%s unreadable (%s): simulated registers start afresh", self.path, exc)
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}

    def restore(self, station: StationHardware) -> None:
        """Put saved registers back into the station's simulated connectors."""
        saved = self._load()
        for n, hw in station.connectors.items():
            value = saved.get(f"{station.id}/{n}")
            if isinstance(hw.evse, SimEvse) and value is not None:
                hw.evse.sim.energy_wh = max(value, 0.0)
            if isinstance(hw.meter, SimMeter):
                hw.meter.on_read = self._keeper(f"{station.id}/{n}")

    def _keeper(self, key: str) -> Callable[[float], None]:
        def keep(wh: float) -> None:
            if wh > self._saved.get(key, -1.0):
                self._write({key: wh})
        return keep

    def save(self, station: StationHardware) -> None:
        """Write this station's simulated registers (atomically), keeping other stations'."""
        values: dict[str, float] = {}
        for n, hw in station.connectors.items():
            if isinstance(hw.evse, SimEvse):
                hw.evse.sim.advance()
                values[f"{station.id}/{n}"] = round(hw.evse.sim.energy_wh, 3)
        self._write(values)

    def _write(self, values: dict[str, float]) -> None:
        """Update these registers in the file (atomically), keeping the others."""
        data = {**self._load(), **values}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=0, sort_keys=True))
            tmp.replace(self.path)
            self._saved.update(values)
        except OSError as exc:
            log.warning("cannot save simulated registers to %s: %s", self.path, exc)
