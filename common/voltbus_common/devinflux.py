"""A local InfluxDB 1.x (Debian's `influxdb`) for `voltbus up` and benchmarks, on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from voltbus_common.devbroker import free_port

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  retention-autocreate = true
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[monitor]
  store-enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[subscriber]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


class LocalInfluxDB:
    """An `influxd` 1.x process with its data in `directory`, HTTP on 127.0.0.1:port."""

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The HTTP base URL."""
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str | None:
        """The influxd binary, if installed."""
        return shutil.which("influxd") or (
            "/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)

    def _config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "influxdb.conf"
        config.write_text(_CONFIG.format(root=self.directory, port=self.port,
                                         rpc_port=self.rpc_port))
        return config

    def _popen_options(self) -> dict[str, Any]:
        """Extra subprocess.Popen options (its own session: a terminal Ctrl-C is not for it)."""
        return {"start_new_session": True}

    def start(self, timeout: float = 30.0) -> None:
        """Start influxd and wait until /ping answers."""
        binary = self.binary()
        if binary is None:
            raise FileNotFoundError("influxd is not installed (apt-get install influxdb)")
        config = self._config()
        log = open(self.directory / "influxd.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen([binary, "-config", str(config)],
                                        stdout=log, stderr=log, **self._popen_options())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"influxd did not start; see {self.directory / 'influxd.log'}")

    def kill(self) -> None:
        """SIGKILL influxd: a crash or power cut, only what its WAL holds survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop influxd."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
