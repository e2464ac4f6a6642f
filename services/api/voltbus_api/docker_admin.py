"""Opt-in admin action: list, restart and update the stack's containers through the Docker SDK.

Oppleo and ChargePi (with Watchtower) users restart and update their charger from the web page.
This does the same over the Docker engine's socket, for the containers of one compose project
only. It is OFF by default: whoever can call it can replace any container of the stack, and the
socket it needs is root on the host (docs/install-pi.md, "Restart and update from the web page").

Enable with VOLTBUS_API_DOCKER_ADMIN=true and mount the socket into the api container. Mount the
router (admin role only) with `create_router(DockerAdmin.from_settings(settings))`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
API_VERSION = "1.41"  # Docker 20.10 and newer; pinned so the client does not probe /version
# Files compose copies into a container after creating it (secrets whose source is an environment
# variable): not part of the container's configuration, so a recreated container needs a copy.
INJECTED_DIRS = ("/run/secrets",)


class DockerAdminSettings(BaseSettings):
    """VOLTBUS_API_DOCKER_ADMIN (off by default), _URL (the engine socket), _PROJECT."""

    model_config = SettingsConfigDict(env_prefix="VOLTBUS_API_DOCKER_", extra="ignore")

    admin: bool = False
    url: str = "unix:///var/run/docker.sock"
    project: str = Field(default="voltbus", min_length=1)
    stop_timeout_s: int = Field(default=30, ge=1, le=600)


class ContainerOut(BaseModel):
    """One container of the stack."""

    service: str
    name: str
    id: str
    image: str
    state: str
    health: str | None = None
    is_self: bool = False


class ActionResult(BaseModel):
    """What a restart or update did."""

    service: str
    action: Literal["restart", "update"]
    result: Literal["restarted", "restarting", "updated", "up_to_date"]
    image: str
    detail: str


class ActionRefused(Exception):
    """An action that must not run (the message says why)."""


class DockerAdmin:
    """Restart and update the containers of one compose project; blocking, so call in a thread."""

    def __init__(self, *, url: str, project: str, stop_timeout_s: int = 30,
                 self_id: str | None = None) -> None:
        self.url = url
        self.project = project
        self.stop_timeout_s = stop_timeout_s
        # Docker sets a container's hostname to its short id unless compose sets another.
        self.self_id = self_id if self_id is not None else os.environ.get("HOSTNAME", "")
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: DockerAdminSettings) -> DockerAdmin:
        """The admin for these settings."""
        return cls(url=settings.url, project=settings.project,
                   stop_timeout_s=settings.stop_timeout_s)

    @property
    def client(self) -> Any:
        """The Docker client, connected on first use."""
        if self._client is None:
            import docker  # type: ignore[import-untyped,unused-ignore]

            self._client = docker.DockerClient(base_url=self.url, version=API_VERSION, timeout=60)
        return self._client

    def _is_self(self, container: Any) -> bool:
        return bool(self.self_id) and str(container.id).startswith(self.self_id)

    def _containers(self) -> list[Any]:
        return list(self.client.containers.list(
            all=True, filters={"label": [f"{PROJECT_LABEL}={self.project}"]}))

    def _find(self, service: str) -> Any:
        for container in self._containers():
            if container.labels.get(SERVICE_LABEL) == service:
                return container
        raise KeyError(service)

    def list(self) -> list[ContainerOut]:
        """The project's containers, by service name."""
        out = []
        for c in self._containers():
            state = c.attrs.get("State", {})
            out.append(ContainerOut(
                service=c.labels.get(SERVICE_LABEL, "?"), name=c.name, id=c.id[:12],
                image=c.attrs.get("Config", {}).get("Image", ""),
                state=state.get("Status", "unknown"),
                health=(state.get("Health") or {}).get("Status"), is_self=self._is_self(c)))
        return sorted(out, key=lambda c: c.service)

    def restart(self, service: str) -> ActionResult:
        """Restart a service's container (stop with its timeout, then start)."""
        container = self._find(service)
        log.warning("admin: restarting container %s (service %s)", container.name, service)
        container.restart(timeout=self.stop_timeout_s)
        return ActionResult(service=service, action="restart", result="restarted",
                            image=container.attrs["Config"]["Image"], detail="restarted")

    def is_self(self, service: str) -> bool:
        """Whether the service's container is the one running this API."""
        return self._is_self(self._find(service))

    def update(self, service: str) -> ActionResult:
        """Pull the service's image; if it changed, recreate the container from the new one."""
        old = self._find(service)
        if self._is_self(old):
            raise ActionRefused("the API cannot replace its own container; on the host run "
                                "`docker compose pull api && docker compose up -d api`")
        from docker.utils import parse_repository_tag  # type: ignore[import-untyped,unused-ignore]

        ref = old.attrs["Config"]["Image"]
        repository, tag = parse_repository_tag(ref)
        log.warning("admin: pulling %s for service %s", ref, service)
        image = self.client.images.pull(repository, tag=tag or "latest")
        if image.id == old.attrs["Image"]:
            return ActionResult(service=service, action="update", result="up_to_date", image=ref,
                                detail=f"{ref} is already the newest image")
        self._recreate(old, ref)
        return ActionResult(service=service, action="update", result="updated", image=ref,
                            detail=f"recreated from {image.id[:19]}")

    def _create_args(self, old: Any, ref: str) -> dict[str, Any]:
        """The old container's own configuration, on the new image (as `compose up` would)."""
        from docker.errors import NotFound  # type: ignore[import-untyped,unused-ignore]

        attrs = old.attrs
        cfg = attrs["Config"]
        try:  # environment that came from the old image is the new image's business
            image_env = set(self.client.images.get(attrs["Image"]).attrs["Config"].get("Env")
                            or [])
        except NotFound:
            image_env = set()
        networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
        return {
            "image": ref, "name": attrs["Name"].lstrip("/"), "command": cfg.get("Cmd"),
            "entrypoint": cfg.get("Entrypoint"), "user": cfg.get("User") or None,
            "working_dir": cfg.get("WorkingDir") or None, "labels": cfg.get("Labels") or {},
            "environment": [e for e in cfg.get("Env") or [] if e not in image_env],
            "healthcheck": cfg.get("Healthcheck"), "host_config": attrs["HostConfig"],
            "networking_config": {"EndpointsConfig": {
                name: {"Aliases": ep.get("Aliases")} for name, ep in networks.items()}},
        }

    def _copy_injected(self, old: Any, new_id: str) -> None:
        _copy_injected_dirs(self.client, old, new_id)

    def _recreate(self, old: Any, ref: str) -> None:
        """Set the old container aside, start the new one; on error put the old one back."""
        from docker.errors import DockerException  # type: ignore[import-untyped,unused-ignore]

        api = self.client.api
        args = self._create_args(old, ref)
        name = args["name"]
        old.stop(timeout=self.stop_timeout_s)
        old.rename(f"{name}-replaced-{old.id[:12]}")
        new_id = None
        try:
            new_id = api.create_container(**args)["Id"]
            self._copy_injected(old, new_id)
            api.start(new_id)
        except DockerException:
            log.exception("admin: recreating %s failed; restoring the old container", name)
            if new_id is not None:
                api.remove_container(new_id, force=True)
            old.rename(name)
            old.start()
            raise
        old.remove()
        log.warning("admin: %s now runs %s (%s)", name, ref, str(new_id)[:12])


def _copy_injected_dirs(client: Any, old: Any, new_id: str) -> None:
    """Copy what compose injected into the old container (INJECTED_DIRS) into the new one."""
    from docker.errors import NotFound  # type: ignore[import-untyped,unused-ignore]

    for path in INJECTED_DIRS:
        try:
            chunks, _ = old.get_archive(path)
        except NotFound:
            continue
        client.api.put_archive(new_id, os.path.dirname(path), b"".join(chunks))


def create_router(admin: DockerAdmin) -> APIRouter:
    """GET /admin/containers, POST /admin/containers/{service}/restart and /update.

    Mount it only when enabled, behind the admin role:
    `app.include_router(create_router(admin), prefix="/api/v1", dependencies=admin_deps)`.
    """
    # The Docker SDK (and requests) load only when the admin routes are mounted.
    from docker.errors import APIError, DockerException  # type: ignore[import-untyped,unused-ignore]
    from requests import RequestException  # type: ignore[import-untyped,unused-ignore]

    router = APIRouter(prefix="/admin/containers", tags=["admin"])
    lock = asyncio.Lock()  # one action at a time: two updates of one service would race

    async def call(fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except KeyError:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"no service {args[0]!r} in compose project "
                                f"{admin.project!r}") from None
        except ActionRefused as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        except APIError as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY,
                                f"the Docker engine refused: {exc.explanation or exc}") from None
        except (DockerException, RequestException) as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                f"the Docker engine at {admin.url} is not reachable: {exc}"
                                ) from None

    @router.get("", response_model=list[ContainerOut])
    async def list_containers() -> list[ContainerOut]:
        """The stack's containers with state and health."""
        result: list[ContainerOut] = await call(admin.list)
        return result

    @router.post("/{service}/restart", response_model=ActionResult,
                 responses={202: {"model": ActionResult}})
    async def restart(service: str, background: BackgroundTasks) -> Any:
        """Restart one service's container (the API's own: after this answer is sent)."""
        async with lock:
            if await call(admin.is_self, service):
                background.add_task(asyncio.to_thread, admin.restart, service)
                body = ActionResult(service=service, action="restart", result="restarting",
                                    image="", detail="the API restarts after this answer")
                return JSONResponse(body.model_dump(), status_code=status.HTTP_202_ACCEPTED)
            return await call(admin.restart, service)

    @router.post("/{service}/update", response_model=ActionResult)
    async def update(service: str) -> ActionResult:
        """Pull the service's image and recreate its container when the image changed."""
        async with lock:
            result: ActionResult = await call(admin.update, service)
            return result

    return router
