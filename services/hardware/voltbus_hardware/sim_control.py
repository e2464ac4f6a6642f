"""The simulator's remote control: sim/* topics (from `voltbus sim` and tests) move the sim EVs."""

from __future__ import annotations

import logging
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import SimBay, SimEv, SimFault, SimPlug, SimTap
from voltbus_hardware.drivers.simulated import SimConnector, SimEvse, SimRfid
from voltbus_hardware.station import StationHardware

log = logging.getLogger(__name__)


class SimControl:
    """Applies sim/* commands to the simulated devices of one station."""

    def __init__(self, bus: Bus, station: StationHardware) -> None:
        self.bus = bus
        self.station = station

    def attach(self) -> None:
        """Subscribe to the sim channels; call before bus.run()."""
        self.bus.on(ch.SIM_PLUG, self._on_plug)
        self.bus.on(ch.SIM_EV, self._on_ev)
        self.bus.on(ch.SIM_FAULT, self._on_fault)
        self.bus.on(ch.SIM_TAP, self._on_tap)
        self.bus.on(ch.SIM_BAY, self._on_bay)

    def _sim(self, msg: Received[Any]) -> SimConnector | None:
        hw = self.station.connectors.get(msg.connector)
        if hw is None:
            self.bus.reject(msg.topic, f"unknown connector {msg.connector}: station "
                            f"{self.station.id} has {sorted(self.station.connectors)}")
            return None
        if not isinstance(hw.evse, SimEvse):
            self.bus.reject(msg.topic, f"connector {msg.connector} is real hardware, "
                            "not simulated")
            return None
        return hw.evse.sim

    async def _on_plug(self, msg: Received[SimPlug]) -> None:
        sim = self._sim(msg)
        if sim is not None and msg.payload is not None:
            log.info("sim: connector %s %s", msg.connector,
                     "plugged in" if msg.payload.plugged else "unplugged")
            sim.plug_in() if msg.payload.plugged else sim.unplug()

    async def _on_ev(self, msg: Received[SimEv]) -> None:
        sim = self._sim(msg)
        if sim is not None and msg.payload is not None:
            ev = msg.payload
            sim.set_car(max_current_a=ev.max_current_a, phases=ev.phases, full=ev.full)

    async def _on_fault(self, msg: Received[SimFault]) -> None:
        sim = self._sim(msg)
        if sim is not None and msg.payload is not None:
            log.info("sim: connector %s fault %s", msg.connector, msg.payload.code)
            sim.inject_fault(msg.payload.code, msg.payload.info)

    async def _on_bay(self, msg: Received[SimBay]) -> None:
        sim = self._sim(msg)
        if sim is None or msg.payload is None:
            return
        hw = self.station.connectors[msg.connector]
        if hw.bay is None:
            self.bus.reject(msg.topic, f"connector {msg.connector} has no bay detector "
                            "(bay: {type: sim} in the station file)")
            return
        log.info("sim: connector %s bay %s", msg.connector,
                 "occupied" if msg.payload.occupied else "free")
        sim.park(msg.payload.occupied)

    async def _on_tap(self, msg: Received[SimTap]) -> None:
        if msg.payload is None:
            return
        readers = [r for r in self.station.readers if isinstance(r, SimRfid)]
        chosen = next((r for r in readers if r.name == msg.payload.reader), None)
        if chosen is None and msg.payload.reader == "sim" and readers:
            chosen = readers[0]
        if chosen is None:
            self.bus.reject(msg.topic, f"no simulated reader named {msg.payload.reader!r} "
                            f"(have {[r.name for r in readers]})")
            return
        chosen.present_card(msg.payload.id_tag)
