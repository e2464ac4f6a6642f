"""Which OCPP version a station speaks: the one place that knows the protocol adapters."""

from __future__ import annotations

from voltbus_ocpp.adapter import ProtocolAdapter
from voltbus_ocpp.protocol.v16.session import V16Adapter
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store


def adapter_for(settings: GatewaySettings, store: Store) -> ProtocolAdapter:
    """The adapter for the configured version (only OCPP 1.6J so far)."""
    return V16Adapter(settings, store)
