"""The OpenAPI document is complete: every route, its errors, and examples for bodies."""

from __future__ import annotations

from pathlib import Path

from voltbus_api.app import create_app
from voltbus_api.settings import ApiSettings


def test_openapi_has_every_route_with_errors_and_examples(tmp_path: Path) -> None:
    spec = create_app(ApiSettings(data_dir=tmp_path, stations=["CP1"])).openapi()
    paths = spec["paths"]
    base = "/api/v1/stations/{station}/connectors/{n}"
    for action in ("start", "stop", "current_limit", "charging", "availability", "unlock"):
        op = paths[f"{base}/{action}"]["post"]
        assert {"200", "404", "409", "422", "503", "504"} <= set(op["responses"]), action
        assert op["summary"], action
        assert op["description"], action
    schemas = spec["components"]["schemas"]
    for body in ("StartBody", "CurrentLimitBody", "ChargingBody", "AvailabilityBody", "Health",
                 "ErrorBody"):
        assert schemas[body]["examples"], body
    assert "/api/v1/health" in paths
    assert "/api/v1/stations/{station}/connectors" in paths
