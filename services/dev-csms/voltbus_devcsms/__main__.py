"""`python -m voltbus_devcsms`: the development central system and its HTTP API."""

from __future__ import annotations

import asyncio
import sys
from typing import Literal

from ocpp.v16.enums import RegistrationStatus
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from voltbus_common.runtime import run
from voltbus_devcsms.central import OCPP16, OCPP201, CentralSystem, CsmsBehaviour
from voltbus_devcsms.server import DevCsms


class DevCsmsSettings(BaseSettings):
    """VOLTBUS_DEVCSMS_HOST, _PORT (websocket), _HTTP_PORT, _HEARTBEAT_S, _ACCEPTED_TAGS,
    _OCPP (both, 1.6 or 2.0.1), _BOOT_STATUS, _BOOT_INTERVAL_S, _HISTORY_LIMIT, _LOG_LEVEL."""

    model_config = SettingsConfigDict(env_prefix="VOLTBUS_DEVCSMS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    http_port: int = Field(default=9001, ge=0, le=65535)
    heartbeat_s: int = Field(default=60, ge=1)
    accepted_tags: str = ""  # comma list; empty accepts every tag
    # "both": the version the station prefers among those it offers; or force one of them.
    ocpp: Literal["both", "1.6", "2.0.1"] = "both"
    boot_status: Literal["Accepted", "Pending", "Rejected"] = "Accepted"
    boot_interval_s: int | None = Field(default=None, ge=1)  # default: heartbeat_s
    # CALLs kept (newest, all stations together) for GET /chargers/{id}/messages; counts per
    # action are kept in full (GET /chargers/{id}/counts). 0 keeps all (memory grows ~1 KB each).
    history_limit: int = Field(default=20_000, ge=0)
    log_level: str = "INFO"


SUBPROTOCOLS = {"both": (OCPP201, OCPP16), "1.6": (OCPP16,), "2.0.1": (OCPP201,)}


async def main(settings: DevCsmsSettings) -> None:
    """Serve until stopped."""
    tags = {t.strip() for t in settings.accepted_tags.split(",") if t.strip()} or None
    behaviour = CsmsBehaviour(heartbeat_interval_s=settings.heartbeat_s, accepted_tags=tags,
                              boot_status=RegistrationStatus(settings.boot_status),
                              boot_interval_s=settings.boot_interval_s)
    central = CentralSystem(host=settings.host, port=settings.port, behaviour=behaviour,
                            subprotocols=SUBPROTOCOLS[settings.ocpp],
                            history_limit=settings.history_limit or None)
    server = DevCsms(central, http_host=settings.host, http_port=settings.http_port)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def load() -> DevCsmsSettings:
    """Settings from the environment; exit 2 with the variable and the problem when invalid."""
    try:
        return DevCsmsSettings()
    except ValidationError as exc:
        for err in exc.errors():
            name = "VOLTBUS_DEVCSMS_" + "_".join(str(p) for p in err["loc"]).upper()
            print(f"voltbus_devcsms: {name}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def cli() -> int:
    """Entry point: settings (exit 2 when invalid), then serve; the exit code."""
    cfg = load()
    return run(lambda: main(cfg), service="devcsms", log_level=cfg.log_level)


if __name__ == "__main__":
    raise SystemExit(cli())
