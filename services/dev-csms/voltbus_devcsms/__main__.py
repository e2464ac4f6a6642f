"""`python -m voltbus_devcsms`: the development central system and its HTTP API."""

from __future__ import annotations

import asyncio
import sys

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from voltbus_common.runtime import run
from voltbus_devcsms.central import CentralSystem, CsmsBehaviour
from voltbus_devcsms.server import DevCsms


class DevCsmsSettings(BaseSettings):
    """VOLTBUS_DEVCSMS_HOST, _PORT (websocket), _HTTP_PORT, _HEARTBEAT_S, _ACCEPTED_TAGS."""

    model_config = SettingsConfigDict(env_prefix="VOLTBUS_DEVCSMS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    http_port: int = Field(default=9001, ge=0, le=65535)
    heartbeat_s: int = Field(default=60, ge=1)
    accepted_tags: str = ""  # comma list; empty accepts every tag
    log_level: str = "INFO"


async def main(settings: DevCsmsSettings) -> None:
    """Serve until stopped."""
    tags = {t.strip() for t in settings.accepted_tags.split(",") if t.strip()} or None
    behaviour = CsmsBehaviour(heartbeat_interval_s=settings.heartbeat_s, accepted_tags=tags)
    server = DevCsms(CentralSystem(host=settings.host, port=settings.port, behaviour=behaviour),
                     http_host=settings.host, http_port=settings.http_port)
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


if __name__ == "__main__":
    cfg = load()
    run(lambda: main(cfg), service="devcsms", log_level=cfg.log_level)
