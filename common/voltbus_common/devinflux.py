"""A local InfluxDB 1.x (Debian's `influxdb`) for `voltbus up` and benchmarks, on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from voltbus_common.devbroker import free_port


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
        d = self.directory
        config = d / "influxdb.conf"
        config.write_text(
            'reporting-disabled = true\n'
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[monitor]\n  store-enabled = false\n'
        )
        return config

    def start(self, timeout: float = 30.0) -> None:
        """Start influxd and wait until /ping answers."""
        binary = self.binary()
        if binary is None:
            raise FileNotFoundError("influxd is not installed (apt-get install influxdb)")
        config = self._config()
        log = open(self.directory / "influxd.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen([binary, "-config", str(config)],
                                        stdout=log, stderr=log, start_new_session=True)
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
