"""Hardware service settings (environment, prefix VOLTBUS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from voltbus_common.settings import BusSettings


class HardwareSettings(BusSettings):
    """What the hardware service reads from the environment."""

    connectors: int = Field(default=1, ge=1, le=1000,
                            description="simulated connectors per station (no station file)")
    meter_interval_s: float = Field(default=1.0, gt=0, le=3600)
    poll_interval_s: float = Field(default=0.25, gt=0, le=10,
                                   description="pilot and card readers, seconds")
    station_file: Path | None = Field(default=None, description="station YAML; none: simulated")
    gateway_loss_opens_relay: bool = True
    gateway_loss_grace_s: float = Field(
        default=20.0, ge=0, le=300,
        description="after a broker reconnect, how long a gateway `offline` waits for `online`")
    gateway_loss_confirm_s: float = Field(
        default=2.0, ge=0, le=60,
        description="a gateway `offline` opens the relays after this, unless the broker went too")
    gateway_loss_relay_hold_s: float = Field(
        default=60.0, ge=0, le=600,
        description="a closed relay stays closed this long after a gateway `offline` for a "
                    "restarted gateway to resume the transaction (0: open at once)")
    switch_read_timeout_s: float = Field(
        default=1.5, gt=0, le=10,
        description="after a relay opens, re-read the meter until it shows no power, this long")
    overcurrent_margin_a: float = Field(default=2.0, ge=0, le=50)
    overcurrent_time_s: float = Field(default=5.0, ge=0, le=600)
    sim_max_current_a: float = Field(default=32.0, ge=6, le=80,
                                     description="rating of each simulated connector, A")
