"""The seam between the version-neutral station and one OCPP version.

An adapter knows its version's wire: it opens a `Session` on a websocket, boots, sends the
station's messages and outbox records as its CALLs, and turns the central system's requests into
model events and station calls (through `StationCore`). The station holds exactly one adapter;
`protocol/v16/` is the first, 2.0.1 goes beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection

from voltbus_common.enums import RegistrationStatus
from voltbus_ocpp.display import Display
from voltbus_ocpp.maintenance import Maintenance
from voltbus_ocpp.messages import Message
from voltbus_ocpp.model.authorisation import Authoriser
from voltbus_ocpp.model.config import StationConfig
from voltbus_ocpp.model.events import Effect, Event
from voltbus_ocpp.model.results import Outcome
from voltbus_ocpp.model.smart_charging import SmartCharging
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.monitoring import Monitoring
from voltbus_ocpp.records import Record
from voltbus_ocpp.security import StationSecurity
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import AuthTable, Store


class CallFailed(Exception):
    """The central system answered a CALL with an error (a CALLERROR)."""


class Session(Protocol):
    """One open connection to the central system, in one protocol version."""

    async def serve(self) -> None:
        """Read and answer the central system's requests until the connection ends."""
        ...

    async def boot(self) -> None:
        """Register until accepted, reporting each answer (`StationCore.registered`)."""
        ...

    async def send(self, message: Message) -> Event | None:
        """Send a live message (CallFailed, TimeoutError); the model event its answer makes."""
        ...

    async def send_record(self, record: Record, transaction_id: str | None) -> Event | None:
        """Send an outbox record, with the central system's transaction id once known; the
        model event its answer makes (the start's answer gives the transaction its id)."""
        ...


class ProtocolAdapter(Protocol):
    """One OCPP version."""

    @property
    def subprotocol(self) -> str:
        """The websocket subprotocol it speaks ("ocpp1.6"), or speaks now if it offers several."""
        ...

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The subprotocols offered in the handshake, most preferred first."""
        ...

    @property
    def config(self) -> StationConfig:
        """The station's configuration, kept in this version's terms."""
        ...

    def open(self, connection: ClientConnection, core: StationCore) -> Session:
        """A session on a connection that negotiated one of `subprotocols`."""
        ...


class StationCore(Protocol):
    """What a protocol's request handlers may use of the station."""

    id: str
    settings: GatewaySettings
    config: StationConfig
    clock: Callable[[], datetime]
    model: StationModel
    store: Store
    local_list: AuthTable
    authoriser: Authoriser
    smart: SmartCharging
    maintenance: Maintenance
    security: StationSecurity
    display: Display
    monitoring: Monitoring

    def dispatch(self, event: Event) -> list[Effect]:
        """Apply an event to the model and carry out its effects."""
        ...

    def on_dispatch(self, listener: Callable[[Event, list[Effect]], None]
                    ) -> Callable[[], None]:
        """Call listener(event, effects) after every dispatch; returns the unsubscribe."""
        ...

    def send(self, message: Message) -> None:
        """Queue a live message (dropped while offline)."""
        ...

    def registered(self, status: RegistrationStatus) -> None:
        """The central system answered the boot notification."""
        ...

    def install_profile(self, connector: int, profile: dict[str, Any]) -> Outcome:
        """Install a charging profile (on the connector's running transaction if a TxProfile)."""
        ...

    def hold_tx_profile(self, connector: int, profile: dict[str, Any]) -> None:
        """Install a TxProfile once the connector's (remotely started) transaction starts."""
        ...

    def remote_start_profile(self, connector: int | None, id_tag: IdToken,
                             profile: dict[str, Any]) -> None:
        """A TxProfile given with an accepted remote start: onto the transaction it starts."""
        ...

    def clear_profiles(self, *, profile_id: int | None, connector: int | None,
                       purpose: str | None, stack_level: int | None) -> bool:
        """Remove matching profiles; True if any were."""
        ...

    def composite(self, connector: int, start: datetime,
                  duration_s: int) -> list[dict[str, Any]]:
        """The limit periods in A from start for duration_s (empty: nothing limits it)."""
        ...

    def after_reset(self) -> None:
        """Once a Reset's answer is out: finish the transaction messages, then restart."""
        ...

    async def unlock(self, connector: int) -> Outcome:
        """UnlockConnector through the cable lock (cable_lock.py)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background job tied to the station."""
        ...

    def restart_after_install(self) -> None:
        """A firmware was installed: restart (the process ends for its supervisor)."""
        ...

    async def reconnect(self) -> None:
        """Close the connection; the link connects again (with the security profile now)."""
        ...
