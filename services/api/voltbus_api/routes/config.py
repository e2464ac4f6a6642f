"""GET /config: the non-secret configuration, so a user can see what the service runs with."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from voltbus_api.deps import ContextDep
from voltbus_api.schemas import error_responses

router = APIRouter(tags=["config"])


class PublicConfig(BaseModel):
    """Settings without secrets (notification URLs show only their scheme)."""

    stations: list[str]
    root: str
    mqtt_host: str
    mqtt_port: int
    mqtt_tls: bool
    command_timeout_s: float
    price_per_kwh: float
    currency: str
    timezone: str
    influx_api: int
    influx_url: str | None
    influx_database_or_bucket: str | None
    notify_schemes: list[str]
    notify_ocpp_lost_min: float
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "stations": ["CP1"], "root": "voltbus/v1", "mqtt_host": "mosquitto", "mqtt_port": 1883,
        "mqtt_tls": False, "command_timeout_s": 10.0, "price_per_kwh": 0.3, "currency": "EUR",
        "timezone": "Europe/Berlin", "influx_api": 1, "influx_url": "http://influxdb:8086",
        "influx_database_or_bucket": "voltbus", "notify_schemes": ["ntfy"],
        "notify_ocpp_lost_min": 5.0}]})


@router.get("/config", response_model=PublicConfig, responses=error_responses(401))
async def config(ctx: ContextDep) -> PublicConfig:
    """What this API service runs with."""
    s = ctx.settings
    return PublicConfig(
        stations=s.stations, root=s.root, mqtt_host=s.mqtt_host, mqtt_port=s.mqtt_port,
        mqtt_tls=s.mqtt_tls, command_timeout_s=s.api_command_timeout_s,
        price_per_kwh=s.api_price_per_kwh, currency=s.api_currency, timezone=s.api_timezone,
        influx_api=s.influx_api, influx_url=s.influx_url,
        influx_database_or_bucket=(s.influx_database if s.influx_api == 1 else s.influx_bucket)
        if s.influx_url else None,
        notify_schemes=[u.split(":", 1)[0] for u in s.api_notify_urls],
        notify_ocpp_lost_min=s.api_notify_ocpp_lost_min)
