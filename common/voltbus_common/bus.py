"""The MQTT plumbing every service uses: reconnect loop, typed publish/subscribe, Last Will.

One `Bus` is one MQTT connection for one station. Publishing never blocks on the network: messages
go to an in-memory outbox that is drained while connected, so a broker restart delays messages
instead of losing them. Invalid incoming payloads are logged with topic and reason, counted,
announced on `service/{service}/rejected`, and dropped; they never reach a handler. The log is
rate-limited per topic and reason (`RejectLog`); the rejected topic gets every one.

A service runs its bus with `async with bus:`: connected (or reconnecting) inside the block, then
flushed, `offline` and disconnected, however the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, cast

import aiomqtt

from voltbus_common.channels import SERVICE_REJECTED, SERVICE_STATUS, Channel, P, PayloadError
from voltbus_common.enums import ServiceState
from voltbus_common.models import RejectedMessage
from voltbus_common.settings import BusSettings

log = logging.getLogger(__name__)


class _LostConnectionIsAWarning(logging.Filter):
    """paho logs a connection the broker dropped ("failed to receive on socket: [Errno 104]
    Connection reset by peer") as an ERROR; for the bus it is an outage it rides out (it says
    so itself, as a WARNING, with the retry), so it is logged as a WARNING too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and str(record.msg).startswith(
                ("failed to receive on socket", "failed to send on socket")):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_paho_log = logging.getLogger("mqtt")  # aiomqtt's default logger name, kept for log filters
_paho_log.addFilter(_LostConnectionIsAWarning())

# Without TCP_NODELAY a QoS 1 command answered by another process stalls 40-90 ms (Nagle meets
# delayed ACK); the broker config sets `set_tcp_nodelay true` for its side.
_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@contextlib.asynccontextmanager
async def _connection(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """`async with client`, without the two leaks aiomqtt 2.5 has around a cancel or a loss.

    - A cancel that lands once the socket is connected (the CONNACK on its way) ends
      `__aenter__` with no `__aexit__`: the connection stayed open at the broker until the next
      connect with our client id took it over, which set an exception on a future nobody awaits.
    - `__aexit__` returns early when the broker already dropped us, leaving that future's
      exception unretrieved too.
    Either way asyncio later logged "Future exception was never retrieved" from whichever code
    ran when the client was garbage-collected (a CI error in an unrelated test).
    """
    try:
        await client.__aenter__()
    except BaseException:
        _abandon(client)
        raise
    try:
        yield client
    except BaseException as exc:
        await client.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        await client.__aexit__(None, None, None)
    finally:
        _retrieve_loss(client)


def _abandon(client: aiomqtt.Client) -> None:
    """Close a connection whose `__aenter__` did not return, now or as its CONNACK arrives.

    The connect runs in an executor thread that a cancel does not stop, so the socket may open
    only after this: paho's on_connect hook closes it then.
    """
    _retrieve_loss(client)
    lost = client._disconnected
    if not lost.done():
        lost.set_result(None)  # the close below is ours, not a loss to report
    paho = client._client

    def close_at_connack(*_: object) -> None:
        paho.disconnect()

    paho.on_connect = close_at_connack
    if paho.is_connected():
        paho.disconnect()


def _retrieve_loss(client: aiomqtt.Client) -> None:
    """Mark a broker loss aiomqtt recorded as seen: run() has logged and handled it already."""
    lost = client._disconnected
    if lost.done() and not lost.cancelled():
        lost.exception()


@dataclass(frozen=True)
class Received(Generic[P]):
    """A decoded message with the topic placeholders it arrived on."""

    topic: str
    args: dict[str, str]
    payload: P | None
    retain: bool

    @property
    def station(self) -> str:
        """The station id from the topic."""
        return self.args["station"]

    @property
    def connector(self) -> int:
        """The connector id from the topic (validated as >= 0 before handlers see it)."""
        return int(self.args["connector"])


@dataclass
class _Drops:
    logged: int = 0  # logged one by one
    suppressed: int = 0  # counted since `since`, not logged yet
    since: float = 0.0  # when the first suppressed one came
    last: float = 0.0  # the latest drop
    reason: str = ""  # the latest reason


def reason_kind(reason: str) -> str:
    """What a reason is about, for the log's rate limit: its text before the first colon (the
    field of a validation error: "closed", "payload") or quote (a value), so the many ways one
    field can be wrong count as one kind."""
    return reason.split(":", 1)[0].split("'", 1)[0][:60]


class RejectLog:
    """Logs dropped messages without filling a Pi's SD card when a publisher keeps sending junk.

    Per (topic, kind of reason): the first `burst` drops are logged one by one, and at most
    `max_lines` one by one in all per `period_s`; after that the counts, once a `period_s` (on a
    timer, or at the next drop once the period is over) for every key at once: a line per key,
    or a single line for all when more than `SUMMARY_LINES` have counts. A key quiet for a
    whole period starts afresh. At most `max_keys` keys: drops beyond that are counted together
    under one key. The rejected topic still gets every drop with its full reason (Bus.reject).
    """

    OTHERS = ("(other topics)", "(other reasons)")
    SUMMARY_LINES = 3

    def __init__(self, *, burst: int = 5, period_s: float = 60.0, max_keys: int = 200,
                 max_lines: int = 40, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.period_s = period_s
        self.max_keys = max_keys
        self.max_lines = max_lines
        self.clock = clock
        self._drops: dict[tuple[str, str], _Drops] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._lines = 0  # logged one by one since _lines_since
        self._lines_since = -float("inf")

    def note(self, topic: str, reason: str) -> None:
        """One dropped message: log it, or count it for the next summary."""
        now = self.clock()
        self.flush(now)
        key = (topic, reason_kind(reason))
        drops = self._drops.get(key)
        if drops is None:
            if len(self._drops) >= self.max_keys:
                key = self.OTHERS
                drops = self._drops.setdefault(key, _Drops(logged=self.burst))
            else:
                drops = self._drops[key] = _Drops()
        drops.last = now
        drops.reason = reason
        if now - self._lines_since >= self.period_s:
            self._lines, self._lines_since = 0, now
        if drops.logged < self.burst and self._lines < self.max_lines:
            drops.logged += 1
            self._lines += 1
            log.warning("dropped message on %s: %s", topic, reason)
            return
        if drops.suppressed == 0:
            drops.since = now
        drops.suppressed += 1
        self._arm(now)

    def flush(self, now: float | None = None) -> None:
        """Log the summaries whose period is over; forget keys quiet for a whole period."""
        now = self.clock() if now is None else now
        # When one key's summary is due, every key with drops counted comes with it: one line a
        # minute, not one per key at its own moment.
        due = [(key, d) for key, d in self._drops.items() if d.suppressed]
        if not any(now - d.since >= self.period_s for _, d in due):
            due = []
        if len(due) > self.SUMMARY_LINES:
            total = sum(d.suppressed for _, d in due)
            (topic, _), top = max(due, key=lambda kd: kd[1].suppressed)
            log.warning("dropped %d more messages on %d topics and kinds of reason in the last "
                        "%.0f s, most on %s: %s (one line like this a minute; every one is on "
                        "service/<service>/rejected)", total, len(due),
                        now - min(d.since for _, d in due), topic, top.reason)
        for key, drops in due:
            if len(due) <= self.SUMMARY_LINES:
                log.warning("dropped %d more messages on %s in the last %.0f s: %s (after %d "
                            "logged one by one, one line like this a minute)", drops.suppressed,
                            key[0], now - drops.since, drops.reason, drops.logged)
            drops.suppressed = 0
        for key, drops in list(self._drops.items()):
            if not drops.suppressed and now - drops.last >= self.period_s:
                del self._drops[key]

    def _arm(self, now: float) -> None:
        """A summary comes even when no further message is dropped."""
        if self._timer is not None:
            return
        due = min((d.since + self.period_s for d in self._drops.values() if d.suppressed),
                  default=None)
        if due is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (plain unit use): the next note() or flush() logs it
        self._timer = loop.call_later(max(0.0, due - now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.clock()
        self.flush(now)
        self._arm(now)


Handler = Callable[[Received[Any]], Awaitable[None]]
RawHandler = Callable[[str, bytes, bool], Awaitable[None]]


@dataclass(frozen=True)
class _Subscription:
    channel: Channel[Any] | None
    topic_filter: str
    handler: Handler | RawHandler
    qos: int


def _cancels_requested() -> int:
    """How many cancels the current task has been asked for and not taken back."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _raise_if_cancelled(since: int = 0) -> None:
    """Re-raise a cancel that asyncio swallowed.

    On Python 3.11 asyncio.wait_for (inside aiomqtt's connect, subscribe and publish) drops a
    cancel that lands as the awaited step completes; the task then runs on and whoever cancelled
    it (a stop, a station's hard Reset) waits forever (test_reset's in-process rebuild hung 1 run
    in 3). The request is still counted: more than `since` means a cancel arrived.
    """
    if _cancels_requested() > since:
        raise asyncio.CancelledError


class Bus:
    """One station's MQTT connection for one service."""

    def __init__(
        self,
        settings: BusSettings,
        *,
        station: str,
        service: str | None,
        persistent_session: bool = False,
        outbox_limit: int = 50_000,
        client_id: str | None = None,
        republish_retained: bool = False,
    ) -> None:
        self.settings = settings
        # After a reconnect, send the latest retained message of every topic this bus wrote
        # again: a broker that crashed restores its last autosave (up to 5 s old), and a site
        # broker bridged to it would get that old state too (docs/multi-site.md). Bounded by
        # the number of topics the service writes retained.
        self.republish_retained = republish_retained
        self._retained: dict[str, tuple[bytes, int]] = {}
        self.root = settings.root
        self.station = station
        self.service = service
        self.persistent_session = persistent_session
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()  # the opposite of connected, to wait for a loss
        self.disconnected.set()
        self.invalid_count = 0
        self.dropped_count = 0
        self.last_error: str | None = None  # why the last connection attempt failed (CLI says it)
        # time.monotonic() of the last (re)connect: right after it, retained messages are the
        # broker's memory, maybe stale (a safety rule waits for the live state then).
        self.connected_at: float | None = None
        self.connect_count = 0
        self._subs: list[_Subscription] = []
        # topic -> the subscriptions it matches; matching every filter per message was the
        # biggest cost of a busy subscriber (the recorder). Bounded: cleared when it grows.
        self._routes: dict[str, list[_Subscription]] = {}
        self._outbox: deque[tuple[str, bytes, int, bool]] = deque()
        # Handed to the client, not yet confirmed (PUBACK), oldest first: back to the front of
        # the outbox if the connection ends (see _send_loop).
        self._inflight: deque[tuple[tuple[str, bytes, int, bool], asyncio.Task[None]]] = deque()
        self._outbox_limit = outbox_limit
        self._outbox_ready = asyncio.Event()
        self._client_id = client_id or self._default_client_id()
        self.reject_log = RejectLog()
        self._runner: asyncio.Task[None] | None = None  # run() inside `async with bus:`
        self._host: asyncio.Task[Any] | None = None  # the task in the block: stopped if we fail
        self._host_cancelled = False

    def _default_client_id(self) -> str:
        if self.service is None:  # a plain client (CLI, tests): never collide with another
            return f"voltbus-client-{uuid.uuid4().hex[:12]}"
        # Stable per (root, station, service) so a persistent session survives restarts.
        digest = hashlib.sha1(f"{self.root}|{self.station}".encode()).hexdigest()[:10]
        return f"voltbus-{self.service or 'client'}-{digest}"

    # --- subscribing -------------------------------------------------------------------------

    def on(self, channel: Channel[P], handler: Callable[[Received[P]], Awaitable[None]],
           **args: str | int) -> None:
        """Call handler for each valid message on channel (this station unless args say else)."""
        args.setdefault("station", self.station)
        self._routes.clear()
        self._subs.append(_Subscription(channel, channel.filter(self.root, **args), handler,
                                        channel.qos))

    def on_raw(self, topic_filter: str, handler: RawHandler, qos: int = 1) -> None:
        """Call handler(topic, payload, retain) for a topic outside the contract."""
        self._routes.clear()
        self._subs.append(_Subscription(None, topic_filter, handler, qos))

    # --- publishing --------------------------------------------------------------------------

    def publish(self, channel: Channel[P], payload: P | None, **args: str | int) -> None:
        """Queue a message on channel for this station; sent in order as soon as connected."""
        args.setdefault("station", self.station)
        if "service" in channel.fields:
            args.setdefault("service", self.service or "client")
        topic = channel.topic(self.root, **args)
        self.publish_raw(topic, channel.encode(payload), qos=channel.qos, retain=channel.retain)

    def publish_raw(self, topic: str, payload: bytes, *, qos: int = 1,
                    retain: bool = False) -> None:
        """Queue a message on a topic outside the contract (Home Assistant discovery)."""
        if len(self._outbox) >= self._outbox_limit:
            self._outbox.popleft()
            self.dropped_count += 1
            if self.dropped_count in (1, 10, 100) or self.dropped_count % 1000 == 0:
                log.error("outbox full (%d): dropped %d oldest messages", self._outbox_limit,
                          self.dropped_count)
        self._outbox.append((topic, payload, qos, retain))
        if retain and self.republish_retained:
            self._retained[topic] = (payload, qos)
        self._outbox_ready.set()

    def reject(self, topic: str, reason: str) -> None:
        """Log, count and announce a message this service drops."""
        self.invalid_count += 1
        self.reject_log.note(topic, reason)
        if self.service is not None:
            self.publish(SERVICE_REJECTED, RejectedMessage(topic=topic, reason=reason))

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return once connected (raises TimeoutError after timeout seconds)."""
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel (3.11)
            await self.connected.wait()

    async def drain(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """Wait until the outbox is empty; False if it did not empty in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._outbox or self._inflight) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # polls two deques
        return not (self._outbox or self._inflight)

    # --- the connection loop -----------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        will = None
        if self.service is not None:
            will = aiomqtt.Will(self._status_topic(), ServiceState.OFFLINE.value.encode(),
                                qos=1, retain=True)
        tls_context = None
        if s.mqtt_tls:
            tls_context = ssl.create_default_context(
                cafile=str(s.mqtt_ca_file) if s.mqtt_ca_file else None)
        return aiomqtt.Client(
            s.mqtt_host, s.mqtt_port, username=s.mqtt_username, password=s.mqtt_secret(),
            identifier=self._client_id, will=will, clean_session=not self.persistent_session,
            keepalive=s.mqtt_keepalive_s, socket_options=_NODELAY, tls_context=tls_context,
            timeout=10, logger=_paho_log,
        )

    def _status_topic(self) -> str:
        return SERVICE_STATUS.topic(self.root, station=self.station, service=self.service or "")

    async def run(self) -> None:
        """Stay connected until cancelled: reconnect with backoff, resubscribe, drain the outbox."""
        backoff = 0.2
        while True:
            client = self._client()
            # Cancel requests counted before this attempt: only a newer one is ours to honour
            # (see _raise_if_cancelled), so a stale count can never stop a healthy bus.
            cancels = _cancels_requested()
            try:
                async with _connection(client):
                    _raise_if_cancelled(since=cancels)
                    backoff = 0.2
                    await self._on_connect(client)
                    _raise_if_cancelled(since=cancels)
                    try:
                        await self._serve(client)
                    except asyncio.CancelledError:
                        with contextlib.suppress(Exception):
                            async with asyncio.timeout(2):
                                await self._say_goodbye(client)
                        raise
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.warning("MQTT %s:%d unavailable (%s); retrying in %.1fs",
                            self.settings.mqtt_host, self.settings.mqtt_port, exc, backoff)
            finally:
                self.connected.clear()
                self.disconnected.set()
            _raise_if_cancelled(since=cancels)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 15.0)

    async def _serve(self, client: aiomqtt.Client) -> None:
        task = asyncio.current_task()
        cancels_before = task.cancelling() if task is not None else 0
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._send_loop(client))
                group.create_task(self._receive_loop(client))
        except BaseExceptionGroup as errors:
            # A plain `except`, not `except*`: before 3.11.4 (Debian 12's and Raspberry Pi OS's
            # 3.11.2) an exception raised inside an `except*` block comes out wrapped in a new
            # ExceptionGroup (CPython gh-103590), which run() did not catch: the bus stopped
            # for good at the first broker restart.
            lost, others = errors.split(aiomqtt.MqttError)
            if lost is None or others is not None:
                raise
            if task is not None and task.cancelling() > cancels_before:
                # 3.11's TaskGroup cancels its parent when a child fails and never takes the
                # request back (3.12 does): left counted, it would read as a real cancel.
                task.uncancel()
            raise lost.exceptions[0] from None

    async def _on_connect(self, client: aiomqtt.Client) -> None:
        for sub in self._subs:
            await client.subscribe(sub.topic_filter, qos=sub.qos)
        if self.service is not None:
            # Ahead of anything queued while offline, so watchers see us before our data.
            self._outbox.appendleft((self._status_topic(), b"online", 1, True))
            self._outbox_ready.set()
        if self.republish_retained and self.connect_count > 0:
            queued = {topic for topic, *_ in self._outbox}  # their latest goes out anyway
            again = [(t, p, q) for t, (p, q) in self._retained.items() if t not in queued]
            self._outbox.extend((t, p, q, True) for t, p, q in again)
            self._outbox_ready.set()
            log.info("reconnected: %d retained topics published again", len(again))
        self.connected_at = time.monotonic()
        self.connect_count += 1
        self.disconnected.clear()
        self.connected.set()
        log.info("connected to MQTT %s:%d as %s (station %s)", self.settings.mqtt_host,
                 self.settings.mqtt_port, self.settings.mqtt_username, self.station)

    # QoS 1 publishes in flight at once (paho's own window, so it never queues them itself).
    MAX_INFLIGHT = 20

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        """Send the outbox in order with up to MAX_INFLIGHT publishes awaiting their PUBACK.

        One at a time, each publish waited a broker round trip for the one before it (a relay
        command behind a current limit: issue 14). The broker handles one connection's packets
        in order, so the order per topic holds. A message leaves the outbox for `_inflight`
        and is forgotten only once it and every one before it are confirmed; when the
        connection ends, the unconfirmed ones go back to the front of the outbox in their order
        (those confirmed after an unconfirmed one too: a duplicate, never a stale retained value
        written after a newer one), and the next connection sends them again (QoS 1: at least
        once).
        """
        inflight = self._inflight
        ready = self._outbox_ready
        # aiomqtt warns from 10 pending calls on: that many in flight is our design here
        client.pending_calls_threshold = max(client.pending_calls_threshold, self.MAX_INFLIGHT)
        try:
            while True:
                while inflight and inflight[0][1].done():
                    inflight[0][1].result()  # a failed one ends the connection, kept queued
                    inflight.popleft()
                while self._outbox and len(inflight) < self.MAX_INFLIGHT:
                    entry = self._outbox.popleft()
                    topic, payload, qos, retain = entry
                    # The client writes the PUBLISH in the task's first step: tasks start in
                    # the order they are created, so the packets go out in outbox order.
                    task = asyncio.create_task(
                        client.publish(topic, payload, qos=qos, retain=retain))
                    task.add_done_callback(lambda _t: ready.set())
                    inflight.append((entry, task))
                if inflight and inflight[0][1].done():
                    continue
                ready.clear()
                await ready.wait()
                _raise_if_cancelled()
        finally:
            self._requeue_inflight()

    def _requeue_inflight(self) -> None:
        """The connection ended: what it did not confirm goes back in front of the outbox."""
        inflight = self._inflight
        while inflight and inflight[0][1].done() and not inflight[0][1].cancelled() \
                and inflight[0][1].exception() is None:
            inflight.popleft()  # confirmed, and all before it
        for _entry, task in inflight:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved: the loss is handled by run()
        self._outbox.extendleft(entry for entry, _task in reversed(inflight))
        inflight.clear()
        if self._outbox:
            self._outbox_ready.set()

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else str(
                message.payload or "").encode()
            await self._dispatch(str(message.topic), raw, bool(message.retain))

    async def _dispatch(self, topic: str, raw: bytes, retain: bool) -> None:
        subs = self._routes.get(topic)
        if subs is None:
            if len(self._routes) >= 20_000:
                self._routes.clear()
            subs = self._routes[topic] = [
                s for s in self._subs if aiomqtt.Topic(topic).matches(s.topic_filter)]
        decoded: dict[int, Received[Any] | None] = {}  # per channel: decoded (rejected) once
        for sub in subs:
            try:
                if sub.channel is None:
                    await cast(RawHandler, sub.handler)(topic, raw, retain)
                    continue
                if id(sub.channel) not in decoded:
                    decoded[id(sub.channel)] = self._decode(sub.channel, topic, raw, retain)
                received = decoded[id(sub.channel)]
                if received is not None:
                    await cast(Handler, sub.handler)(received)
            except Exception:  # a handler bug must not take the service down
                log.exception("handler for %s failed", topic)

    def _decode(self, channel: Channel[Any], topic: str, raw: bytes,
                retain: bool) -> Received[Any] | None:
        args = channel.match(self.root, topic)
        if args is None:
            return None
        connector = args.get("connector")
        if connector is not None and not (connector.isdigit() and int(connector) <= 10_000):
            self.reject(topic, f"connector {connector!r} is not a connector number")
            return None
        try:
            payload = channel.decode(raw)
        except PayloadError as exc:
            self.reject(topic, str(exc))
            return None
        return Received(topic, args, payload, retain)

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        """On a clean stop: flush the outbox and mark us offline (a Will fires only on loss)."""
        while self._outbox:
            topic, payload, qos, retain = self._outbox.popleft()
            await client.publish(topic, payload, qos=qos, retain=retain)
        if self.service is not None:
            await client.publish(self._status_topic(), b"offline", qos=1, retain=True)

    # --- running as a context manager --------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Run the bus in a task of its own while the block runs (connected or reconnecting).

        Like a TaskGroup child: if the bus fails (not a broker loss, which it rides out: a bug,
        an unreadable CA file), the block is cancelled and the failure comes out of the block.
        """
        if self._runner is not None:
            raise RuntimeError(f"bus {self._client_id} is running already")
        self._host = asyncio.current_task()
        self._host_cancelled = False
        self._runner = asyncio.create_task(self.run(), name=f"bus {self._client_id}")
        self._runner.add_done_callback(self._runner_done)
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Stop the bus cleanly: flush the outbox, say `offline`, disconnect."""
        runner, host = self._runner, self._host
        assert runner is not None
        assert host is not None
        self._host = None  # from here on a failure of run() is ours to report, not to cancel for
        try:
            await self._stop(runner)
        finally:
            self._runner = None
        error = runner.exception() if runner.done() and not runner.cancelled() else None
        if error is None:
            return
        if self._host_cancelled:
            self._host_cancelled = False
            host.uncancel()  # our cancel, not the caller's: 3.11's uncancel() bookkeeping
            if et is asyncio.CancelledError and host.cancelling() == 0:
                raise error from None  # the block was stopped because the bus failed
        if et is None:
            raise error
        log.error("bus %s had failed too", self._client_id, exc_info=error)

    def _runner_done(self, runner: asyncio.Task[None]) -> None:
        host = self._host
        if runner.cancelled() or runner.exception() is None:
            return
        if host is not None and not host.done():
            self._host_cancelled = True
            host.cancel()

    async def _stop(self, runner: asyncio.Task[None]) -> None:
        """Cancel run() until it has ended, within about 17 s, even if we are cancelled too."""
        interrupted = False
        if self.connected.is_set() and not runner.done():
            # Let the send loop go idle first: on Python 3.11 a cancel that lands while aiomqtt's
            # publish() sits in asyncio.wait_for can be swallowed (run() re-raises it; an idle
            # send loop has no such race).
            try:
                await self.drain(2.0)
            except asyncio.CancelledError:
                interrupted = True
        for _ in range(5):
            if runner.done():
                break
            # Again if it is still running: 3.11's wait_for (inside aiomqtt) can swallow one.
            runner.cancel()
            try:
                await asyncio.wait({runner}, timeout=3)
            except asyncio.CancelledError:
                interrupted = True  # stopped while stopping (a second SIGTERM): finish first
        if not runner.done():
            log.error("bus %s did not stop", self._client_id)  # pragma: no cover
        if interrupted:
            raise asyncio.CancelledError
