"""The simulated meters' registers survive restarts, as a real meter's do.

Without this a restarted simulator would start its registers again at the initial value, and a
session running across the restart would end with meterStop below meterStart.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from voltbus_hardware.drivers.simulated import SimEvse
from voltbus_hardware.station import StationHardware

log = logging.getLogger(__name__)


class SimRegisterStore:
    """`{data_dir}/hardware/sim-registers.json`: "station/connector" -> Wh."""

    def __init__(self, path: Path) -> None:
        self.path = path

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

    def save(self, station: StationHardware) -> None:
        """Write this station's simulated registers (atomically), keeping other stations'."""
        data = self._load()
        for n, hw in station.connectors.items():
            if isinstance(hw.evse, SimEvse):
                hw.evse.sim.advance()
                data[f"{station.id}/{n}"] = round(hw.evse.sim.energy_wh, 3)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=0, sort_keys=True))
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("cannot save simulated registers to %s: %s", self.path, exc)
