"""A local Mosquitto for development, `voltbus up`, tests and benchmarks.

Runs the system's `mosquitto` binary with a config generated from the contract (password file,
ACL, persistence, TCP_NODELAY) in a directory of its own, on a loopback port.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from voltbus_common.broker import make_secrets, render_acl, render_config, write_password_file
from voltbus_common.channels import DEFAULT_ROOT


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.02)


class LocalMosquitto:
    """A Mosquitto process with voltbus's users and ACL in `directory`."""

    def __init__(self, directory: Path, *, port: int | None = None, root: str = DEFAULT_ROOT,
                 secrets_dir: Path | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.root = root
        self.secrets_dir = secrets_dir or directory / "secrets"
        self.process: subprocess.Popen[bytes] | None = None
        self.passwords: dict[str, str] = {}

    @staticmethod
    def binary() -> str | None:
        """The mosquitto binary, if installed."""
        return shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
            None)

    def prepare(self) -> Path:
        """Write secrets, password file, ACL and config; return the config path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "data").mkdir(exist_ok=True)
        self.passwords = make_secrets(self.secrets_dir)
        write_password_file(self.directory / "passwd", self.passwords)
        (self.directory / "acl").write_text(render_acl(self.root))
        config = self.directory / "mosquitto.conf"
        run_as = "root" if os.geteuid() == 0 else None  # as root it would drop to `mosquitto`
        config.write_text(render_config(
            port=self.port, data_dir=self.directory / "data",
            password_file=self.directory / "passwd", acl_file=self.directory / "acl",
            log_file=self.directory / "mosquitto.log", user=run_as))
        return config

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart) the broker and wait until it accepts connections."""
        binary = self.binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        config = self.directory / "mosquitto.conf"
        if not config.exists():
            self.prepare()
        self.process = subprocess.Popen([binary, "-c", str(config)], start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            log = self.directory / "mosquitto.log"
            said = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"mosquitto did not start: {said}") from None

    def stop(self) -> None:
        """Stop the broker (SIGTERM, so it saves its persistence file)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the broker: a crash, nothing saved since the last autosave."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, *, crash: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL when crash) and start again on the same port."""
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()

    def env(self, user: str) -> dict[str, str]:
        """VOLTBUS_MQTT_* environment for a process that connects as `user`."""
        return {
            "VOLTBUS_MQTT_HOST": "127.0.0.1",
            "VOLTBUS_MQTT_PORT": str(self.port),
            "VOLTBUS_MQTT_USERNAME": user,
            "VOLTBUS_MQTT_PASSWORD_FILE": str(self.secrets_dir / f"mqtt_{user}"),
            "VOLTBUS_ROOT": self.root,
        }


class EmbeddedBroker(LocalMosquitto):
    """amqtt in its own virtualenv, with the same users and ACL: for machines without Mosquitto.

    About half Mosquitto's speed and no persistence across restarts; good enough to try voltbus.
    """

    def __init__(self, directory: Path, *, tools_dir: Path, port: int | None = None,
                 root: str = DEFAULT_ROOT, secrets_dir: Path | None = None) -> None:
        super().__init__(directory, port=port, root=root, secrets_dir=secrets_dir)
        self.tools_dir = tools_dir

    def _python(self) -> Path:
        venv = self.tools_dir / "amqtt"
        python = venv / "bin" / "python"
        if not python.exists():
            import sys

            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "amqtt>=0.11,<0.13"],
                           check=True)
        return python

    def prepare(self) -> Path:
        """Write secrets and the launcher's spec; return the spec path."""
        from voltbus_common.broker import acl_rules
        from voltbus_common.private_files import write_private

        self.directory.mkdir(parents=True, exist_ok=True)
        self.passwords = make_secrets(self.secrets_dir)
        rules = acl_rules(self.root)
        spec = self.directory / "amqtt.json"
        write_private(spec, json.dumps({  # it holds every user's password
            "port": self.port, "workdir": str(self.directory), "users": self.passwords,
            "subscribe_acl": {u: r["read"] for u, r in rules.items()},
            "publish_acl": {u: r["write"] for u, r in rules.items()},
        }))
        return spec

    def start(self, timeout: float = 60.0) -> None:
        """Start amqtt (installing it into tools_dir on first use)."""
        spec = self.directory / "amqtt.json"
        if not spec.exists():
            self.prepare()
        launcher = Path(__file__).parent / "embedded" / "amqtt_launcher.py"
        log = open(self.directory / "amqtt.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen([str(self._python()), str(launcher), str(spec)],
                                        stdout=log, stderr=log, start_new_session=True)
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"amqtt did not start; see {self.directory / 'amqtt.log'}") from None
