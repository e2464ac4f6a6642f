"""The charge point's configuration as the model reads it: typed, with units, version-neutral.

Each protocol maps its own keys onto these fields (OCPP 1.6 configuration keys in
`protocol/v16/config_store.py`; 2.0.1 device-model variables later), so the model never reads a
key name. Values are read at each use: a central system may change them at any time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from voltbus_ocpp.model.results import Measurand, TxStart


class ChargePointConfig(Protocol):
    """What the model needs to know (durations already times the test time scale)."""

    @property
    def local_list_enabled(self) -> bool:
        """The local authorisation list is consulted."""
        ...

    @property
    def auth_cache_enabled(self) -> bool:
        """The authorisation cache is consulted and filled."""
        ...

    @property
    def local_pre_authorize(self) -> bool:
        """A known valid id token starts at once, without asking the central system."""
        ...

    @property
    def local_authorize_offline(self) -> bool:
        """Offline, a known valid id token may start."""
        ...

    @property
    def offline_tx_for_unknown_id(self) -> bool:
        """Offline, an unknown id token may start."""
        ...

    @property
    def authorize_remote_start(self) -> bool:
        """A remote start is authorised like a card tap first."""
        ...

    @property
    def id_token_max_length(self) -> int:
        """The longest id token the protocol carries (1.6 idTag: 20; 2.0.1 idToken: 36)."""
        ...

    @property
    def id_token_types(self) -> bool:
        """The protocol tells token types apart (2.0.1); without (1.6) every card is ISO14443,
        so a vicinity card matches its local-list and cache entries by value as before."""
        ...

    @property
    def blink_repeat(self) -> int:
        """How often the LED blinks for a blink pattern."""
        ...

    @property
    def light_intensity_pct(self) -> int:
        """LED brightness in %."""
        ...

    @property
    def sample_interval_s(self) -> float:
        """Periodic meter values during a transaction, s (0: none)."""
        ...

    @property
    def clock_aligned_interval_s(self) -> int:
        """Clock-aligned meter values, s since midnight UTC (0: none); never time-scaled."""
        ...

    @property
    def connection_timeout_s(self) -> float:
        """How long an authorised id token waits for the EV to be plugged in, s."""
        ...

    @property
    def tx_start_points(self) -> frozenset[TxStart]:
        """Where a transaction starts (the first one reached; POWER_PATH_CLOSED alone: once
        authorised and plugged in, as OCPP 1.6 always does)."""
        ...

    @property
    def stop_on_ev_disconnect(self) -> bool:
        """Unplugging the EV ends its transaction."""
        ...

    @property
    def stop_on_bay_vacated(self) -> bool:
        """A transaction ends when the bay detector no longer sees the vehicle."""
        ...

    @property
    def stop_on_transfer_end(self) -> bool:
        """A transaction ends when its energy transfer, once begun, ends (the EV stops drawing,
        the EVSE stops offering, the EV leaves)."""
        ...

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        """A transaction ended by unplugging the EV unlocks the cable at the charge point (else
        it stays locked until its id tag is presented)."""
        ...

    @property
    def stop_on_invalid_id(self) -> bool:
        """A start the central system did not accept stops at once."""
        ...

    @property
    def max_energy_on_invalid_id_wh(self) -> int:
        """Otherwise, the energy it may still deliver, Wh."""
        ...

    @property
    def sampled_measurands(self) -> tuple[Measurand, ...]:
        """What periodic (and triggered) meter values carry."""
        ...

    @property
    def aligned_measurands(self) -> tuple[Measurand, ...]:
        """What clock-aligned meter values carry (empty: none are sent)."""
        ...

    @property
    def stop_sampled_measurands(self) -> tuple[Measurand, ...]:
        """Periodic samples kept for the end of a transaction (empty: none kept)."""
        ...

    @property
    def stop_aligned_measurands(self) -> tuple[Measurand, ...]:
        """Clock-aligned samples kept for the end of a transaction (empty: none kept)."""
        ...

    def connector_limit_a(self, connector: int) -> float | None:
        """A configured cap on the current of one connector (None: none), one more term in its
        effective limit (2.0.1: the EVSE's Power MaxSet attribute; 1.6 has none)."""
        ...

    @property
    def reports_charging_state(self) -> bool:
        """A running transaction's charging state (results.ChargingState) is reported to the
        central system, each change at once (2.0.1 TransactionEvent chargingState); False: the
        protocol has no such report (1.6 tells it by the connector status alone)."""
        ...

    @property
    def limit_change_significance_pct(self) -> float | None:
        """External limits (model/external_limits.py) are reported when they start, end or
        move by more than this percentage; None: the protocol has no such report (1.6)."""
        ...


class StationConfig(ChargePointConfig, Protocol):
    """What the station around the model needs as well (messaging, reset, limits)."""

    @property
    def heartbeat_interval_s(self) -> float:
        """A heartbeat when nothing else was sent for this long, s (0: none)."""
        ...

    def set_heartbeat_interval(self, seconds: int) -> None:
        """The central system's interval (from its boot answer), in protocol seconds."""
        ...

    @property
    def message_attempts(self) -> int:
        """How often a transaction message is tried before it is given up."""
        ...

    @property
    def message_retry_interval_s(self) -> float:
        """The wait after a failed transaction message, times the attempts so far, s."""
        ...

    @property
    def minimum_status_duration_s(self) -> float:
        """A status must last this long before it is reported, s (0: report at once)."""
        ...

    @property
    def reset_retries(self) -> int:
        """Reset attempts after the first unsuccessful one."""
        ...

    @property
    def ping_interval_s(self) -> float:
        """Websocket ping interval, s (0: none)."""
        ...

    @property
    def authorization_key(self) -> str:
        """The basic-auth password set by the central system ("" when none)."""
        ...

    def visible_values(self) -> dict[str, str]:
        """Every value by its protocol name, secrets left out (diagnostics snapshots)."""
        ...

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call listener(field name) whenever a value changes (e.g. "light_intensity_pct")."""
        ...
