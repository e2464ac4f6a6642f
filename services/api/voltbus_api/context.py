"""The running parts of the API service, built in create_app and started by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from voltbus_api.auth_store import AuthStore
from voltbus_api.commands import CommandClient
from voltbus_api.history import LocalHistory
from voltbus_api.influx_reader import InfluxSessions
from voltbus_api.notify import Notifier
from voltbus_api.ratelimit import LoginLimiter
from voltbus_api.sessions import SessionSource
from voltbus_api.settings import ApiSettings
from voltbus_api.state_cache import StateCache
from voltbus_common.bus import Bus
from voltbus_common.homeassistant.publisher import publisher_for

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    """Settings, one Bus per station, the state cache and the command client."""

    settings: ApiSettings
    buses: dict[str, Bus]
    cache: StateCache
    commands: CommandClient
    limiter: LoginLimiter
    _running: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    _auth: AuthStore | None = None
    _sessions: SessionSource | None = None
    notifier: Notifier | None = None

    @property
    def auth(self) -> AuthStore:
        """The account store (open while the app runs)."""
        if self._auth is None:
            raise RuntimeError("the API is not started")
        return self._auth

    @property
    def sessions(self) -> SessionSource:
        """Session history (open while the app runs)."""
        if self._sessions is None:
            raise RuntimeError("the API is not started")
        return self._sessions

    @classmethod
    def build(cls, settings: ApiSettings) -> ApiContext:
        """Wire the parts; nothing connects until start()."""
        # A persistent MQTT session: the broker keeps the session events (QoS 1) that happen while
        # the API is down or restarting, so the local history misses none of them.
        buses = {s: Bus(settings, station=s, service="api", persistent_session=True)
                 for s in settings.stations}
        cache = StateCache(settings.stations)
        commands = CommandClient(buses, timeout_s=settings.api_command_timeout_s)
        for bus in buses.values():
            cache.attach(bus)
            commands.attach(bus)
            # Home Assistant discovery (VOLTBUS_HA_DISCOVERY, on by default): the API announces
            # each station, since it already holds a bus per station and the web page's address.
            publisher_for(bus, settings)
        limiter = LoginLimiter(settings.api_login_max_failures, settings.api_login_window_s)
        return cls(settings, buses, cache, commands, limiter)

    async def start(self) -> None:
        """Open the account store (first start: admin password), then run every bus."""
        s = self.settings
        self._auth = AuthStore(s.api_dir / "auth.sqlite", session_ttl_s=s.api_session_ttl_s)
        self._auth.ensure_admin(s.api_dir)
        if s.api_admin_token_file is not None:
            self._auth.provision_token(s.api_admin_token_file)
        local = LocalHistory(s.api_dir / "history.sqlite")
        self.cache.add_listener(local.on_change)
        influx = InfluxSessions(s) if s.influx_url else None
        self._sessions = SessionSource(local, influx)
        self.notifier = Notifier(s.api_notify_urls,
                                 ocpp_lost_after_s=s.api_notify_ocpp_lost_min * 60)
        self.cache.add_listener(self.notifier.on_change)
        self.notifier.start()
        for bus in self.buses.values():
            await self._running.enter_async_context(bus)

    async def stop(self) -> None:
        """Stop the buses (they flush and publish offline), then close the stores."""
        try:
            await self._running.aclose()
        finally:
            if self.notifier is not None:
                await self.notifier.stop()
            if self._sessions is not None:
                self._sessions.local.close()
            if self._auth is not None:
                self._auth.close()
                self._auth = None
