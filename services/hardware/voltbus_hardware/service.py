"""Runs the controller of each station on its own bus connection, and stops them cleanly."""

from __future__ import annotations

import asyncio
import logging

from voltbus_common.bus import Bus
from voltbus_hardware.controller import ControllerConfig, StationController
from voltbus_hardware.settings import HardwareSettings
from voltbus_hardware.sim_control import SimControl
from voltbus_hardware.sim_registers import SimRegisterStore
from voltbus_hardware.station import StationHardware

log = logging.getLogger(__name__)


def controller_config(settings: HardwareSettings) -> ControllerConfig:
    """The controller's settings from the service's."""
    return ControllerConfig(
        meter_interval_s=settings.meter_interval_s, poll_interval_s=settings.poll_interval_s,
        overcurrent_margin_a=settings.overcurrent_margin_a,
        overcurrent_time_s=settings.overcurrent_time_s,
        gateway_loss_opens_relay=settings.gateway_loss_opens_relay,
        gateway_loss_grace_s=settings.gateway_loss_grace_s,
        gateway_loss_confirm_s=settings.gateway_loss_confirm_s,
        gateway_loss_relay_hold_s=settings.gateway_loss_relay_hold_s,
        switch_read_timeout_s=settings.switch_read_timeout_s)


async def serve_station(bus: Bus, station: StationHardware, config: ControllerConfig, *,
                        registers: SimRegisterStore | None = None) -> None:
    """Run one station until cancelled; on the way out open its relays, then say offline."""
    if registers is not None:
        registers.restore(station)
    controller = StationController(bus, station, config)
    controller.attach()
    SimControl(bus, station).attach()
    try:
        async with bus:  # leaving it flushes what shutdown() said, then says offline
            try:
                await controller.run()
            finally:
                await controller.shutdown()
    finally:
        if registers is not None:
            registers.save(station)
        station.close()


async def serve(settings: HardwareSettings, stations: list[StationHardware]) -> None:
    """Run every station in one process, each on its own bus connection."""
    config = controller_config(settings)
    registers = SimRegisterStore(settings.data_dir / "hardware" / "sim-registers.json")
    log.info("hardware: %d station(s), %d connector(s)", len(stations),
             sum(len(s.connectors) for s in stations))
    async with asyncio.TaskGroup() as group:
        for station in stations:
            bus = Bus(settings, station=station.id, service="hardware")
            group.create_task(serve_station(bus, station, config, registers=registers))
