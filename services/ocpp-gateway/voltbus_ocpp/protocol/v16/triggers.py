"""TriggerMessage (OCPP 1.6 Remote Trigger profile): which messages may be asked for, and the
version-neutral messages that answer them (sent after the TriggerMessage reply)."""

from __future__ import annotations

from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.messages import (
    Boot,
    Heartbeat,
    MaintenanceStatus,
    Message,
    MeterValuesNow,
    StationStatus,
)
from voltbus_ocpp.model.events import SendStatus
from voltbus_ocpp.model.results import ReadingContext

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
        return [MaintenanceStatus("diagnostics", core.maintenance.diagnostics_status)]
    if message == "FirmwareStatusNotification":
        return [MaintenanceStatus("firmware", core.maintenance.firmware_status)]
    out: list[Message] = []
    if message == "StatusNotification":
        if connector == 0:  # issue 10: always Available, whatever the station's state
            return [StationStatus(True, None)]
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


def send(core: StationCore, message: str, connector: int | None) -> None:
    """Send the triggered message if the trigger was accepted."""
    if answer(core, message, connector) != "Accepted":
        return
    for m in messages(core, message, connector):
        core.send(m)
