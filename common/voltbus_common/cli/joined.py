"""`voltbus up --join HOST:PORT`: use a broker that already runs (Home Assistant's) instead of
starting one. The broker must know voltbus's users and ACL (docs/homeassistant.md says how)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from voltbus_common.channels import DEFAULT_ROOT

# The users `voltbus up` connects as: the four services and the CLI.
USERS = ("hardware", "gateway", "recorder", "api", "operator")


class JoinError(Exception):
    """The broker to join cannot be used as configured; the message says what to fix."""


@dataclass
class JoinedBroker:
    """Stands in for LocalMosquitto: nothing to start, env for each user, a login check."""

    host: str
    port: int
    secrets_dir: Path
    tls: bool = False
    root: str = DEFAULT_ROOT
    passwords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, where: str, *, secrets_dir: Path, tls: bool = False) -> JoinedBroker:
        """From HOST or HOST:PORT (default port 1883, 8883 with TLS)."""
        host, _, port = where.rpartition(":") if ":" in where else (where, "", "")
        if not host:
            raise JoinError(f"--join {where!r}: expected HOST or HOST:PORT")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise JoinError(f"--join {where!r}: port {port!r} is not a port number")
        return cls(host=host, port=int(port) if port else (8883 if tls else 1883),
                   secrets_dir=secrets_dir, tls=tls)

    def prepare(self) -> None:
        """Read each user's password file; JoinError names the missing ones."""
        missing = [u for u in USERS if not (self.secrets_dir / f"mqtt_{u}").is_file()]
        if missing:
            raise JoinError(
                f"joining {self.host}:{self.port} needs a password file per voltbus user in "
                f"{self.secrets_dir}: missing {', '.join('mqtt_' + u for u in missing)} "
                f"(`voltbus secrets {self.secrets_dir}` makes them; then add the users to the "
                "broker, see docs/homeassistant.md)")
        self.passwords = {u: (self.secrets_dir / f"mqtt_{u}").read_text().strip() for u in USERS}

    def start(self) -> None:
        """Log in as every user once, so a wrong password or a missing user stops us here."""
        asyncio.run(self._check_logins())

    async def _check_logins(self) -> None:
        refused = []
        for user, password in self.passwords.items():
            tls = None
            if self.tls:
                import ssl

                tls = ssl.create_default_context()
            try:
                async with aiomqtt.Client(self.host, self.port, username=user, password=password,
                                          tls_context=tls, timeout=5):
                    pass
            except aiomqtt.MqttCodeError as exc:
                refused.append(f"{user} ({exc})")
            except aiomqtt.MqttError as exc:
                raise JoinError(f"cannot reach the broker to join at {self.host}:{self.port} "
                                f"({exc})") from None
        if refused:
            raise JoinError(f"the broker at {self.host}:{self.port} refused "
                            f"{', '.join(refused)}: add these users with the passwords in "
                            f"{self.secrets_dir} (docs/homeassistant.md)")

    def stop(self) -> None:
        """Nothing to stop: the broker is not ours."""

    def env(self, user: str) -> dict[str, str]:
        """VOLTBUS_MQTT_* environment for a process that connects as `user`."""
        env = {
            "VOLTBUS_MQTT_HOST": self.host,
            "VOLTBUS_MQTT_PORT": str(self.port),
            "VOLTBUS_MQTT_USERNAME": user,
            "VOLTBUS_MQTT_PASSWORD_FILE": str(self.secrets_dir / f"mqtt_{user}"),
            "VOLTBUS_ROOT": self.root,
        }
        if self.tls:
            env["VOLTBUS_MQTT_TLS"] = "true"
        return env
