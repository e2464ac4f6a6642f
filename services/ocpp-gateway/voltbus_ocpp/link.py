"""The websocket to the central system: connect, check the subprotocol, boot, serve, reconnect.

Security profiles (OCPP 1.6 security whitepaper): 1 = HTTP Basic (station id + AuthorizationKey)
over ws; 2 = the same over wss with the server certificate checked against a CA; 3 = wss with a
client certificate. The key is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from voltbus_ocpp.adapter import CallFailed
from voltbus_ocpp.security import Route, RouteProblem
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import KeyRotation

log = logging.getLogger(__name__)

# Frames read ahead of the one being handled (websockets' high-water mark; its default is 16):
# with csms_max_frame_bytes each, this bounds what a flood of big frames holds in memory.
MAX_QUEUE = 4


def tls_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """Profile 2/3: verify the central system against the configured CA; client cert for 3."""
    if not settings.csms_url.startswith("wss://"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.csms_ca_file) if settings.csms_ca_file else None)
    if settings.csms_client_cert_file is not None:
        context.load_cert_chain(str(settings.csms_client_cert_file),
                                str(settings.csms_client_key_file)
                                if settings.csms_client_key_file else None)
    return context


def basic_auth_header(station: str, key: str) -> dict[str, str]:
    """Profile 1/2: Authorization: Basic base64(id:AuthorizationKey)."""
    token = base64.b64encode(f"{station}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Link:
    """Keeps one station connected; `session(ws)` runs while a connection is up."""

    def __init__(self, settings: GatewaySettings, station: str, *,
                 session: Callable[[ClientConnection], Awaitable[None]],
                 on_down: Callable[[], None],
                 auth_key: Callable[[], str | None],
                 ping_interval: Callable[[], float], subprotocols: Sequence[str],
                 rotation: KeyRotation | None = None,
                 route: Callable[[], Route] | None = None,
                 on_connected: Callable[[], None] = lambda: None,
                 on_failed: Callable[[BaseException], None] = lambda exc: None) -> None:
        self.settings = settings
        self.station = station
        self.session = session
        self.on_down = on_down
        self.auth_key = auth_key
        self.ping_interval = ping_interval
        self.subprotocols = tuple(subprotocols)  # what the protocol adapter offers, best first
        self.connection: ClientConnection | None = None
        self.connects = 0
        self.rotation = rotation  # a new AuthorizationKey falls back to the previous on 401
        self._try_previous = False
        self.route = route  # the security profile's way to connect (security.py)
        self.on_connected = on_connected  # a connection was accepted
        self.on_failed = on_failed  # an attempt failed before a connection was accepted

    @property
    def url(self) -> str:
        """The central system URL with the station id as the last path segment."""
        base = self.route().url if self.route is not None else self.settings.csms_url
        return base.rstrip("/") + "/" + self.station

    async def run(self) -> None:
        """Connect and serve forever, with exponential backoff (plus jitter) between attempts.

        The backoff starts again from its minimum once a connection was accepted (opened with our
        subprotocol), however that connection ended: after an outage grew it to its maximum, a
        later Reset or network blip must not leave the station offline for the maximum."""
        backoff = self.settings.reconnect_min_s
        while True:
            connects = self.connects
            try:
                await self._connect_once()
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError, CallFailed) as exc:
                if self.connects == connects:
                    self.on_failed(exc)
                if isinstance(exc, RouteProblem):
                    log.error("%s: cannot connect: %s", self.station, exc)
                elif isinstance(exc, InvalidStatus) and exc.response.status_code == 401:
                    log.warning("%s: central system refused our credentials (401)", self.station)
                    if self.rotation is not None and self.rotation.state == "pending":
                        # the new key was refused: the next attempt uses the previous one,
                        # the one after it the new one again (until one is accepted)
                        self._try_previous = not self._try_previous
                else:
                    log.warning("%s: central system %s unavailable: %s", self.station,
                                self.url, exc or type(exc).__name__)
            finally:
                self.connection = None
                self.on_down()
            if self.connects != connects:
                backoff = self.settings.reconnect_min_s
            delay = backoff * (0.8 + 0.4 * random.random())
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, self.settings.reconnect_max_s)

    def _key(self) -> tuple[str | None, bool]:
        """The key to connect with, and whether it is the previous one (see KeyRotation)."""
        state = self.rotation.state if self.rotation is not None else ""
        if self.rotation is not None and (state == "refused" or (
                state == "pending" and self._try_previous)):
            return self.rotation.previous or self.settings.auth_key(), True
        return self.auth_key(), False

    def _key_accepted(self, previous: bool) -> None:
        if self.rotation is None or self.rotation.state != "pending":
            return
        self._try_previous = False
        if previous:
            log.warning("%s: the central system refused the new AuthorizationKey and accepted "
                        "the previous one: using the previous one", self.station)
            self.rotation.refused()
        else:
            log.info("%s: the central system accepted the new AuthorizationKey", self.station)
            self.rotation.accepted()

    async def _connect_once(self) -> None:
        headers: dict[str, str] = {}
        route = self.route() if self.route is not None else None
        if route is not None and route.problem:
            raise RouteProblem(f"security profile {route.profile}: {route.problem}")
        key, previous = self._key()
        if route is not None and route.basic_auth is False:
            key = None  # profile 3: the client certificate authenticates the station
        if key:
            headers = basic_auth_header(self.station, key)
        ping = self.ping_interval()
        kwargs: dict[str, Any] = {}
        context = route.ssl if route is not None else tls_context(self.settings)
        if context is not None:
            kwargs["ssl"] = context
        url = (route.url.rstrip("/") + "/" + self.station) if route is not None else self.url
        async with connect(url, subprotocols=list(self.subprotocols),  # type: ignore[arg-type]
                           additional_headers=headers, open_timeout=10,
                           ping_interval=ping if ping > 0 else None,
                           ping_timeout=ping if ping > 0 else None,
                           max_size=self.settings.csms_max_frame_bytes, max_queue=MAX_QUEUE,
                           **kwargs) as ws:
            if ws.subprotocol not in self.subprotocols:
                offered = " or ".join(self.subprotocols)
                await ws.close(1002, f"{offered} required")
                raise InvalidHandshake(f"central system did not agree to {offered} "
                                       f"(got {ws.subprotocol!r})")
            self.connection = ws
            self.connects += 1
            if key:
                self._key_accepted(previous)
            self.on_connected()
            log.info("%s: connected to %s (%s)", self.station, url, ws.subprotocol)
            try:
                await self.session(ws)
            except asyncio.CancelledError:
                # a normal shutdown or hard Reset: close with 1000, not the 1011 (internal error)
                # the context manager would send for an exception
                with contextlib.suppress(Exception):
                    await ws.close(1000, "shutting down")
                raise

    async def drop(self) -> None:
        """Close the current connection (Reset): the loop reconnects and boots again."""
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close(1000, "reset")
