"""VOLTBUS_OCPP_VERSION=auto: offer both subprotocols and speak the one the central system selects.

The handshake offers `ocpp2.0.1` then `ocpp1.6` (RFC 6455 4.1: the server picks one of those the
client lists; OCPP-J 1.6 §3.1.2 and OCPP 2.0.1 part 4 §3.1.2 name the subprotocols). Each
version keeps its own configuration in the station's store (1.6 keys and 2.0.1 "Component.Variable"
names never collide), and the station reads the configuration of the version spoken last: the
one selected on the current connection, or, before the first, the one selected last time (kept
in the store's meta `ocpp_subprotocol`; ocpp2.0.1 the first time).

Not done: a transaction running while the central system switches version is ended in the old
version's terms only as far as its queued records can be sent in the new one (a queued 1.6 wire
record is dropped with a log line by the 2.0.1 session, as for a configured switch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from websockets.asyncio.client import ClientConnection

from voltbus_ocpp.adapter import ProtocolAdapter, Session, StationCore
from voltbus_ocpp.model.config import StationConfig
from voltbus_ocpp.protocol.v16.session import V16Adapter
from voltbus_ocpp.protocol.v201.session import V201Adapter
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)

META = "ocpp_subprotocol"  # the subprotocol the central system selected last


class ActiveConfig:
    """The configuration of the version spoken now: every read goes to that adapter's config;
    listeners hear changes in either."""

    def __init__(self, either: EitherAdapter) -> None:
        self._either = either

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call listener(field name) whenever a value changes, in either version."""
        for adapter in self._either.adapters.values():
            adapter.config.on_change(listener)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._either.active.config, name)


class EitherAdapter:
    """Both adapters; the one the central system selected speaks."""

    def __init__(self, settings: GatewaySettings, store: Store) -> None:
        self.store = store
        v201, v16 = V201Adapter(settings, store), V16Adapter(settings, store)
        self.adapters: dict[str, ProtocolAdapter] = {v201.subprotocol: v201,
                                                     v16.subprotocol: v16}
        self.subprotocols = tuple(self.adapters)  # the order offered: 2.0.1 preferred
        last = store.meta(META, self.subprotocols[0]) or self.subprotocols[0]
        self.active = self.adapters.get(last, v201)
        self.config = cast(StationConfig, ActiveConfig(self))

    @property
    def subprotocol(self) -> str:
        """The subprotocol spoken now (or last)."""
        return self.active.subprotocol

    def open(self, connection: ClientConnection, core: StationCore) -> Session:
        """A session in the version the central system selected in the handshake."""
        chosen = self.adapters.get(str(connection.subprotocol))
        if chosen is None:  # Link refuses any other; kept for a direct caller
            raise ValueError(f"no adapter for subprotocol {connection.subprotocol!r}")
        if chosen is not self.active:
            log.warning("%s: the central system selected %s (was %s): speaking %s now",
                        core.id, chosen.subprotocol, self.active.subprotocol,
                        chosen.subprotocol)
            self.active = chosen
        if self.store.meta(META, "") != chosen.subprotocol:
            self.store.set_meta(META, chosen.subprotocol)
        return chosen.open(connection, core)
