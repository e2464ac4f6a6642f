"""TriggerMessage (OCPP 1.6 Remote Trigger profile): which messages may be asked for, and the
version-neutral messages that answer them (sent after the TriggerMessage reply)."""

from __future__ import annotations

from voltbus_common.enums import ChargePointErrorCode, ConnectorStatus
from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.messages import (
    Boot,
    Heartbeat,
    MaintenanceStatus,
    Message,
    MeterValuesNow,
    StationStatus,
)
from voltbus_ocpp.model.connector import blocking_fault
from voltbus_ocpp.model.events import SendStatus
from voltbus_ocpp.model.results import ReadingContext

# Statuses of a job in progress (1.6 4.4, 4.5): otherwise a triggered notification says Idle.
DIAGNOSTICS_BUSY = frozenset({"Uploading"})
FIRMWARE_BUSY = frozenset({"Downloading", "Downloaded", "Installing"})

TRIGGERABLE = frozenset({"BootNotification", "DiagnosticsStatusNotification",
                         "FirmwareStatusNotification", "Heartbeat", "MeterValues",
                         "StatusNotification"})


def answer(core: StationCore, message: str, connector: int | None) -> str:
    """Accepted, Rejected (no such connector) or NotImplemented."""
    if message not in TRIGGERABLE:
        return "NotImplemented"
    if connector is not None and connector not in core.model.connectors and (
            connector != 0 or message == "MeterValues"):
        return "Rejected"
    return "Accepted"


def messages(core: StationCore, message: str, connector: int | None) -> list[Message]:
    """What an accepted trigger sends."""
    connectors = core.model.connectors
    targets = [connector] if connector else list(connectors)
    if message == "Heartbeat":
        return [Heartbeat()]
    if message == "BootNotification":
        return [Boot()]
    if message == "DiagnosticsStatusNotification":
        status = core.maintenance.diagnostics_status
        return [MaintenanceStatus("diagnostics", status if status in DIAGNOSTICS_BUSY else "Idle")]
    if message == "FirmwareStatusNotification":
        status = core.maintenance.firmware_status
        return [MaintenanceStatus("firmware", status if status in FIRMWARE_BUSY else "Idle")]
    out: list[Message] = []
    if message == "StatusNotification":
        if connector in (0, None):  # the station as a whole first (5.17: all connectors)
            out.append(station_status(core))
        if connector == 0:
            return out
        for n in targets:
            c = connectors[n]
            assert c.status is not None
            out.append(SendStatus(n, c.status, c.facts.fault, c.facts.fault_info, core.clock()))
        return out
    for n in targets:  # MeterValues
        meter = connectors[n].facts.meter
        if meter is None:
            continue
        tx = connectors[n].facts.tx
        out.append(MeterValuesNow(n, meter, core.clock(), ReadingContext.TRIGGER,
                                  core.config.sampled_measurands,
                                  tx.transaction_id if tx is not None else None))
    return out


def station_status(core: StationCore) -> Message:
    """Connector 0 as the station is now: Faulted when no connector can deliver energy for a
    hardware fault, Unavailable when the station (or every connector) is Inoperative (as at
    boot), else Available."""
    facts = [c.facts for c in core.model.connectors.values()]
    if facts and all(blocking_fault(f) for f in facts):
        codes = {f.fault for f in facts}
        code = codes.pop() if len(codes) == 1 else ChargePointErrorCode.OTHER_ERROR
        infos = {f.fault_info for f in facts}
        return SendStatus(0, ConnectorStatus.FAULTED, code,
                          infos.pop() if len(infos) == 1 else None, core.clock())
    available = any(f.station_operative and f.operative for f in facts)
    return StationStatus(available, core.clock())


def send(core: StationCore, message: str, connector: int | None) -> None:
    """Send the triggered message if the trigger was accepted."""
    if answer(core, message, connector) != "Accepted":
        return
    for m in messages(core, message, connector):
        core.send(m)
