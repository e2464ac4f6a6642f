"""GET /events: Server-Sent Events of every state change (the web page's live view)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from voltbus_api.deps import StateDep

router = APIRouter(tags=["live"])
KEEPALIVE_S = 15.0


@router.get("/events", response_class=EventSourceResponse)
async def events(cache: StateDep) -> AsyncIterator[ServerSentEvent]:
    """First a `snapshot` event (every station), then one `change` event per state change.

    A client that falls behind by 1000 changes gets a `resync` event and the stream ends; the
    browser's EventSource reconnects and gets a fresh snapshot.
    """
    queue = cache.subscribe()
    try:
        yield ServerSentEvent(event="snapshot", data=[
            cache.station(s).model_dump(mode="json") for s in cache.stations])
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ServerSentEvent(comment="keep-alive")
                continue
            if change is None:
                yield ServerSentEvent(event="resync", data={})
                return
            yield ServerSentEvent(event="change", data=change.model_dump(mode="json"))
    finally:
        cache.unsubscribe(queue)
