"""Which OCPP version a station speaks: the one place that knows the protocol adapters."""

from __future__ import annotations

from voltbus_ocpp.adapter import ProtocolAdapter
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store


def adapter_for(settings: GatewaySettings, store: Store) -> ProtocolAdapter:
    """The adapter for VOLTBUS_OCPP_VERSION (1.6 by default; auto: both, see protocol/either.py).

    Each version is imported only when a station speaks it: ocpp.v201's schemas and dataclasses
    cost a 1.6-only gateway ~3 MB and 0.1 s at start (bench/bench_footprint.py).
    """
    if settings.ocpp_version == "auto":
        from voltbus_ocpp.protocol.either import EitherAdapter
        return EitherAdapter(settings, store)
    if settings.ocpp_version == "2.0.1":
        from voltbus_ocpp.protocol.v201.session import V201Adapter
        return V201Adapter(settings, store)
    from voltbus_ocpp.protocol.v16.session import V16Adapter
    return V16Adapter(settings, store)
