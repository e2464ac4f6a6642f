"""Live messages the station sends to the central system, version-neutral.

The model's effects `SendStatus` and `SendAuthorize` are live messages as they are; the rest are
made by the station (heartbeats, the station-wide status, triggered messages). The protocol
adapter turns each into its version's CALL when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from voltbus_ocpp.model.events import MeterSnapshot, SendAuthorize, SendStatus
from voltbus_ocpp.model.results import Measurand, ReadingContext


@dataclass(frozen=True)
class Heartbeat:
    """Nothing else was sent for the heartbeat interval (or the central system asked)."""


@dataclass(frozen=True)
class Boot:
    """The boot notification again, because the central system asked for it (not the boot)."""


@dataclass(frozen=True)
class StationStatus:
    """The status of the station as a whole (OCPP 1.6 connector 0); ts None: not stamped."""

    available: bool
    ts: datetime | None


@dataclass(frozen=True)
class MeterValuesNow:
    """Meter values sent live (outside a transaction, or triggered)."""

    connector: int
    reading: MeterSnapshot
    ts: datetime
    context: ReadingContext
    measurands: tuple[Measurand, ...]
    transaction_id: str | None = None


@dataclass(frozen=True)
class MaintenanceStatus:
    """Progress of a firmware update or a diagnostics upload ("firmware" or "diagnostics")."""

    kind: str
    status: str


@dataclass(frozen=True)
class SignCertificateRequest:
    """A CSR for the charge point certificate (1.6 security extension SignCertificate)."""

    csr: str


@dataclass(frozen=True)
class LogStatus:
    """Progress of a GetLog upload (LogStatusNotification); request_id None when Idle."""

    status: str
    request_id: int | None


@dataclass(frozen=True)
class SignedFirmwareStatus:
    """Progress of a SignedUpdateFirmware (SignedFirmwareStatusNotification)."""

    status: str
    request_id: int | None


Message = SendStatus | SendAuthorize | Heartbeat | Boot | StationStatus | MeterValuesNow | (
    MaintenanceStatus | SignCertificateRequest | LogStatus | SignedFirmwareStatus)
