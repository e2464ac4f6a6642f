"""The opt-in container admin (services/api/voltbus_api/docker_admin.py) against a stand-in engine.

The real Docker SDK talks HTTP over a unix socket to tests/deploy/docker_engine.py, which keeps
containers and images in memory; the router runs in a FastAPI app through httpx.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.deploy.docker_engine import Engine
from voltbus_api.docker_admin import DockerAdmin, DockerAdminSettings, create_router

PROJECT = "voltbus"
REF = "ghcr.io/example/voltbus:latest"


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = Engine()
    with tempfile.TemporaryDirectory(prefix="dk") as tmp:  # short: unix socket paths are limited
        e.serve(Path(tmp) / "docker.sock")
        e.socket = Path(tmp) / "docker.sock"  # type: ignore[attr-defined]
        yield e
        e.close()


@pytest.fixture
def stack(engine: Engine) -> dict[str, str]:
    engine.add_image(REF, env=["PATH=/opt/venv/bin:/usr/bin", "VOLTBUS_DATA_DIR=/var/lib/voltbus"])
    engine.add_image("eclipse-mosquitto:2")
    ids = {s: engine.add_container(PROJECT, s, REF, env=[f"VOLTBUS_MQTT_USERNAME={s}"])
           for s in ("gateway", "api", "recorder")}
    ids["mosquitto"] = engine.add_container(PROJECT, "mosquitto", "eclipse-mosquitto:2")
    engine.add_container("otherproject", "gateway", REF)  # never listed, never touched
    return ids


@pytest.fixture
async def http(engine: Engine, stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    admin = DockerAdmin(url=f"unix://{engine.socket}", project=PROJECT,  # type: ignore[attr-defined]
                        stop_timeout_s=5, self_id=stack["api"][:12])
    app = FastAPI()
    app.include_router(create_router(admin), prefix="/api/v1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as client:
        yield client


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOLTBUS_API_DOCKER_ADMIN", raising=False)
    assert DockerAdminSettings().admin is False
    monkeypatch.setenv("VOLTBUS_API_DOCKER_ADMIN", "true")
    assert DockerAdminSettings().admin is True


async def test_lists_only_the_projects_containers(http: httpx.AsyncClient,
                                                  stack: dict[str, str]) -> None:
    response = await http.get("/api/v1/admin/containers")
    assert response.status_code == 200
    listed = response.json()
    assert [c["service"] for c in listed] == ["api", "gateway", "mosquitto", "recorder"]
    api = next(c for c in listed if c["service"] == "api")
    assert api["is_self"] is True
    assert api["id"] == stack["api"][:12]
    assert {c["health"] for c in listed} == {"healthy"}


async def test_restart(http: httpx.AsyncClient, engine: Engine, stack: dict[str, str]) -> None:
    response = await http.post("/api/v1/admin/containers/gateway/restart")
    assert response.status_code == 200
    assert response.json()["result"] == "restarted"
    assert ("POST", f"/containers/{stack['gateway']}/restart") in engine.calls
    restarted = [p for m, p in engine.calls if p.endswith("/restart")]
    assert restarted == [f"/containers/{stack['gateway']}/restart"]


async def test_restarting_itself_answers_first(http: httpx.AsyncClient, engine: Engine,
                                               stack: dict[str, str]) -> None:
    response = await http.post("/api/v1/admin/containers/api/restart")
    assert response.status_code == 202
    assert response.json()["result"] == "restarting"
    assert ("POST", f"/containers/{stack['api']}/restart") in engine.calls  # after the answer


async def test_update_when_nothing_new(http: httpx.AsyncClient, engine: Engine) -> None:
    response = await http.post("/api/v1/admin/containers/gateway/update")
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "up_to_date"
    assert ("POST", "/images/create") in engine.calls
    assert not engine.created


async def test_update_recreates_from_the_new_image(http: httpx.AsyncClient, engine: Engine,
                                                   stack: dict[str, str]) -> None:
    new_image = engine.publish(REF, env=["PATH=/opt/venv/bin:/usr/bin", "NEW_IMAGE_VAR=1"])
    old = engine.containers[stack["gateway"]]
    response = await http.post("/api/v1/admin/containers/gateway/update")
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "updated"
    # The old container is gone; a new one with the same name runs the new image.
    assert stack["gateway"] not in engine.containers
    new = engine.by_name("voltbus-gateway-1")
    assert new["Image"] == new_image
    assert new["State"]["Status"] == "running"
    created = engine.created[0]
    assert created["name"] == "voltbus-gateway-1"
    assert created["Image"] == REF
    assert created["Cmd"] == old["Config"]["Cmd"]
    assert created["Labels"] == old["Config"]["Labels"]
    assert created["HostConfig"] == old["HostConfig"]
    assert created["NetworkingConfig"]["EndpointsConfig"]["voltbus_default"]["Aliases"] == [
        "gateway"]
    # The container's own settings survive; the old image's environment does not.
    assert created["Env"] == ["VOLTBUS_MQTT_USERNAME=gateway"]
    # The secret compose copied into the old container was copied into the new one, before start.
    new_id = next(cid for cid, c in engine.containers.items() if c is new)
    assert engine.files[new_id] == {"/run/secrets/mqtt_gateway": b"pw-gateway\n"}
    order = [(m, p.split("/")[-1]) for m, p in engine.calls if m != "GET"]
    assert order[-6:] == [("POST", "stop"), ("POST", "rename"), ("POST", "create"),
                          ("PUT", "archive"), ("POST", "start"), ("DELETE", stack["gateway"])]


@pytest.mark.expected_errors
async def test_failed_recreate_restores_the_old_container(
    http: httpx.AsyncClient, engine: Engine, stack: dict[str, str]
) -> None:
    engine.publish(REF)
    engine.fail[("POST", "/containers/create")] = (500, "no space left on device")
    response = await http.post("/api/v1/admin/containers/gateway/update")
    assert response.status_code == 502
    assert "no space left on device" in response.json()["detail"]
    old = engine.containers[stack["gateway"]]
    assert old["Name"] == "/voltbus-gateway-1"
    assert old["State"]["Status"] == "running"


async def test_refusals_and_errors(http: httpx.AsyncClient, engine: Engine) -> None:
    response = await http.post("/api/v1/admin/containers/api/update")
    assert response.status_code == 409
    assert "docker compose pull api" in response.json()["detail"]
    response = await http.post("/api/v1/admin/containers/nope/restart")
    assert response.status_code == 404
    # A locally built image that no registry has: the engine's refusal, in words.
    engine.registry.pop(REF)
    response = await http.post("/api/v1/admin/containers/recorder/update")
    assert response.status_code == 502
    assert "pull access denied" in response.json()["detail"]


async def test_unreachable_engine(tmp_path: Path) -> None:
    admin = DockerAdmin(url=f"unix://{tmp_path}/missing.sock", project=PROJECT, self_id="")
    app = FastAPI()
    app.include_router(create_router(admin), prefix="/api/v1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as client:
        response = await client.get("/api/v1/admin/containers")
    assert response.status_code == 503
    assert "not reachable" in response.json()["detail"]
