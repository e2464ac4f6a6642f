"""What `voltbus up` prints once the stack answers: addresses, where secrets are, and a command line
that runs as printed in a new terminal (no `voltbus: command not found`)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def cli_command(*, cwd: Path, data: Path, path: str | None = None,
                venv_bin: Path | None = None) -> str:
    """How to call `voltbus` from a new shell in cwd, so it finds this stack.

    The new shell has the user's PATH, not the one `uv run` gave us (venv_bin first): prefer `uv
    run voltbus` (the README's spelling) if uv is on it, `voltbus` if that is ours, else the path
    of the uv scripts/setup installed, else the venv's script itself.
    """
    venv_bin = venv_bin or Path(sys.executable).parent
    path = os.environ.get("PATH", "") if path is None else path
    user_path = os.pathsep.join(p for p in path.split(os.pathsep)
                                if p and Path(p).resolve() != venv_bin.resolve())
    ours = venv_bin / "voltbus"
    found = shutil.which("voltbus", path=user_path)
    if shutil.which("uv", path=user_path) and (cwd / "pyproject.toml").exists():
        command = "uv run voltbus"
    elif found and Path(found).resolve() == ours.resolve():
        command = "voltbus"
    elif (cwd / "var/tools/bin/uv").exists() and (cwd / "pyproject.toml").exists():
        command = "var/tools/bin/uv run voltbus"
    else:
        command = shlex.quote(_relative(ours, cwd))
    if data.resolve() != (cwd / "var").resolve():  # CLI commands look in ./var by default
        command = f"VOLTBUS_DATA_DIR={shlex.quote(str(data))} {command}"
    return command


def _relative(target: Path, cwd: Path) -> str:
    try:
        return str(target.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(target)


def wait_for_api(api_url: str, timeout: float, keep_alive: Callable[[], None]) -> bool:
    """Poll GET /api/v1/health until the API answers (200 or 503 with a body); False on timeout.

    keep_alive runs between polls (the supervisor restarts what died meanwhile).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/api/v1/health", timeout=2) as answer:
                json.load(answer)
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 503:  # up, its bus connection not yet: the page answers already
                return True
        except (OSError, ValueError):
            pass
        keep_alive()
        time.sleep(0.2)
    return False


@dataclass(frozen=True)
class Banner:
    """The facts the banner states."""

    api_url: str
    mqtt: str
    csms_url: str
    token_file: str
    data: Path
    cli: str
    influx_url: str | None = None
    api_ready: bool = True
    joined: bool = False
    secrets_dir: Path | None = None  # MQTT password files (--join-secrets); default DATA/secrets
    house: str | None = None  # the simulated house (cli/house.py), in words

    def render(self) -> str:
        """The text, ready to print."""
        ready = "" if self.api_ready else (
            "\n  (the API has not answered yet; see the api lines above if it keeps failing)")
        broker = ("MQTT broker        " + self.mqtt +
                  (" (joined; passwords in " if self.joined else " (users and passwords in ") +
                  f"{self.secrets_dir or self.data / 'secrets'})")
        influx = f"\n  InfluxDB           {self.influx_url}" if self.influx_url else ""
        if self.house:
            influx += f"\n  simulated house    {self.house}"
        return f"""
voltbus is up (simulated hardware). Ctrl-C stops everything.{ready}
  web page and API   {self.api_url}/
  API docs           {self.api_url}/api/docs   (schema: {self.api_url}/api/v1/openapi.json)
  admin token        {self.token_file}
  first password     {self.data / 'api' / 'initial-admin-password'} (user admin)
  {broker}
  central system     {self.csms_url}{influx}
In another terminal, in {Path.cwd()}:
  {self.cli} sim plug 1
  {self.cli} sim tap 04A1B2C3
  {self.cli} watch
"""
