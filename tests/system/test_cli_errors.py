"""The CLI says what really happened: a broker it cannot reach, a station nobody serves, a gateway
that does not answer, bad arguments, a port that is taken. Real Mosquitto, the real CLI process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.cli import app
from voltbus_common.cli.banner import cli_command
from voltbus_common.cli.oneshot import NoAnswer, ask_gateway
from voltbus_common.cli.ports import PortInUse, claim, is_free
from voltbus_common.devbroker import free_port
from voltbus_common.enums import CommandName, ServiceState
from voltbus_common.models import GatewayCommand


def voltbus(*args: str, env: dict[str, str] | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VOLTBUS_")}
    return subprocess.run([sys.executable, "-m", "voltbus_common.cli", *args],
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def bus_env(broker: Broker, user: str = "operator") -> dict[str, str]:
    return {"VOLTBUS_MQTT_HOST": "127.0.0.1", "VOLTBUS_MQTT_PORT": str(broker.port),
            "VOLTBUS_MQTT_USERNAME": user, "VOLTBUS_MQTT_PASSWORD": broker.passwords[user],
            "VOLTBUS_ROOT": broker.root}


def test_an_unreachable_broker_is_named_with_the_reason_at_once() -> None:
    port = free_port()
    started = time.monotonic()
    done = voltbus("cmd", "stop", "1", env={"VOLTBUS_MQTT_PORT": str(port)})
    assert done.returncode == 1
    assert f"cannot reach the MQTT broker at 127.0.0.1:{port}" in done.stderr
    assert "()" not in done.stderr
    assert "refused" in done.stderr.lower(), done.stderr
    assert time.monotonic() - started < 8  # no 10 s wait for a refused connection


def test_a_wrong_password_is_reported_as_such(mosquitto: Broker) -> None:
    env = {**bus_env(mosquitto), "VOLTBUS_MQTT_PASSWORD": "wrong"}
    done = voltbus("sim", "plug", "1", env=env)
    assert done.returncode == 1
    assert "not authori" in done.stderr.lower(), done.stderr


def test_a_command_to_an_unknown_station_says_so_quickly(mosquitto: Broker, station: str) -> None:
    started = time.monotonic()
    done = voltbus("cmd", "stop", "1", "--station", station, env=bus_env(mosquitto))
    assert done.returncode == 1
    assert f"station {station!r} is unknown on this broker" in done.stderr \
        or "no gateway service has ever connected" in done.stderr, done.stderr
    assert "cannot reach" not in done.stderr
    assert time.monotonic() - started < 8

    sim = voltbus("sim", "plug", "1", "--station", station, env=bus_env(mosquitto))
    assert sim.returncode == 1
    assert "hardware service" in sim.stderr, sim.stderr
    assert "sent" not in sim.stdout


async def test_an_online_gateway_that_does_not_answer_is_named(mosquitto: Broker,
                                                              station: str) -> None:
    """The gateway's retained `online` is there, but nothing answers the command."""
    fake = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
               service="gateway")
    fake.publish(ch.SERVICE_STATUS, ServiceState.ONLINE)
    from tests.fixtures.mosquitto import running

    async with running(fake):
        assert await fake.drain(5)
        with pytest.raises(NoAnswer, match=f"gateway of station {station} is online but did "
                                           "not answer stop on connector 1 within 1 s"):
            await ask_gateway(mosquitto.settings("operator", stations=[station]), station, 1,
                              GatewayCommand(command=CommandName.STOP), timeout=1)


def test_arguments_are_checked_and_help_is_clean() -> None:
    """In-process (typer's runner): the same app the `voltbus` script runs, without 8 starts."""
    runner = CliRunner()
    missing = runner.invoke(app, ["cmd", "limit", "1"], prog_name="voltbus")
    assert missing.exit_code == 2
    assert "Missing argument 'amps'" in missing.output
    negative = runner.invoke(app, ["cmd", "limit", "1", "-5"], prog_name="voltbus")
    assert negative.exit_code == 2
    assert "No such option" not in negative.output
    assert "amps" in negative.output
    assert "greater than or equal to 0" in negative.output
    too_much = runner.invoke(app, ["cmd", "limit", "1", "101"], prog_name="voltbus")
    assert too_much.exit_code == 2
    assert "less than or equal to 100" in too_much.output
    for args in (["-h"], ["sim", "-h"], ["cmd", "limit", "-h"], ["sim", "ev", "-h"],
                 ["up", "-h"], ["docs", "--help"]):
        shown = runner.invoke(app, args, prog_name="voltbus")
        assert shown.exit_code == 0, (args, shown.output)
        assert "Usage: voltbus" in shown.output
        assert "<bool>" not in shown.output, args


def test_a_port_in_time_wait_is_free_but_a_listening_one_is_not() -> None:
    port = free_port()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its socket stays in TIME-WAIT
    time.sleep(0.05)
    client.close()
    server.close()
    # The old probe (no SO_REUSEADDR) fails here: what made a second `scripts/up` move.
    with socket.socket() as naive, pytest.raises(OSError, match="in use"):
        naive.bind(("127.0.0.1", port))
    assert is_free(port)
    assert claim(port, "MQTT broker", "--mqtt-port") == port

    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert not is_free(port)
        with pytest.raises(PortInUse, match=f"port {port} \\(MQTT broker\\).*--mqtt-port"):
            claim(port, "MQTT broker", "--mqtt-port")


def test_up_refuses_a_taken_port_loudly_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        done = voltbus("up", "--mqtt-port", str(taken), "--api-port", str(free_port()),
                       "--csms-port", str(free_port()), "--no-influx",
                       env={"VOLTBUS_DATA_DIR": str(tmp_path / "var")})
    assert done.returncode == 1
    assert f"port {taken} (MQTT broker) on 127.0.0.1 is already in use" in done.stderr
    assert "--mqtt-port" in done.stderr
    assert "--join" in done.stderr
    assert not (tmp_path / "var" / "up.json").exists()


def test_the_printed_cli_command_is_one_the_users_shell_can_run(tmp_path: Path) -> None:
    venv_bin = tmp_path / "repo" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "voltbus").touch(mode=0o755)
    repo = tmp_path / "repo"
    (repo / "pyproject.toml").touch()
    elsewhere = tmp_path / "bin"
    elsewhere.mkdir()
    data = repo / "var"
    # `uv run` puts the venv first on PATH; a new terminal does not have it.
    inside_uv_run = f"{venv_bin}:/usr/bin:/bin"
    assert cli_command(cwd=repo, data=data, path=inside_uv_run,
                       venv_bin=venv_bin) == ".venv/bin/voltbus"
    (repo / "var/tools/bin").mkdir(parents=True)
    (repo / "var/tools/bin/uv").touch(mode=0o755)
    assert cli_command(cwd=repo, data=data, path=inside_uv_run,
                       venv_bin=venv_bin) == "var/tools/bin/uv run voltbus"
    (elsewhere / "uv").touch(mode=0o755)
    assert cli_command(cwd=repo, data=data, path=f"{venv_bin}:{elsewhere}",
                       venv_bin=venv_bin) == "uv run voltbus"
    assert cli_command(cwd=repo, data=tmp_path / "state", path=f"{elsewhere}",
                       venv_bin=venv_bin) == f"VOLTBUS_DATA_DIR={tmp_path / 'state'} uv run voltbus"
