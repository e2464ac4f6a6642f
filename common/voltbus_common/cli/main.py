"""`voltbus`: one command for running, simulating and watching a charge point."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.cli.context import client_settings
from voltbus_common.cli.oneshot import (
    BusUnreachable,
    Evidence,
    NoAnswer,
    ask_gateway,
    send_to_hardware,
)
from voltbus_common.enums import ChargePointErrorCode, CommandName, PilotState
from voltbus_common.models import GatewayCommand, SimBay, SimEv, SimFault, SimPlug, SimTap


class _Command(typer.core.TyperCommand):
    """A command whose help shows no `<bool>` type label next to a flag."""

    def get_params(self, ctx: Any) -> Any:  # typer's vendored click types
        return _unlabel_flags(super().get_params(ctx))


class _Group(typer.core.TyperGroup):
    """A group whose help shows no `<bool>` type label next to a flag."""

    def get_params(self, ctx: Any) -> Any:  # typer's vendored click types
        return _unlabel_flags(super().get_params(ctx))


def _unlabel_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # typer shows the metavar instead of its `<bool>` label
    return params


_HELP = {"help_option_names": ["-h", "--help"]}
# `cmd limit 1 -5` must reach the range check, not fail as an unknown option `-5`.
_NEGATIVE_OK = {"ignore_unknown_options": True}

app = typer.Typer(help="voltbus: a Raspberry Pi EV charge point on MQTT and OCPP.",
                  no_args_is_help=True, add_completion=False, cls=_Group, context_settings=_HELP,
                  pretty_exceptions_show_locals=False)  # locals may hold secrets
sim = typer.Typer(help="Drive the simulated hardware (plug in, tap a card, ...).",
                  no_args_is_help=True, cls=_Group)
cmd = typer.Typer(help="Send a command to the gateway and print its answer.", no_args_is_help=True,
                  cls=_Group)
app.add_typer(sim, name="sim")
app.add_typer(cmd, name="cmd")

SERVICES = {
    "hardware": "voltbus_hardware",
    "gateway": "voltbus_ocpp",
    "recorder": "voltbus_recorder",
    "api": "voltbus_api",
    "devcsms": "voltbus_devcsms",
    "energy": "voltbus_energy",
}
StationOpt = Annotated[str | None,
                       typer.Option("--station", "-s", help="station id (default: first)")]
ConnectorArg = Annotated[int, typer.Argument(min=1, help="connector id, from 1")]


def _station(station: str | None) -> str:
    return station or client_settings().stations[0]


def _run(coro: Any) -> Any:
    # The bus's own reconnect warnings would repeat what the one error line below says.
    logging.getLogger("voltbus_common.bus").setLevel(logging.ERROR)
    try:
        return asyncio.run(coro)
    except (BusUnreachable, NoAnswer) as exc:
        typer.echo(f"voltbus: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # e.g. an unreadable password file
        typer.echo(f"voltbus: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command(cls=_Command)
def run(service: Annotated[str, typer.Argument(help=" | ".join(SERVICES))]) -> None:
    """Run one service in the foreground (configured by VOLTBUS_* variables)."""
    module = SERVICES.get(service)
    if module is None:
        typer.echo(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}", err=True)
        raise typer.Exit(2)
    os.execvp(sys.executable, [sys.executable, "-m", module])


@app.command(cls=_Command)
def up(
    connectors: Annotated[int, typer.Option(min=1, help="simulated connectors per station")] = 1,
    stations: Annotated[str, typer.Option(help="comma-separated station ids")] = "CP1",
    csms_url: Annotated[str | None, typer.Option(
        envvar="VOLTBUS_CSMS_URL",
        help="central system URL; default: the development CSMS")] = None,
    api_port: Annotated[int, typer.Option(help="web page and REST API port")] = 8080,
    mqtt_port: Annotated[int, typer.Option(help="port of the broker `up` starts")] = 1883,
    csms_port: Annotated[int, typer.Option(
        help="development central system: OCPP port (its HTTP control API: the next one)")] = 9000,
    influx: Annotated[bool, typer.Option(help="start a local InfluxDB 1.x if installed")] = True,
    join: Annotated[str | None, typer.Option(
        metavar="HOST[:PORT]",
        help="use this running broker (e.g. Home Assistant's) instead of starting one; it must "
             "know voltbus's users and ACL (docs/homeassistant.md)")] = None,
    join_secrets: Annotated[Path | None, typer.Option(
        help="with --join: directory of the password files mqtt_<user> [default: DATA/secrets]"
    )] = None,
    join_tls: Annotated[bool, typer.Option(help="with --join: connect with TLS")] = False,
    ocpp: Annotated[str, typer.Option(
        metavar="1.6|2.0.1|auto",
        help="OCPP version the stations speak (auto: offer both, speak what the central "
             "system selects)")] = "1.6",
    house: Annotated[bool, typer.Option(
        help="run the energy manager with a simulated house: PV over the day, a varying "
             "house load, a 25 A fuse")] = True,
    time_scale: Annotated[float, typer.Option(
        min=0.01, max=3600, help="the simulated house's day runs this much faster (60: a day "
                                 "in 24 minutes)")] = 1.0,
    house_start: Annotated[str | None, typer.Option(
        metavar="HH:MM", help="time of day the simulated house starts at [default: now]")] = None,
) -> None:
    """Start the stack (broker, InfluxDB, dev central system, four services); Ctrl-C stops it."""
    from voltbus_common.cli.joined import JoinError
    from voltbus_common.cli.ports import PortInUse
    from voltbus_common.cli.stack import StackOptions, start_stack

    if house_start is not None and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", house_start):
        typer.echo(f"voltbus up: --house-start wants HH:MM, not {house_start!r}", err=True)
        raise typer.Exit(2)
    if ocpp not in ("1.6", "2.0.1", "auto"):
        typer.echo(f"voltbus up: --ocpp is 1.6, 2.0.1 or auto, not {ocpp!r}", err=True)
        raise typer.Exit(2)
    options = StackOptions(
        connectors=connectors, stations=stations, csms_url=csms_url, api_port=api_port,
        mqtt_port=mqtt_port, csms_port=csms_port, influx=influx, join=join,
        join_secrets=join_secrets, join_tls=join_tls, house=house, time_scale=time_scale,
        house_start=house_start, ocpp=ocpp)
    try:
        start_stack(options)
    except (PortInUse, JoinError) as exc:
        typer.echo(f"voltbus up: {exc}", err=True)
        raise typer.Exit(1) from None


# --- simulator ---------------------------------------------------------------------------------


def _sim(channel: ch.Channel[Any], payload: Any, station: str | None,
         evidence: Evidence | None, **args: int) -> None:
    """Send a simulator command and wait for the hardware to act on it or reject it."""
    said = _run(send_to_hardware(client_settings(), _station(station), channel, payload, evidence,
                                 **args))
    typer.echo(said)


def _pilot_is(*states: PilotState, connector: int) -> Evidence:
    return Evidence(ch.PILOT, lambda p: p.state in states, {"connector": connector})


@sim.command(cls=_Command)
def plug(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Plug the simulated EV in."""
    _sim(ch.SIM_PLUG, SimPlug(plugged=True), station,
         _pilot_is(PilotState.B, PilotState.C, PilotState.D, connector=connector),
         connector=connector)


@sim.command(cls=_Command)
def unplug(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Unplug the simulated EV."""
    _sim(ch.SIM_PLUG, SimPlug(plugged=False), station, _pilot_is(PilotState.A, connector=connector),
         connector=connector)


@sim.command(cls=_Command)
def bay(connector: ConnectorArg = 1,
        occupied: Annotated[bool, typer.Option("--occupied/--free",
                                               help="a vehicle drives in / out")] = True,
        station: StationOpt = None) -> None:
    """Drive a vehicle into (or out of) the simulated parking bay (bay: {type: sim})."""
    _sim(ch.SIM_BAY, SimBay(occupied=occupied), station,
         Evidence(ch.BAY, lambda b: b.occupied == occupied, {"connector": connector}),
         connector=connector)


@sim.command(cls=_Command)
def tap(id_tag: Annotated[str, typer.Argument(help="card id, e.g. 04A1B2C3")],
        reader: str = "sim", station: StationOpt = None) -> None:
    """Present a card to the simulated RFID reader."""
    _sim(ch.SIM_TAP, SimTap(id_tag=id_tag, reader=reader), station,
         Evidence(ch.RFID, lambda seen: seen.id_tag == id_tag))


@sim.command(cls=_Command)
def ev(connector: ConnectorArg = 1,
       max_current: Annotated[float | None, typer.Option(help="A per phase")] = None,
       phases: Annotated[int | None, typer.Option(min=1, max=3)] = None,
       full: Annotated[bool | None, typer.Option("--full/--not-full")] = None,
       station: StationOpt = None) -> None:
    """Change how the simulated EV behaves."""
    _sim(ch.SIM_EV, SimEv(max_current_a=max_current, phases=phases, full=full),  # type: ignore[arg-type,unused-ignore]
         station, None, connector=connector)


@sim.command(cls=_Command)
def fault(connector: ConnectorArg = 1,
          code: Annotated[ChargePointErrorCode,
                          typer.Argument()] = ChargePointErrorCode.GROUND_FAILURE,
          info: str | None = None, station: StationOpt = None) -> None:
    """Inject a hardware fault (NoError clears it)."""
    _sim(ch.SIM_FAULT, SimFault(code=code, info=info), station,
         Evidence(ch.HW_ERROR, lambda e: e.code == code, {"connector": connector}),
         connector=connector)


# --- gateway commands --------------------------------------------------------------------------


def _ask(connector: int, command: GatewayCommand, station: str | None) -> None:
    result = _run(ask_gateway(client_settings(), _station(station), connector, command))
    reason = f" ({result.reason})" if result.reason else ""
    typer.echo(f"{result.command}: {result.status}{reason}")
    if result.status != "Accepted":
        raise typer.Exit(1)


@cmd.command(cls=_Command)
def start(connector: ConnectorArg = 1, id_tag: Annotated[str, typer.Option()] = "VOLTBUS",
          station: StationOpt = None) -> None:
    """Start charging for an id tag (authorised by the central system)."""
    _ask(connector, GatewayCommand(command=CommandName.START, id_tag=id_tag), station)


@cmd.command(cls=_Command)
def stop(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Stop the running transaction."""
    _ask(connector, GatewayCommand(command=CommandName.STOP), station)


@cmd.command(cls=_Command, context_settings=_NEGATIVE_OK)
def limit(connector: Annotated[int, typer.Argument(min=1, help="connector id, from 1")],
          amps: Annotated[float, typer.Argument(
              min=0, max=100, help="A per phase, 0..100 (0 pauses)", show_default=False)],
          station: StationOpt = None) -> None:
    """Set the current limit (A per phase; 0 pauses)."""
    _ask(connector, GatewayCommand(command=CommandName.SET_CURRENT_LIMIT, amps=amps), station)


@cmd.command(cls=_Command)
def enable(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Allow charging."""
    _ask(connector, GatewayCommand(command=CommandName.ENABLE_CHARGING), station)


@cmd.command(cls=_Command)
def disable(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Pause charging (current limit 0) until enabled again."""
    _ask(connector, GatewayCommand(command=CommandName.DISABLE_CHARGING), station)


@cmd.command(cls=_Command)
def offpeak_override(connector: ConnectorArg = 1, station: StationOpt = None) -> None:
    """Let the session waiting for the off-peak window charge now (this session only)."""
    _ask(connector, GatewayCommand(command=CommandName.OVERRIDE_OFFPEAK), station)


# --- watching and generated files --------------------------------------------------------------


@app.command(cls=_Command)
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


@app.command(cls=_Command)
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


@app.command(cls=_Command)
def acl(root: str = ch.DEFAULT_ROOT) -> None:
    """Print the Mosquitto ACL derived from the topic contract."""
    from voltbus_common.broker import render_acl

    typer.echo(render_acl(root), nl=False)


@app.command("secrets", cls=_Command)
def make_secrets_cmd(
    directory: Annotated[Path, typer.Argument(help="where to keep them")] = Path("var/secrets"),
) -> None:
    """Create random MQTT passwords (one file per user) and a Mosquitto password file."""
    from voltbus_common.broker import make_secrets, write_password_file
    from voltbus_common.private_files import write_private

    passwords = make_secrets(directory)
    write_password_file(directory / "mosquitto_passwd", passwords)
    token = directory / "api_admin_token"
    if not token.exists():
        write_private(token, secrets.token_urlsafe(32) + "\n")
    typer.echo(json.dumps({"directory": str(directory), "users": sorted(passwords)}))


@app.command(cls=_Command)
def bridge(
    host: Annotated[str, typer.Option(envvar="VOLTBUS_BRIDGE_HOST",
                                      help="the site broker's address")],
    out: Annotated[Path, typer.Option(help="write the Pi broker's bridge config here (0600; "
                                           "Debian: /etc/mosquitto/conf.d/voltbus-bridge.conf)")],
    port: Annotated[int | None, typer.Option(
        envvar="VOLTBUS_BRIDGE_PORT", min=1, max=65535,
        help="the site broker's port [default: 8883 with --ca-file, else 1883]")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        envvar="VOLTBUS_BRIDGE_CA_FILE", help="CA of the site broker's TLS certificate")] = None,
    broker_ca_path: Annotated[str | None, typer.Option(
        help="the CA's path as the Pi's broker sees it (compose: "
             "/mosquitto/certs/site-ca.crt) [default: --ca-file]")] = None,
    plain: Annotated[bool, typer.Option(
        envvar="VOLTBUS_BRIDGE_PLAIN",
        help="allow plain MQTT to a site broker off loopback (the password in clear)")] = False,
    name: Annotated[str | None, typer.Option(
        envvar="VOLTBUS_BRIDGE_NAME", help="this Pi's bridge name, unique on the site "
                                           "[default: the host name]")] = None,
    username: Annotated[str | None, typer.Option(
        envvar="VOLTBUS_BRIDGE_USERNAME", help="[default: bridge-<name>]")] = None,
    password_file: Annotated[Path | None, typer.Option(
        envvar="VOLTBUS_BRIDGE_PASSWORD_FILE",
        help="the bridge password (made, random, if the file does not exist); or set "
             "VOLTBUS_BRIDGE_PASSWORD")] = None,
    stations: Annotated[str, typer.Option(envvar="VOLTBUS_STATIONS",
                                          help="this Pi's station ids, comma-separated")] = "CP1",
    site: Annotated[str, typer.Option(envvar="VOLTBUS_ENERGY_SITE",
                                      help="the energy manager's site id")] = "site",
    root: Annotated[str, typer.Option(envvar="VOLTBUS_ROOT")] = ch.DEFAULT_ROOT,
    site_file: Annotated[Path | None, typer.Option(
        help="also write the site broker's file for this bridge (user, password hash, "
             "stations) for its mosquitto/bridges or /etc/voltbus/bridges")] = None,
) -> None:
    """Bridge this Pi's broker to the site broker; print the site broker's ACL lines for it."""
    import socket

    from voltbus_common.bridge import (
        BridgeConfig,
        BridgeConfigError,
        SiteBridgeUser,
        check_username,
        render_bridge,
        render_site_acl,
    )
    from voltbus_common.broker import password_entry
    from voltbus_common.private_files import write_private

    def fail(why: str) -> None:
        typer.echo(f"voltbus bridge: {why}", err=True)
        raise typer.Exit(2)

    ids = [s.strip() for s in stations.split(",") if s.strip()]
    if not ids or any(not re.fullmatch(r"[^/+# ]{1,48}", s) for s in ids):
        fail(f"--stations {stations!r}: station ids of 1..48 characters without / + # space")
    if not re.fullmatch(r"[^/+# ]{1,48}", site):
        fail(f"--site {site!r}: 1..48 characters without / + # space")
    bridge_name = name or re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40]
    password = os.environ.get("VOLTBUS_BRIDGE_PASSWORD")
    if password is None:
        if password_file is None:
            fail("no bridge password: --password-file FILE (a random one is made if it does "
                 "not exist) or VOLTBUS_BRIDGE_PASSWORD")
        assert password_file is not None
        if not password_file.exists():
            write_private(password_file, secrets.token_urlsafe(24) + "\n")
            typer.echo(f"voltbus bridge: new random password in {password_file}", err=True)
        try:
            password = password_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the password file: {exc}")
    assert password is not None
    try:
        user = check_username(username or f"bridge-{bridge_name}")
        config = BridgeConfig(
            bridge_name, host, port or (8883 if ca_file else 1883), user, password, root, ids,
            site, ca_file=ca_file.resolve() if ca_file else None)
        text = render_bridge(config, plain=plain)
        if config.ca_file is not None and broker_ca_path:
            text = text.replace(f"bridge_cafile {config.ca_file}\n",
                                f"bridge_cafile {broker_ca_path}\n")
        acl = render_site_acl(user, root, ids, site)
    except BridgeConfigError as exc:
        fail(str(exc))
    try:
        write_private(out, text)
        if site_file is not None:
            write_private(site_file, SiteBridgeUser(
                user, password_entry(user, password).split(":", 1)[1], ids, site).to_json())
    except OSError as exc:
        typer.echo(f"voltbus bridge: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"voltbus bridge: wrote {out}; restart this Pi's broker. On the site broker, "
               f"user {user} needs its password and this ACL:", err=True)
    typer.echo(acl, nl=False)
