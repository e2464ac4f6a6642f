"""Several Pis on one site: a Pi's Mosquitto bridged to the site broker with the configuration
`voltbus bridge` generates, two gateways (one behind the bridge, one on the site broker) with
simulated hardware and one dev central system, and one energy manager on the site broker that
finds the bridged station by itself. The fuse is shared, each car gets its share, and a killed
and restarted Pi broker loses no retained state and no limit; while it is down the energy
manager lists P1 unreachable (the bridge's Will) and keeps its share reserved. A cut bridge
(the site broker killed) brings the Pi gateway's fail-safe limit at once (the bridge's own
notification), and the energy manager's limit back after."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from tests.energy.test_with_gateway import Watch
from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, wait_online
from voltbus_common import channels as ch
from voltbus_common.bridge import (
    BridgeConfig,
    BridgeConfigError,
    bridge_topics,
    render_bridge,
    render_site_acl,
)
from voltbus_common.broker import AUTOSAVE_INTERVAL_S, password_entry
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import BridgeState, ChargeMode, CommandName, ConnectorStatus
from voltbus_common.models import (
    ChargeModeSetting,
    GatewayCommand,
    MeterReading,
    SimPlug,
)
from voltbus_ocpp.model.energy_limit import LINK_DOWN_REASON, OFFLINE_REASON

ROOT = "voltbus/v1"
SESSION_STATES = (ConnectorStatus.CHARGING, ConnectorStatus.SUSPENDED_EV,
                  ConnectorStatus.SUSPENDED_EVSE)
FUSE_A, HOUSE_A = 25.0, 5.0


def test_directions_follow_the_writers() -> None:
    """Pi-written state goes out only, the energy manager's in only, commands both ways."""
    ways = dict(bridge_topics(ROOT, ["P1"], "home"))
    assert ways[f"{ROOT}/P1/hw/+/pilot"] == "out"
    assert ways[f"{ROOT}/P1/ocpp/+/transaction"] == "out"
    assert ways[f"{ROOT}/P1/service/+/status"] == "out"
    assert ways[f"{ROOT}/P1/energy/+/limit/set"] == "in"
    assert ways[f"{ROOT}/P1/energy/+/mode"] == "in"
    assert ways[f"{ROOT}/P1/ocpp/+/command"] == "both"
    assert ways[f"{ROOT}/P1/energy/+/mode/set"] == "both"
    assert ways[f"{ROOT}/home/energy/site"] == "in"
    assert ways[f"{ROOT}/home/service/energy/status"] == "in"
    # every channel of the contract crosses, exactly once, but the bridge's own link state
    # (its notifications publish it on both sides) and the site's
    assert len(ways) == len(ch.CHANNELS) - 2 + 3
    assert f"{ROOT}/P1/bridge/state" not in ways
    acl = render_site_acl("bridge-p1", ROOT, ["P1"], "home")
    assert f"topic write {ROOT}/P1/bridge/state" in acl.splitlines()
    assert f"topic write {ROOT}/P1/hw/+/pilot" in acl.splitlines()
    assert f"topic read {ROOT}/P1/energy/+/limit/set" in acl.splitlines()
    assert f"topic readwrite {ROOT}/P1/ocpp/+/command" in acl.splitlines()
    assert "#" not in acl.replace("# bridge of", "")  # nothing beyond its own station


def test_refuses_what_would_be_insecure(tmp_path: Path) -> None:
    good = BridgeConfig("p1", "10.0.0.2", 8883, "bridge-p1", "x" * 16, ROOT, ["P1"], "home",
                        ca_file=tmp_path / "ca.crt")
    with pytest.raises(BridgeConfigError, match="no such file"):
        render_bridge(good)
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    text = render_bridge(good)
    assert f"bridge_cafile {tmp_path / 'ca.crt'}" in text
    assert "bridge_insecure false" in text
    plain = BridgeConfig("p1", "10.0.0.2", 1883, "bridge-p1", "x" * 16, ROOT, ["P1"], "home")
    with pytest.raises(BridgeConfigError, match="not on loopback"):
        render_bridge(plain)
    assert "bridge_cafile" not in render_bridge(plain, plain=True)
    with pytest.raises(BridgeConfigError, match="12 characters"):
        render_bridge(BridgeConfig("p1", "127.0.0.1", 1883, "b", "short", ROOT, ["P1"]))
    with pytest.raises(BridgeConfigError, match="one line"):
        render_bridge(BridgeConfig("p1", "127.0.0.1", 1883, "b", "x" * 16 + "\ntopic # both",
                                   ROOT, ["P1"]))


def test_the_bridge_publishes_its_link_state_in_the_contract(tmp_path: Path) -> None:
    """Notifications on, on both brokers, in the contract's tree: one topic per bridge, its
    stations in the station level; a station id with a comma cannot be bridged."""
    config = BridgeConfig("p1", "127.0.0.1", 1883, "bridge-p1", "x" * 16, ROOT, ["P1", "P2"],
                          "home")
    lines = render_bridge(config).splitlines()
    assert "notifications true" in lines
    assert "notifications_local_only false" in lines
    assert f"notification_topic {ROOT}/P1,P2/bridge/state" in lines
    assert not any(line.startswith("topic") and "bridge/state" in line for line in lines)
    acl = render_site_acl("bridge-p1", ROOT, ["P1", "P2"], "home").splitlines()
    assert f"topic write {ROOT}/P1,P2/bridge/state" in acl
    assert ch.BRIDGE_STATE.match(ROOT, f"{ROOT}/P1,P2/bridge/state") == {"station": "P1,P2"}
    with pytest.raises(BridgeConfigError, match="comma"):
        render_bridge(BridgeConfig("p1", "127.0.0.1", 1883, "bridge-p1", "x" * 16, ROOT,
                                   ["P1,P2"], "home"))


async def test_the_link_state_on_both_brokers(tmp_path: Path) -> None:
    """Real Mosquitto takes the generated config (and the site ACL its Will needs): `1` on
    both brokers once the bridge is up; the site broker SIGKILLed: `0` on the Pi's broker at
    once; back: `1`; the Pi's broker SIGKILLed: `0` on the site broker (the bridge's Will)."""
    site, pi = bridged_pair(tmp_path, "home")
    up, down = ch.BRIDGE_STATE.decode(b"1"), ch.BRIDGE_STATE.decode(b"0")
    watch = Watch()

    def follow(broker: Broker, name: str) -> tuple[Bus, asyncio.Task[None]]:
        # no client stays on a broker that is SIGKILLed (paho logs the reset as an ERROR)
        bus = Bus(broker.settings("operator", stations=["P1"]), station="P1", service=None)
        watch.follow(bus, ch.BRIDGE_STATE, name)
        return bus, asyncio.create_task(bus.run())

    tasks = []
    try:
        _, on_pi = follow(pi, "pi")
        tasks.append(on_pi)
        await watch.until(lambda lt: lt.get("pi") is up, "the bridge up on the Pi's broker", 10)
        site.kill()
        cut = time.monotonic()
        await watch.until(lambda lt: lt["pi"] is down, "the link down on the Pi's broker", 5)
        assert time.monotonic() - cut < 2.0
        site.start()
        await watch.until(lambda lt: lt["pi"] is up, "the bridge up again", 20)
        on_pi.cancel()
        await asyncio.gather(on_pi, return_exceptions=True)
        _, on_site = follow(site, "site")
        tasks.append(on_site)
        await watch.until(lambda lt: lt.get("site") is up, "the bridge up on the site broker", 10)
        pi.kill()
        cut = time.monotonic()
        await watch.until(lambda lt: lt["site"] is down, "the Will on the site broker", 5)
        assert time.monotonic() - cut < 2.0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pi.stop()
        site.stop()


def bridged_pair(tmp_path: Path, site_id: str) -> tuple[Broker, Broker]:
    """The site broker with the bridge's user, and a Pi broker bridged to it."""
    site = Broker(tmp_path / "site")
    site.prepare()
    password = secrets.token_urlsafe(18)
    user = "bridge-p1"
    with open(site.directory / "passwd", "a") as passwd:
        passwd.write(password_entry(user, password) + "\n")
    with open(site.directory / "acl", "a") as acl:
        acl.write("\n" + render_site_acl(user, ROOT, ["P1"], site_id))
    site.start()
    pi = Broker(tmp_path / "pi1")
    config = pi.prepare()
    with open(config, "a") as conf:
        conf.write(render_bridge(BridgeConfig("p1", "127.0.0.1", site.port, user, password,
                                              ROOT, ["P1"], site_id, keepalive_s=5)))
    pi.start()
    return site, pi


async def test_two_gateways_one_energy_manager_across_the_bridge(
        tmp_path: Path, services: ServiceGroup, csms: Csms) -> None:
    site_id = "home"
    site, pi = bridged_pair(tmp_path, site_id)
    try:
        await _run_site(tmp_path, services, csms, site, pi, site_id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{services.logs()}") from None
    finally:
        services.stop_all()
        pi.stop()
        site.stop()


async def _run_site(tmp_path: Path, services: ServiceGroup, csms: Csms, site: Broker,
                    pi: Broker, site_id: str) -> None:
    # P1 behind the bridge (its services on the Pi's broker), P2 on the site broker itself
    for station, broker in (("P1", pi), ("P2", site)):
        base = {"VOLTBUS_STATIONS": station, "VOLTBUS_DATA_DIR": str(tmp_path / station)}
        services.start("hardware", {**base, **broker.env("hardware"),
                                    "VOLTBUS_METER_INTERVAL_S": "0.5"})
        services.start("gateway", {**base, **broker.env("gateway"),
                                   "VOLTBUS_CSMS_URL": csms.url, "VOLTBUS_MAX_CURRENT_A": "16"})
    # only P2 is configured: P1's connector is found on the site broker (through the bridge)
    services.start("energy", {**site.env("energy"), "VOLTBUS_STATIONS": "P2",
                              "VOLTBUS_ENERGY_ALL_STATIONS": "true",
                              "VOLTBUS_ENERGY_SITE": site_id,
                              "VOLTBUS_ENERGY_FUSE_A": str(FUSE_A),
                              "VOLTBUS_ENERGY_SIM_HOUSE_A": str(HOUSE_A),
                              "VOLTBUS_ENERGY_CONNECTOR_MAX_A": "16",
                              "VOLTBUS_DATA_DIR": str(tmp_path / "energy")})
    # P1's services are seen online on the site broker: they crossed the bridge
    await wait_online(site, "P1", ("hardware", "gateway"))
    await wait_online(site, "P2", ("hardware", "gateway"))
    await wait_online(site, site_id, ("energy",))

    # everything the test does, it does on the site broker (a site-wide Home Assistant)
    watch = Watch()
    ops = {s: Bus(site.settings("operator", stations=[s]), station=s, service=None)
           for s in ("P1", "P2")}
    # on the Pi: what its own gateway is told and what its broker keeps
    local = Bus(pi.settings("operator", stations=["P1"]), station="P1", service=None)
    drawn: dict[str, list[float]] = {"P1": [0.0] * 3, "P2": [0.0] * 3}
    over: list[tuple[float, list[float]]] = []  # (monotonic, per-phase total) above the fuse

    async def meter(msg: Received[MeterReading]) -> None:
        if msg.payload is None:
            return
        drawn[msg.station] = [*msg.payload.current_a, 0.0, 0.0][:3]
        total = [HOUSE_A + drawn["P1"][p] + drawn["P2"][p] for p in range(3)]
        if max(total) > FUSE_A + 0.05:
            over.append((time.monotonic(), total))

    for s, bus in ops.items():
        watch.follow(bus, ch.CHARGING, f"{s}.charging", connector=1)
        watch.follow(bus, ch.OCPP_STATUS, f"{s}.status", connector=1)
        watch.follow(bus, ch.TRANSACTION, f"{s}.tx", connector=1)
        bus.on(ch.METER, meter, connector=1)
    watch.follow(ops["P2"], ch.ENERGY_SITE, "site", station=site_id)
    watch.follow(ops["P1"], ch.ENERGY_MODE, "P1.mode", connector=1)
    watch.follow(local, ch.CHARGING, "local.charging", connector=1)
    watch.follow(local, ch.ENERGY_MODE, "local.mode", connector=1)
    watch.follow(local, ch.ENERGY_SITE, "local.site", station=site_id)
    tasks = [asyncio.create_task(b.run()) for b in (*ops.values(), local)]

    def limit(s: str) -> Any:
        return lambda latest: (latest.get(f"{s}.charging") is not None
                               and latest[f"{s}.charging"].current_limit_a)

    try:
        for s, bus in ops.items():
            await bus.wait_connected(5)
            await watch.until(lambda lt, s=s: lt.get(f"{s}.status") is not None
                              and lt[f"{s}.status"].status is ConnectorStatus.AVAILABLE,
                              f"{s} Available", 30)
            bus.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
            await watch.until(lambda lt, s=s: lt[f"{s}.status"].status
                              is ConnectorStatus.PREPARING, f"{s} Preparing")
            bus.publish(ch.COMMAND, GatewayCommand(command=CommandName.START,
                                                   id_tag="04A1B2C3"), connector=1)
            await watch.until(lambda lt, s=s: lt[f"{s}.status"].status
                              is ConnectorStatus.CHARGING, f"{s} Charging", 30)

        # (25 A fuse - 5 A house) / 2 cars = 10 A each, at both gateways
        share = (FUSE_A - HOUSE_A) / 2
        await watch.until(lambda lt: limit("P1")(lt) == share and limit("P2")(lt) == share,
                          f"{share} A each")
        await watch.until(lambda lt: lt.get("local.charging") is not None
                          and lt["local.charging"].current_limit_a == share,
                          "the share on the Pi's own broker")
        await watch.until(lambda lt: max(drawn["P1"]) > share - 1
                          and max(drawn["P2"]) > share - 1, "both cars drawing their share")
        assert watch.latest["local.site"].fuse_limit_a == FUSE_A  # site state came in
        tx_before = watch.latest["P1.tx"]
        assert tx_before is not None
        assert tx_before.transaction_id is not None

        # The Pi's broker crashes (SIGKILL) and restarts. Meanwhile P2 is switched off on the
        # site: P1 may take its maximum, a raise its gateway can only get after the restart.
        # Mosquitto saves its retained state every AUTOSAVE_INTERVAL_S: what is older survives a
        # crash. (The gateway does not publish its state again after a reconnect, so a status
        # newer than the last save would be missing on the Pi's broker; the site keeps it.)
        await asyncio.sleep(AUTOSAVE_INTERVAL_S + 0.5)
        assert watch.latest["site"].unreachable_stations == []
        pi.kill()
        # the bridge's Will on the site broker: the energy manager sees P1 unreachable at
        # once, keeps its 10 A reserved and says so
        killed = time.monotonic()
        await watch.until(lambda lt: lt["site"].unreachable_stations == ["P1"],
                          "P1 unreachable in energy/site", 5)
        print(f"P1 unreachable on the site {time.monotonic() - killed:.2f} s after the kill")
        await watch.until(lambda lt: "unreachable" in (lt["P1.mode"].status or "")
                          and lt["P1.mode"].limit_a == share, "P1's share kept reserved")
        # P2's gateway, on the site broker, sees P1's bridge state too: not its bridge
        await asyncio.sleep(0.5)
        assert watch.latest["P2.charging"].energy_fail_safe is False
        assert watch.latest["P2.charging"].current_limit_a == share
        ops["P2"].publish(ch.ENERGY_MODE_SET, ChargeModeSetting(mode=ChargeMode.OFF),
                          connector=1)
        await watch.until(lambda lt: limit("P2")(lt) == 0.0, "P2 off")
        await asyncio.sleep(1.0)
        pi.start()
        await watch.until(lambda lt: lt["local.charging"].current_limit_a == 16.0
                          and limit("P1")(lt) == 16.0,
                          "P1's raise reaching its gateway after the restart", 30)
        assert watch.latest["site"].unreachable_stations == []
        # the site kept P1's transaction
        assert watch.latest["P1.tx"].transaction_id == tx_before.transaction_id

        # nothing retained was lost: a client that comes now finds it on both brokers
        statuses = []
        for broker, where in ((pi, "Pi"), (site, "site")):
            fresh = Watch()
            bus = Bus(broker.settings("operator", stations=["P1"]), station="P1", service=None)
            fresh.follow(bus, ch.TRANSACTION, "tx", connector=1)
            fresh.follow(bus, ch.ENERGY_MODE, "mode", connector=1)
            fresh.follow(bus, ch.OCPP_STATUS, "status", connector=1)
            task = asyncio.create_task(bus.run())
            try:
                await fresh.until(lambda lt: {"tx", "mode", "status"} <= lt.keys(),
                                  f"retained state of P1 on the {where} broker", 10)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            got = (fresh.latest["tx"].transaction_id, fresh.latest["mode"].limit_a)
            assert got == (tx_before.transaction_id, 16.0), (where, got)
            statuses.append(fresh.latest["status"])
        # the Pi is the authority for its station: the site holds what the Pi's broker holds
        assert statuses[0] == statuses[1]
        assert statuses[0].status in SESSION_STATES

        # the measured total (house + both cars) went over the fuse only while a cut crossed
        # the bridge: never for more than a second in a row
        assert _longest_run(over) <= 1.0, over
        print(f"over the fuse: {len(over)} readings, longest run {_longest_run(over):.2f} s")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_cut_bridge_brings_the_pis_fail_safe(
        tmp_path: Path, services: ServiceGroup, csms: Csms) -> None:
    """P1 behind the bridge charges at the energy manager's 11 A (16 A fuse, 5 A house). The
    site broker crashes (SIGKILL: the bridge is cut, the Pi's broker still holds the energy
    manager's `online`): the Pi broker's bridge says its link is down at once, and the Pi
    gateway's connector is at the 6 A fail-safe within 2 s (its timeout is the default 30 s)
    and its own broker says why. The site broker back: the energy manager's 11 A again. The
    site broker stopped cleanly: the fail-safe starts at once too."""
    site_id = "home"
    site, pi = bridged_pair(tmp_path, site_id)
    base = {"VOLTBUS_STATIONS": "P1", "VOLTBUS_DATA_DIR": str(tmp_path / "P1")}
    local = Bus(pi.settings("operator", stations=["P1"]), station="P1", service=None)
    watch = Watch()
    watch.follow(local, ch.CHARGING, "charging", connector=1)
    watch.follow(local, ch.OCPP_STATUS, "status", connector=1)
    watch.follow(local, ch.BRIDGE_STATE, "link")
    task = asyncio.create_task(local.run())

    def charging(amps: float, fail_safe: bool) -> Any:
        return lambda lt: (lt.get("charging") is not None
                           and lt["charging"].current_limit_a == amps
                           and lt["charging"].energy_fail_safe is fail_safe)

    try:
        services.start("hardware", {**base, **pi.env("hardware"),
                                    "VOLTBUS_METER_INTERVAL_S": "0.5"})
        services.start("gateway", {**base, **pi.env("gateway"), "VOLTBUS_CSMS_URL": csms.url,
                                   "VOLTBUS_MAX_CURRENT_A": "16"})  # timeout: 30 s
        services.start("energy", {**site.env("energy"), "VOLTBUS_STATIONS": "P1",
                                  "VOLTBUS_ENERGY_ALL_STATIONS": "true",
                                  "VOLTBUS_ENERGY_SITE": site_id, "VOLTBUS_ENERGY_FUSE_A": "16",
                                  "VOLTBUS_ENERGY_SIM_HOUSE_A": "5",
                                  "VOLTBUS_ENERGY_CONNECTOR_MAX_A": "16",
                                  "VOLTBUS_ENERGY_PERIOD_S": "0.2",
                                  "VOLTBUS_ENERGY_RESEND_S": "0.3",
                                  "VOLTBUS_DATA_DIR": str(tmp_path / "energy")})
        await wait_online(site, "P1", ("hardware", "gateway"))
        await wait_online(pi, site_id, ("energy",))  # its status came in over the bridge
        await local.wait_connected(5)
        await watch.until(lambda lt: lt.get("status") is not None
                          and lt["status"].status is ConnectorStatus.AVAILABLE, "Available", 30)
        local.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await watch.until(lambda lt: lt["status"].status is ConnectorStatus.PREPARING,
                          "Preparing")
        local.publish(ch.COMMAND, GatewayCommand(command=CommandName.START,
                                                 id_tag="04A1B2C3"), connector=1)
        await watch.until(charging(11.0, False), "the energy manager's 11 A on the Pi", 30)

        site.kill()  # a crash: nothing more crosses, not even a Will
        cut = time.monotonic()
        await watch.until(charging(6.0, True), "the Pi's fail-safe", 5)
        took = time.monotonic() - cut
        assert took < 2.0, took  # the bridge's notification, not the 30 s timeout
        print(f"fail-safe {took:.2f} s after the site broker's SIGKILL")
        assert watch.latest["charging"].energy_fail_safe_reason == LINK_DOWN_REASON
        assert watch.latest["link"] is BridgeState.DOWN
        await watch.until(lambda lt: lt["status"].status is ConnectorStatus.CHARGING,
                          "still charging, at the fail-safe", 10)

        site.start()
        await watch.until(charging(11.0, False), "the energy manager's limit again", 60)

        # a site broker shut down cleanly tells the Pi its clients are offline on its way out
        # (the energy manager's Will crosses before the bridge closes): at once
        site.stop()
        await watch.until(charging(6.0, True), "the Pi's fail-safe on the clean stop", 5)
        assert watch.latest["charging"].energy_fail_safe_reason in (OFFLINE_REASON,
                                                                    LINK_DOWN_REASON)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{services.logs()}") from None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        services.stop_all()
        pi.stop()
        site.stop()


def _longest_run(over: list[tuple[float, list[float]]], gap_s: float = 0.6) -> float:
    """The longest stretch of readings above the fuse (readings come every 0.5 s)."""
    longest, start, last = 0.0, None, None
    for at, _ in over:
        if start is None or last is None or at - last > gap_s:
            start = at
        last = at
        longest = max(longest, last - start)
    return longest


def test_the_bridge_command_says_what_is_wrong(tmp_path: Path) -> None:
    """`voltbus bridge`: bad input is named, exit 2, nothing written; the password is never
    an option and a missing password file gets a random one."""
    from typer.testing import CliRunner

    from voltbus_common.cli import app

    out = tmp_path / "bridge.conf"
    base = ["bridge", "--out", str(out), "--stations", "P1", "--site", "home"]
    none = {"VOLTBUS_BRIDGE_PASSWORD": None, "VOLTBUS_BRIDGE_PASSWORD_FILE": None}
    cases = [
        (["--host", "127.0.0.1"], "no bridge password"),
        (["--host", "10.0.0.2", "--password-file", str(tmp_path / "pw")], "not on loopback"),
        (["--host", "127.0.0.1", "--password-file", str(tmp_path / "pw"),
          "--ca-file", str(tmp_path / "nope.crt")], "no such file"),
        (["--host", "127.0.0.1", "--password-file", str(tmp_path / "pw"),
          "--stations", "P/1"], "--stations"),
        (["--host", "127.0.0.1", "--password-file", str(tmp_path / "pw"),
          "--username", "energy"], "bridge-<name>"),
        (["--host", "127.0.0.1", "--password", "secret-secret-secret"], "No such option"),
    ]
    for args, said in cases:
        done = CliRunner().invoke(app, [*base, *args], env=none)
        assert done.exit_code == 2, (args, done.output)
        assert said in done.output, (args, done.output)
        assert not out.exists()
    # a ca file given as the broker sees it (compose), the password file made random, 0600
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    done = CliRunner().invoke(app, [*base, "--host", "10.0.0.2", "--name", "garage",
                                    "--ca-file", str(tmp_path / "ca.crt"),
                                    "--broker-ca-path", "/mosquitto/certs/site-ca.crt",
                                    "--password-file", str(tmp_path / "pw"),
                                    "--site-file", str(tmp_path / "garage.json")], env=none)
    assert done.exit_code == 0, done.output
    password = (tmp_path / "pw").read_text().strip()
    assert len(password) >= 24
    assert (tmp_path / "pw").stat().st_mode & 0o777 == 0o600
    text = out.read_text()
    assert "address 10.0.0.2:8883" in text
    assert "bridge_cafile /mosquitto/certs/site-ca.crt" in text
    assert f"remote_password {password}" in text
    site = (tmp_path / "garage.json").read_text()
    assert password not in site
    assert '"username": "bridge-garage"' in site
    assert "user bridge-garage" in done.stdout
    # the link state: notifications into the contract's tree, and the site ACL line for it
    assert "notification_topic voltbus/v1/P1/bridge/state\n" in text
    assert "topic write voltbus/v1/P1/bridge/state" in done.stdout.splitlines()
