"""Which OCPP version a station speaks: the one place that knows the protocol adapters."""

from __future__ import annotations

from voltbus_ocpp.adapter import ProtocolAdapter
from voltbus_ocpp.protocol.v16.session import V16Adapter
from voltbus_ocpp.protocol.v201.session import V201Adapter
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store


def adapter_for(settings: GatewaySettings, store: Store) -> ProtocolAdapter:
    """The adapter for VOLTBUS_OCPP_VERSION (1.6 by default)."""
    if settings.ocpp_version == "2.0.1":
        return V201Adapter(settings, store)
    return V16Adapter(settings, store)
