"""Where CLI commands find the bus: the running `voltbus up` stack, or VOLTBUS_* variables."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from voltbus_common.settings import BusSettings

STATE_FILE = "up.json"


@dataclass(frozen=True)
class StackInfo:
    """What `voltbus up` tells other commands about the stack it started."""

    mqtt_port: int
    root: str
    stations: list[str]
    secrets_dir: str
    api_url: str | None = None
    csms_http_url: str | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_tls: bool = False

    def save(self, data_dir: Path) -> None:
        """Write the stack description for `voltbus sim`, `cmd` and `watch`."""
        (data_dir / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, data_dir: Path) -> StackInfo | None:
        """The description left by a running `voltbus up`, if any."""
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def data_dir() -> Path:
    """The state directory (VOLTBUS_DATA_DIR, default ./var)."""
    return Path(os.environ.get("VOLTBUS_DATA_DIR", "var"))


def client_settings(user: str = "operator") -> BusSettings:
    """Settings for a CLI client: env wins; else the stack that `voltbus up` started."""
    if "VOLTBUS_MQTT_PORT" in os.environ or "VOLTBUS_MQTT_HOST" in os.environ:
        return BusSettings()
    info = StackInfo.load(data_dir())
    if info is None:
        return BusSettings(mqtt_username=user)
    return BusSettings(
        mqtt_host=info.mqtt_host, mqtt_port=info.mqtt_port, mqtt_tls=info.mqtt_tls,
        root=info.root, stations=info.stations, mqtt_username=user,
        mqtt_password_file=Path(info.secrets_dir) / f"mqtt_{user}",
    )
