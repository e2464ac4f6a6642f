"""`voltbus`: one command for running, simulating and watching a charge point."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.cli.context import client_settings, data_dir
from voltbus_common.cli.oneshot import ask_gateway, publish_once
from voltbus_common.enums import ChargePointErrorCode, CommandName
from voltbus_common.models import GatewayCommand, SimEv, SimFault, SimPlug, SimTap

app = typer.Typer(help="voltbus: a Raspberry Pi EV charge point on MQTT and OCPP.",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False)  # locals may hold secrets
sim = typer.Typer(help="Drive the simulated hardware (plug in, tap a card, ...).",
                  no_args_is_help=True)
cmd = typer.Typer(help="Send a command to the gateway and print its answer.", no_args_is_help=True)
app.add_typer(sim, name="sim")
app.add_typer(cmd, name="cmd")

SERVICES = {
    "hardware": "voltbus_hardware",
    "gateway": "voltbus_ocpp",
    "recorder": "voltbus_recorder",
    "api": "voltbus_api",
    "devcsms": "voltbus_devcsms",
}
StationOpt = Annotated[str | None,
                       typer.Option("--station", "-s", help="station id (default: first)")]
ConnectorArg = Annotated[int, typer.Argument(min=1, help="connector id, from 1")]


def _station(station: str | None) -> str:
    return station or client_settings().stations[0]


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except (TimeoutError, OSError) as exc:
        typer.echo(f"voltbus: cannot reach the bus ({exc or 'timeout'}); is `voltbus up` running?",
                   err=True)
        raise typer.Exit(1) from None


@app.command()
def run(service: Annotated[str, typer.Argument(help=" | ".join(SERVICES))]) -> None:
    """Run one service in the foreground (configured by VOLTBUS_* variables)."""
    module = SERVICES.get(service)
    if module is None:
        typer.echo(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}", err=True)
        raise typer.Exit(2)
    os.execvp(sys.executable, [sys.executable, "-m", module])


@app.command()
def up(
    connectors: Annotated[int, typer.Option(min=1, help="simulated connectors per station")] = 1,
    stations: Annotated[str, typer.Option(help="comma-separated station ids")] = "CP1",
    csms_url: Annotated[str | None, typer.Option(
        envvar="VOLTBUS_CSMS_URL",
        help="central system URL; default: the development CSMS")] = None,
    api_port: Annotated[int, typer.Option(help="web page and REST API port")] = 8080,
    mqtt_port: Annotated[int, typer.Option(help="broker port")] = 1883,
    influx: Annotated[bool, typer.Option(help="start a local InfluxDB 1.x if installed")] = True,
) -> None:
    """Start the stack (broker, InfluxDB, dev central system, four services); Ctrl-C stops it."""
    from voltbus_common.cli.stack import start_stack

    start_stack(connectors=connectors, stations=stations, csms_url=csms_url, api_port=api_port,
                mqtt_port=mqtt_port, influx=influx)


# --- simulator ---------------------------------------------------------------------------------


def _sim(channel: ch.Channel[Any], payload: Any, station: str | None, **args: int) -> None:
    name = _station(station)
    _run(publish_once(client_settings(), name, channel, payload, **args))
    typer.echo(f"sent to {channel.topic(client_settings().root, station=name, **args)}")


@sim.command()
def plug(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Plug the simulated EV in."""
    _sim(ch.SIM_PLUG, SimPlug(plugged=True), station, connector=connector)


@sim.command()
def unplug(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Unplug the simulated EV."""
    _sim(ch.SIM_PLUG, SimPlug(plugged=False), station, connector=connector)


@sim.command()
def tap(id_tag: Annotated[str, typer.Argument(help="card id, e.g. 04A1B2C3")],
        reader: str = "sim", station: StationOpt = None) -> None:
    """Present a card to the simulated RFID reader."""
    _sim(ch.SIM_TAP, SimTap(id_tag=id_tag, reader=reader), station)


@sim.command()
def ev(connector: ConnectorArg = 1,
       max_current: Annotated[float | None, typer.Option(help="A per phase")] = None,
       phases: Annotated[int | None, typer.Option(min=1, max=3)] = None,
       full: Annotated[bool | None, typer.Option("--full/--not-full")] = None,
       station: StationOpt = None) -> None:
    """Change how the simulated EV behaves."""
    _sim(ch.SIM_EV, SimEv(max_current_a=max_current, phases=phases, full=full),  # type: ignore[arg-type,unused-ignore]
         station, connector=connector)


@sim.command()
def fault(connector: ConnectorArg = 1,
          code: Annotated[ChargePointErrorCode,
                          typer.Argument()] = ChargePointErrorCode.GROUND_FAILURE,
          info: str | None = None, station: StationOpt = None) -> None:
    """Inject a hardware fault (NoError clears it)."""
    _sim(ch.SIM_FAULT, SimFault(code=code, info=info), station, connector=connector)


# --- gateway commands --------------------------------------------------------------------------


def _ask(connector: int, command: GatewayCommand, station: str | None) -> None:
    result = _run(ask_gateway(client_settings(), _station(station), connector, command))
    reason = f" ({result.reason})" if result.reason else ""
    typer.echo(f"{result.command}: {result.status}{reason}")
    if result.status != "Accepted":
        raise typer.Exit(1)


@cmd.command()
def start(connector: ConnectorArg = 1, id_tag: Annotated[str, typer.Option()] = "VOLTBUS",
          station: StationOpt = None) -> None:
    """Start charging for an id tag (authorised by the central system)."""
    _ask(connector, GatewayCommand(command=CommandName.START, id_tag=id_tag), station)


@cmd.command()
def stop(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Stop the running transaction."""
    _ask(connector, GatewayCommand(command=CommandName.STOP), station)


@cmd.command()
def limit(connector: ConnectorArg = 1,
          amps: Annotated[float, typer.Argument(min=0, max=100)] = 16.0,
          station: StationOpt = None) -> None:
    """Set the current limit (A per phase; 0 pauses)."""
    _ask(connector, GatewayCommand(command=CommandName.SET_CURRENT_LIMIT, amps=amps), station)


@cmd.command()
def enable(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Allow charging."""
    _ask(connector, GatewayCommand(command=CommandName.ENABLE_CHARGING), station)


@cmd.command()
def disable(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Pause charging (current limit 0) until enabled again."""
    _ask(connector, GatewayCommand(command=CommandName.DISABLE_CHARGING), station)


@cmd.command()
def offpeak_override(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Let the session waiting for the off-peak window charge now (this session only)."""
    _ask(connector, GatewayCommand(command=CommandName.OVERRIDE_OFFPEAK), station)


# --- watching and generated files --------------------------------------------------------------


@app.command()
def watch(station: Annotated[str, typer.Option("--station", "-s")] = "+") -> None:
    """Print every voltbus message as it arrives (Ctrl-C to stop)."""
    settings = client_settings()

    async def main() -> None:
        bus = Bus(settings, station=station, service=None)

        async def show(topic: str, payload: bytes, retain: bool) -> None:
            text = payload.decode(errors="replace") or "(empty)"
            typer.echo(f"{topic}{' [retained]' if retain else ''} {text}")

        bus.on_raw(f"{settings.root}/{station}/#", show)
        await bus.run()

    with contextlib.suppress(KeyboardInterrupt):
        _run(main())


@app.command()
def docs(
    check: Annotated[bool, typer.Option(help="fail if docs/topics.md is stale")] = False,
) -> None:
    """Write docs/topics.md from the topic contract."""
    from voltbus_common.docs import render_topics

    path = Path("docs/topics.md")
    text = render_topics()
    if check:
        if not path.exists() or path.read_text() != text:
            typer.echo("docs/topics.md is stale: run `voltbus docs`", err=True)
            raise typer.Exit(1)
        return
    path.write_text(text)
    typer.echo(f"wrote {path}")


@app.command()
def acl(root: str = ch.DEFAULT_ROOT) -> None:
    """Print the Mosquitto ACL derived from the topic contract."""
    from voltbus_common.broker import render_acl

    typer.echo(render_acl(root), nl=False)


@app.command("secrets")
def make_secrets_cmd(
    directory: Annotated[Path, typer.Argument(help="where to keep them")] = Path("var/secrets"),
) -> None:
    """Create random MQTT passwords (one file per user) and a Mosquitto password file."""
    from voltbus_common.broker import make_secrets, write_password_file

    passwords = make_secrets(directory)
    write_password_file(directory / "mosquitto_passwd", passwords)
    token = directory / "api_admin_token"
    if not token.exists():
        token.write_text(secrets.token_urlsafe(32) + "\n")
        token.chmod(0o600)
    typer.echo(json.dumps({"directory": str(directory), "users": sorted(passwords)}))


def port_or_free(port: int) -> int:
    """port if nothing listens there, else a free one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return port
        except OSError:
            pass
    from voltbus_common.devbroker import free_port

    return free_port()


def default_data_dir() -> Path:
    """The state directory for `up`."""
    return data_dir()
