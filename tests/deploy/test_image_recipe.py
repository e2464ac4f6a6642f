"""The Dockerfile's recipe without a Docker engine: its inputs exist, and its `uv sync` commands
build a venv from which every service imports, with every package data file in place.

What this cannot show: the base image, the multi-arch build, the Pi I/O libraries (arm64 only)
and the final image size; docs/install-pi.md says how to build and check those on a machine with
Docker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
PACKAGES = {
    "common": "voltbus_common", "services/hardware": "voltbus_hardware",
    "services/ocpp-gateway": "voltbus_ocpp", "services/recorder": "voltbus_recorder",
    "services/api": "voltbus_api", "services/dev-csms": "voltbus_devcsms",
}


def test_every_build_input_exists() -> None:
    sources = re.findall(r"--mount=type=bind,source=([^,]+),", DOCKERFILE)
    copies = [m for m in re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE, re.M) if m != "."]
    assert sources
    for source in [*sources, *copies]:
        assert (REPO / source).exists(), source
    # Every workspace member's pyproject is mounted for the dependency layer.
    members = {str(p.parent.relative_to(REPO)) for p in REPO.glob("services/*/pyproject.toml")}
    assert {str(Path(s).parent) for s in sources if s.endswith("pyproject.toml")} >= (
        members | {"common", "."})
    assert "USER voltbus" in DOCKERFILE
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\} AS runtime", DOCKERFILE, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE


def test_dockerignore_keeps_what_the_build_needs() -> None:
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for needed in ("uv.lock", "pyproject.toml", "common", "services", "mosquitto"):
        assert needed not in ignored
    assert ".env" in ignored
    assert "tests/" in ignored


@pytest.mark.timeout(300)
def test_uv_sync_recipe_builds_a_working_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` tells its children where it is
    assert uv, "uv is not on PATH"
    # The image builds the workspace packages fresh; here uv's cache may hold an older build of
    # the same version (it keys local builds on pyproject.toml), so rebuild them.
    rebuild = [arg for name in ("voltbus-common", "voltbus-hardware", "voltbus-ocpp-gateway",
                                "voltbus-recorder", "voltbus-api", "voltbus-devcsms")
               for arg in ("--reinstall-package", name)]
    for args in (["--no-install-workspace"], ["--no-editable", *rebuild]):
        result = subprocess.run([uv, "sync", "--frozen", "--no-dev", *args], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=240, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
    python = venv / "bin" / "python"
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]:\n"
            "    print(importlib.import_module(m).__file__)")
    modules = [*PACKAGES.values(), "voltbus_common.healthcheck", "voltbus_api.docker_admin"]
    result = subprocess.run([str(python), "-c", code, *modules], capture_output=True, text=True,
                            timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for path in result.stdout.split():
        assert path.startswith(str(venv)), f"{path}: not installed into the venv (editable?)"
    assert (venv / "bin" / "voltbus").exists(), "the voltbus CLI (docs: voltbus sim ...)"
    assert subprocess.run([str(python), "-c", "import pytest"], capture_output=True,
                          check=False).returncode != 0, "dev dependencies leaked into the image"
    # Package data (web page, meter register maps, ...) made it into the wheels.
    site = next((venv / "lib").glob("python3*/site-packages"))
    for source_dir, package in PACKAGES.items():
        for data in (REPO / source_dir / package).rglob("*"):
            if data.is_file() and data.suffix not in (".py", ".pyc") and (
                    "__pycache__" not in data.parts):
                rel = data.relative_to(REPO / source_dir)
                assert (site / rel).exists(), f"{rel} is missing from the installed package"
