"""A stand-in Docker Engine: the few endpoints docker_admin uses, over HTTP on a unix socket.

It keeps containers and images in memory and records every call, so tests see exactly what the
Docker SDK asked the engine to do. Not a mock of the SDK: the real `docker` client talks HTTP to
it the way it talks to dockerd.
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import re
import socketserver
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def new_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


class Engine:
    """In-memory engine state; `serve(path)` answers on a unix socket."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}  # id -> attrs
        self.tags: dict[str, str] = {}  # "repo:tag" -> image id
        self.registry: dict[str, str] = {}  # what a pull would fetch: "repo:tag" -> image id
        self.calls: list[tuple[str, str]] = []
        self.created: list[dict[str, Any]] = []
        self.fail: dict[tuple[str, str], tuple[int, str]] = {}
        self.files: dict[str, dict[str, bytes]] = {}  # container id -> {absolute path: content}
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    # --- building the scene ----------------------------------------------------------------
    def add_image(self, ref: str, env: list[str] | None = None) -> str:
        image_id = "sha256:" + new_id()
        self.images[image_id] = {"Id": image_id, "RepoTags": [ref],
                                 "Config": {"Env": env or ["PATH=/usr/bin"]}}
        self.tags[ref] = image_id
        self.registry.setdefault(ref, image_id)
        return image_id

    def add_container(self, project: str, service: str, ref: str, *,
                      env: list[str] | None = None, cid: str | None = None) -> str:
        cid = cid or new_id()
        image_id = self.tags[ref]
        image_env = self.images[image_id]["Config"]["Env"]
        self.containers[cid] = {
            "Id": cid, "Name": f"/{project}-{service}-1", "Image": image_id,
            "Config": {"Image": ref, "Cmd": ["python", "-m", f"voltbus_{service}"],
                       "Entrypoint": None, "User": "", "WorkingDir": "/var/lib/voltbus",
                       "Env": [*image_env, *(env or [])],
                       "Labels": {"com.docker.compose.project": project,
                                  "com.docker.compose.service": service},
                       "Healthcheck": {"Test": ["CMD", "true"]}},
            "State": {"Status": "running", "Running": True, "Health": {"Status": "healthy"}},
            "HostConfig": {"Binds": [f"{project}_data:/var/lib/voltbus"],
                           "RestartPolicy": {"Name": "unless-stopped"}},
            "NetworkSettings": {"Networks": {f"{project}_default": {"Aliases": [service]}}},
        }
        # What compose copies in after create: the service's secret from the environment.
        self.files[cid] = {f"/run/secrets/mqtt_{service}": f"pw-{service}\n".encode()}
        return cid

    def publish(self, ref: str, env: list[str] | None = None) -> str:
        """A newer image appears in the registry under ref."""
        image_id = "sha256:" + new_id()
        self.images[image_id] = {"Id": image_id, "RepoTags": [],
                                 "Config": {"Env": env or ["PATH=/usr/bin"]}}
        self.registry[ref] = image_id
        return image_id

    def by_name(self, name: str) -> dict[str, Any]:
        return next(c for c in self.containers.values() if c["Name"] == f"/{name}")

    # --- serving ---------------------------------------------------------------------------
    def serve(self, path: Path) -> None:
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, code: int, body: object = None, *, lines: bool = False,
                        headers: dict[str, str] | None = None) -> None:
                if isinstance(body, bytes):
                    data = body
                elif lines and isinstance(body, list):
                    data = b"".join(json.dumps(x).encode() + b"\r\n" for x in body)
                else:
                    data = b"" if body is None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                path = re.sub(r"^/v[\d.]+", "", url.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body: Any = raw if method == "PUT" else (json.loads(raw) if raw else None)
                engine.calls.append((method, path))
                failure = engine.fail.get((method, path))
                if failure:
                    self._answer(failure[0], {"message": failure[1]})
                    return
                try:
                    code, answer, lines = engine.route(method, path, query, body)
                except KeyError as exc:
                    self._answer(404, {"message": f"No such object: {exc}"})
                    return
                headers = {}
                if isinstance(answer, tuple):  # an archive: (tar bytes, stat)
                    answer, stat = answer
                    headers["X-Docker-Container-Path-Stat"] = base64.b64encode(
                        json.dumps(stat).encode()).decode()
                self._answer(code, answer, lines=lines, headers=headers)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self._server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _container(self, ident: str) -> dict[str, Any]:
        for cid, c in self.containers.items():
            if cid.startswith(ident) or c["Name"] == f"/{ident}":
                return c
        raise KeyError(ident)

    def route(self, method: str, path: str, query: dict[str, str],
              body: Any) -> tuple[int, Any, bool]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["containers", "json"] and method == "GET":
            wanted = json.loads(query.get("filters", "{}")).get("label", [])
            found = [c for c in self.containers.values()
                     if all("=".join(kv) in {f"{k}={v}" for k, v in c["Config"]["Labels"].items()}
                            for kv in (w.split("=", 1) for w in wanted))]
            return 200, [{"Id": c["Id"], "Names": [c["Name"]], "Image": c["Config"]["Image"],
                          "Labels": c["Config"]["Labels"], "State": c["State"]["Status"]}
                         for c in found], False
        if parts == ["containers", "create"] and method == "POST":
            cid = new_id()
            self.created.append({"name": query.get("name"), **body})
            image_id = self.tags[body["Image"]]
            self.containers[cid] = {
                "Id": cid, "Name": f"/{query['name']}", "Image": image_id,
                "Config": {"Image": body["Image"], "Cmd": body.get("Cmd"), "Env": body.get("Env"),
                           "Labels": body.get("Labels") or {}},
                "State": {"Status": "created", "Running": False},
                "HostConfig": body.get("HostConfig"), "NetworkSettings": {"Networks": {}}}
            return 201, {"Id": cid, "Warnings": []}, False
        if parts[0] == "containers" and len(parts) >= 2:
            c = self._container(parts[1])
            action = parts[2] if len(parts) > 2 else ""
            if method == "GET" and action == "json":
                return 200, c, False
            if method == "DELETE" and action == "":
                del self.containers[c["Id"]]
                return 204, None, False
            if method == "POST" and action in ("restart", "start"):
                c["State"] = {"Status": "running", "Running": True}
                return 204, None, False
            if method == "POST" and action == "stop":
                c["State"] = {"Status": "exited", "Running": False}
                return 204, None, False
            if action == "archive":
                return self._archive(c["Id"], method, query["path"], body)
            if method == "POST" and action == "rename":
                c["Name"] = "/" + query["name"]
                return 204, None, False
        if parts == ["images", "create"] and method == "POST":
            ref = f"{query['fromImage']}:{query.get('tag') or 'latest'}"
            if ref not in self.registry:
                return 404, {"message": f"pull access denied for {query['fromImage']}"}, False
            self.tags[ref] = self.registry[ref]
            return 200, [{"status": "Pulling from " + query["fromImage"]},
                         {"status": "Digest: " + self.registry[ref]}], True
        if parts[0] == "images" and parts[-1] == "json" and method == "GET":
            name = "/".join(parts[1:-1])
            image_id = self.tags.get(name, name)
            return 200, self.images[image_id], False
        return 404, {"message": f"page not found: {method} {path}"}, False

    def _archive(self, cid: str, method: str, path: str, body: Any) -> tuple[int, Any, bool]:
        """GET: a tar of path (its base name at the top); PUT: extract a tar under path."""
        files = self.files.setdefault(cid, {})
        if method == "GET":
            found = {p: data for p, data in files.items() if p == path or p.startswith(path + "/")}
            if not found:
                return 404, {"message": f"Could not find the file {path} in container"}, False
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                base = posixpath.dirname(path.rstrip("/"))
                for name, data in found.items():
                    info = tarfile.TarInfo(posixpath.relpath(name, base))
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            stat = {"name": posixpath.basename(path), "size": 0, "mode": 0o755 | 0x80000000}
            return 200, (buffer.getvalue(), stat), False
        with tarfile.open(fileobj=io.BytesIO(body), mode="r") as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[posixpath.join(path, member.name)] = extracted.read()
        return 200, None, False
