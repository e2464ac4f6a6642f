"""OCPP 1.6J as the station's protocol adapter: the session on one websocket, the boot, and the
station's messages and outbox records sent as 1.6 CALLs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import ClientConnection

from voltbus_common.enums import RegistrationStatus
from voltbus_ocpp.adapter import CallFailed, StationCore
from voltbus_ocpp.messages import Boot, Message
from voltbus_ocpp.model.authorisation import AuthEntry
from voltbus_ocpp.model.events import Event, LinkChanged, SendAuthorize
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.protocol.v16 import convert
from voltbus_ocpp.protocol.v16.config_store import ConfigStore
from voltbus_ocpp.protocol.v16.requests import V16Requests
from voltbus_ocpp.protocol.v16.security import SecureChargePoint, V16Security, initial_profile
from voltbus_ocpp.records import (
    ExternalLimitRecord,
    MonitorEventRecord,
    Record,
    SecurityEventRecord,
    TransactionStarted,
    TransactionUpdated,
    WireRecord,
)
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"


async def send_call(cp: ChargePoint, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send a CALL given as a camelCase payload; its camelCase answer (CallFailed on CALLERROR).
    """
    request = getattr(call, action)(**camel_to_snake_case(payload))
    try:
        result = await cp.call(request, suppress=False)
    except OCPPError as exc:
        raise CallFailed(str(exc)) from exc
    data = {k: getattr(result, k) for k in result.__dataclass_fields__}
    return snake_to_camel_case(remove_nones(data))  # type: ignore[no-any-return]


def boot_payload(settings: GatewaySettings, serial: str | None = None) -> dict[str, Any]:
    """BootNotification.req (the triggered one too: SteVe erases a serial that is left out)."""
    payload = {"chargePointVendor": settings.charge_point_vendor,
               "chargePointModel": settings.charge_point_model,
               "firmwareVersion": settings.firmware_version}
    if serial is not None:
        payload["chargePointSerialNumber"] = serial[:25]
    return payload


class V16Adapter:
    """The 1.6 adapter: configuration keys (on disk in the station's store) and sessions."""

    def __init__(self, settings: GatewaySettings, store: Store) -> None:
        self.subprotocol = SUBPROTOCOL
        self.subprotocols = (SUBPROTOCOL,)
        overrides = {"NumberOfConnectors": str(settings.connectors), **settings.ocpp_config}
        self.config = ConfigStore(store, overrides=overrides, time_scale=settings.time_scale)
        for key, value in settings.ocpp_config.items():  # the environment wins over stored values
            if key in self.config.values:
                self.config.values[key] = value
        initial_profile(self.config, store, settings)  # SecurityProfile from the settings

    def open(self, connection: ClientConnection, core: StationCore) -> V16Session:
        """A 1.6 session on the connection."""
        return V16Session(self.config, connection, core)


class V16Session:
    """One 1.6 connection: the `ocpp.v16.ChargePoint` reading it, and CALLs out."""

    def __init__(self, config: ConfigStore, connection: ClientConnection,
                 core: StationCore) -> None:
        self.config = config
        self.core = core
        self.cp = SecureChargePoint(core.id, connection, V16Requests(core, config),
                                    response_timeout=core.settings.response_timeout_s,
                                    security=V16Security(core, config))

    async def serve(self) -> None:
        """Read frames until the connection ends."""
        await self.cp.start()

    async def boot(self) -> None:
        """BootNotification until Accepted; Pending/Rejected wait the interval (4.2)."""
        payload = boot_payload(self.core.settings, self.core.id)
        answer = await send_call(self.cp, "BootNotification", payload)
        await self._until_accepted(payload, answer)
        log.info("%s: accepted by the central system", self.core.id)

    async def _until_accepted(self, payload: dict[str, Any], answer: dict[str, Any]) -> None:
        """Apply a BootNotification answer; while it is not Accepted, wait its interval and boot
        again (4.2). Rejected: nothing is sent and no request of the central system is answered
        until the interval has expired. Pending: only BootNotification is sent (the messenger
        waits behind this call); the central system's requests are answered."""
        while True:
            status = RegistrationStatus(answer["status"])
            interval = int(answer.get("interval", 0))
            self.core.registered(status)
            self.cp.silent = status is RegistrationStatus.REJECTED
            if status is RegistrationStatus.ACCEPTED:
                if interval > 0:
                    self.config.set_heartbeat_interval(interval)
                return
            wait = (interval or 60) * self.core.settings.time_scale
            log.warning("%s: BootNotification %s; booting again in %.1fs", self.core.id,
                        status.value, wait)
            await asyncio.sleep(wait)
            answer = await send_call(self.cp, "BootNotification", payload)

    async def send(self, message: Message) -> Event | None:
        """A live message as its 1.6 CALL; an Authorize's answer as AuthorizeAnswered. A
        triggered BootNotification's answer applies as at boot: its interval, and when it is
        Pending or Rejected the station is unregistered again (tags are decided offline, 4.2.1)
        until a BootNotification is Accepted."""
        core = self.core
        payload = boot_payload(core.settings, core.id)
        action, call_payload = convert.message_call(message, payload)
        answer = await send_call(self.cp, action, call_payload)
        if isinstance(message, SendAuthorize):
            return convert.authorize_answered(message.id_tag, answer)
        if isinstance(message, Boot):
            if answer.get("status") == RegistrationStatus.ACCEPTED.value:
                await self._until_accepted(payload, answer)
                return None
            core.dispatch(LinkChanged(False))
            await self._until_accepted(payload, answer)
            core.dispatch(LinkChanged(True))
            log.info("%s: accepted by the central system again", core.id)
        return None

    async def send_record(self, record: Record, transaction_id: str | None) -> Event | None:
        """An outbox record as its 1.6 CALL; a start's answer as StartAnswered."""
        if isinstance(record, MonitorEventRecord):  # 2.0.1 only: 1.6 has no NotifyEvent
            log.warning("%s: dropping queued 2.0.1 monitor events: OCPP 1.6 has no message "
                        "for them", self.core.id)
            return None
        if isinstance(record, TransactionUpdated):  # 2.0.1 only (an early start): no 1.6 CALL
            log.warning("%s: dropping a queued 2.0.1 transaction update: OCPP 1.6 has no "
                        "message for it", self.core.id)
            return None
        if isinstance(record, ExternalLimitRecord):  # queued under 2.0.1: 1.6 has no message
            log.warning("%s: dropping a queued external-limit report: OCPP 1.6 has no message "
                        "for it", self.core.id)
            return None
        action, payload = convert.record_call(record, transaction_id)
        try:
            answer = await send_call(self.cp, action, payload)
        except CallFailed as exc:
            if isinstance(record, SecurityEventRecord) and (
                    "NotImplemented" in str(exc) or "NotSupported" in str(exc)):
                # a central system without the security extension: the event stays in the
                # security log; it must not hold up the transaction messages behind it
                log.warning("%s: the central system does not take SecurityEventNotification "
                            "(%s); %s is only in the security log", self.core.id, exc,
                            record.kind)
                return None
            raise
        self._learn(payload, answer)
        if isinstance(record, TransactionStarted):
            return convert.start_answered(record.effect.local_id, answer)
        if isinstance(record, WireRecord) and action == "StartTransaction" and (
                record.local_id is not None):
            return convert.start_answered(record.local_id, answer)
        return None

    def _learn(self, payload: dict[str, Any], answer: dict[str, Any]) -> None:
        """The authorisation cache learns from the idTagInfo of StartTransaction.conf and
        StopTransaction.conf too, not only from Authorize.conf (3.5.2); a tag on the local list
        is left to the list (the authoriser decides)."""
        id_tag, info = payload.get("idTag"), answer.get("idTagInfo")
        if not id_tag or not isinstance(info, dict) or "status" not in info:
            return
        learned = convert.authorize_answered(IdToken(id_tag), answer)
        assert learned.status is not None
        self.core.authoriser.learn(learned.id_tag, AuthEntry(learned.status, learned.expiry,
                                                     learned.parent_id_tag))
