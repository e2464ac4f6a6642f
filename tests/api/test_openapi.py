"""The OpenAPI document is complete: every route, its errors, and examples for bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voltbus_api.app import create_app
from voltbus_api.settings import ApiSettings


def spec(tmp_path: Path) -> dict[str, Any]:
    return create_app(ApiSettings(data_dir=tmp_path, stations=["CP1"])).openapi()


def test_command_routes_document_their_errors(tmp_path: Path) -> None:
    paths = spec(tmp_path)["paths"]
    base = "/api/v1/stations/{station}/connectors/{n}"
    for action in ("start", "stop", "current_limit", "charging", "availability", "unlock"):
        op = paths[f"{base}/{action}"]["post"]
        assert {"200", "404", "409", "422", "503", "504"} <= set(op["responses"]), action
        assert op["summary"], action
        assert op["description"], action
    for path in ("/api/v1/health", "/api/v1/stations", "/api/v1/sessions", "/api/v1/energy",
                 "/api/v1/reports/{month}.{fmt}", "/api/v1/events", "/api/v1/config",
                 "/api/v1/auth/login", "/api/v1/users", "/api/v1/tokens"):
        assert path in paths, path


def test_every_body_and_main_answer_has_an_example(tmp_path: Path) -> None:
    doc = spec(tmp_path)
    schemas = doc["components"]["schemas"]
    bodies = set()
    for item in doc["paths"].values():
        for op in item.values():
            ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref"))
            if ref:
                bodies.add(ref.rsplit("/", 1)[1])
    assert bodies >= {"StartBody", "CurrentLimitBody", "ChargingBody", "AvailabilityBody",
                      "LoginBody", "NewUser", "NewToken", "PasswordBody"}
    answers = {"Health", "ErrorBody", "StationState", "ConnectorState", "SessionPage",
               "SessionRecord", "EnergyReport", "LoginAnswer", "Me", "UserOut", "TokenOut",
               "PublicConfig"}
    for name in bodies | answers:
        assert schemas[name].get("examples"), name
