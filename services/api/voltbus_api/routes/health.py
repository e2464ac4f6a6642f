"""GET /health: open to everyone, so compose healthchecks and monitors need no token."""

from __future__ import annotations

from fastapi import APIRouter, Response

from voltbus_api.deps import ContextDep
from voltbus_api.schemas import ApiHealth, Health
from voltbus_common.enums import ServiceState

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "the API is not connected"}})
async def health(ctx: ContextDep, response: Response) -> Health:
    """The API's MQTT connections and every service's last status, per station."""
    connected = {s: bus.connected.is_set() for s, bus in ctx.buses.items()}
    services = ctx.cache.services()
    for station, ok in connected.items():  # the API's own retained status may lag: report live
        services[station]["api"] = ServiceState.ONLINE if ok else ServiceState.OFFLINE
    recorder = ctx.cache.recorder_health()
    api_ok = all(connected.values())
    all_online = all(v is ServiceState.ONLINE for per in services.values() for v in per.values())
    recorder_ok = all(h.ok for h in recorder.values())
    if not api_ok:
        response.status_code = 503
    return Health(
        status="ok" if api_ok and all_online and recorder_ok else "degraded",
        api=ApiHealth(status=ServiceState.ONLINE if api_ok else ServiceState.OFFLINE,
                      mqtt_connected=connected),
        services=services, recorder=recorder,
    )
