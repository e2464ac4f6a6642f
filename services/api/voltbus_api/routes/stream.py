"""GET /events: Server-Sent Events of every state change (the web page's live view)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from voltbus_api.deps import ContextDep, StateDep
from voltbus_api.state_cache import Change

router = APIRouter(tags=["live"])
KEEPALIVE_S = 15.0


@router.get("/events", response_class=EventSourceResponse)
async def events(cache: StateDep, ctx: ContextDep) -> AsyncIterator[ServerSentEvent]:
    """First a `snapshot` event (every station), then one `change` event per state change.

    A client that falls behind by 1000 changes gets a `resync` event and the stream ends; the
    browser's EventSource reconnects and gets a fresh snapshot. The stream also ends when the
    service shuts down, so a stop never waits for open browsers.
    """
    queue = cache.subscribe()
    closing = asyncio.ensure_future(ctx.closing.wait())
    getter: asyncio.Future[Change | None] | None = None
    try:
        yield ServerSentEvent(event="snapshot", data=[
            cache.station(s).model_dump(mode="json") for s in cache.stations])
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, closing}, timeout=KEEPALIVE_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if closing in done:
                    return
                yield ServerSentEvent(comment="keep-alive")
                continue
            change = getter.result()
            if change is None:
                yield ServerSentEvent(event="resync", data={})
                return
            yield ServerSentEvent(event="change", data=change.model_dump(mode="json"))
    finally:  # a browser that goes away cancels us inside wait(): the getter must not linger
        if getter is not None:
            getter.cancel()
        closing.cancel()
        cache.unsubscribe(queue)
