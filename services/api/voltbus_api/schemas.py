"""Request and response bodies of the REST API, with the examples OpenAPI shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voltbus_common.enums import ServiceState
from voltbus_common.models import Amps, IdTag, RecorderHealth


class BucketSeries(BaseModel):
    """Means over time in buckets: `ts[i]` (unix seconds, bucket start) has each value `[i]`."""

    source: Literal["influxdb", "local"] = Field(
        description="influxdb, or local: what this API saw on the bus itself (InfluxDB not "
                    "configured, unreachable, or without data for the range)")
    influx_error: str | None = None
    start: datetime
    interval_s: int = Field(description="bucket width; each value is the bucket's mean")
    ts: list[float]


class Body(BaseModel):
    """A request body: unknown fields are an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class StartBody(Body):
    """Remote start: authorise this id tag and start a transaction."""

    id_tag: IdTag = Field(description="OCPP id token, 1..36 printable characters (a station "
                        "speaking OCPP 1.6 takes only 20)")
    model_config = ConfigDict(json_schema_extra={"examples": [{"id_tag": "04A1B2C3"}]})


class CurrentLimitBody(Body):
    """The current the EV may draw per phase; 0 pauses charging."""

    amps: Amps = Field(description="amperes per phase, 0..100")
    model_config = ConfigDict(json_schema_extra={"examples": [{"amps": 16}]})


class ChargingBody(Body):
    """Enable or disable charging on the connector."""

    enabled: bool
    model_config = ConfigDict(json_schema_extra={"examples": [{"enabled": False}]})


class AvailabilityBody(Body):
    """OCPP ChangeAvailability: operative or inoperative."""

    operative: bool
    model_config = ConfigDict(json_schema_extra={"examples": [{"operative": True}]})


class ErrorBody(BaseModel):
    """Every error answer: a sentence for people, plus details for programs."""

    detail: str
    errors: list[dict[str, Any]] | None = None
    result: dict[str, Any] | None = None
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"detail": "station 'CP9' is unknown (this API serves: CP1)"}]})


class ApiHealth(BaseModel):
    """The API's own health: its MQTT connection per station."""

    status: ServiceState
    mqtt_connected: dict[str, bool]


class Health(BaseModel):
    """The API and every service's status topic, per station."""

    status: str = Field(description="ok when the API is connected, every known service is "
                                    "online and the recorder reports ok; otherwise degraded")
    api: ApiHealth
    services: dict[str, dict[str, ServiceState]]
    recorder: dict[str, RecorderHealth] = Field(
        default_factory=dict, description="per station: InfluxDB reachable, spool fill, drops")
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "api": {"status": "online", "mqtt_connected": {"CP1": True}},
        "services": {"CP1": {"hardware": "online", "gateway": "online", "recorder": "online",
                             "api": "online"}}}]})


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error codes a route can return."""
    text = {
        401: "not logged in / no valid token", 403: "the role does not allow this",
        404: "unknown station or connector", 409: "the gateway rejected the command",
        422: "invalid request", 429: "too many attempts", 501: "the gateway does not support it",
        502: "the gateway failed to carry it out", 503: "not connected to the broker or the "
        "gateway is offline", 504: "no answer from the gateway in time",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}
