"""Several Pis on one site over TLS, set up the way the docs say: the site broker's users, ACL
and TLS listener from mosquitto/init_broker.py (its private CA, its bridges directory), each
Pi's bridge config and site file from the real `voltbus bridge` command. Three Pi brokers:
P1's bridge is right, and the energy manager on the site broker limits P1's gateway through it;
P2's bridge has a wrong password and P3's trusts another CA: those bridges stay down, nothing of
theirs reaches the site, and P2's gateway goes on working on its own broker."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from typer.testing import CliRunner

from tests.energy.test_with_gateway import Watch
from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, wait_online
from voltbus_common import channels as ch
from voltbus_common.broker import render_config
from voltbus_common.bus import Bus
from voltbus_common.cli import app
from voltbus_common.devbroker import free_port
from voltbus_common.enums import CommandName, ConnectorStatus
from voltbus_common.models import GatewayCommand, SimPlug

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "mosquitto"))
import init_broker

ROOT = "voltbus/v1"
SITE = "home"
FUSE_A, HOUSE_A = 15.0, 5.0


def bridge_cli(pi: Broker, name: str, station: str, port: int, ca: Path, password_file: Path,
               site_file: Path | None) -> str:
    """`voltbus bridge` for this Pi; its config appended to the Pi broker's; the ACL it printed."""
    out = pi.directory / "bridge.conf"
    args = ["bridge", "--host", "127.0.0.1", "--port", str(port), "--ca-file", str(ca),
            "--name", name, "--password-file", str(password_file), "--stations", station,
            "--site", SITE, "--root", ROOT, "--out", str(out)]
    if site_file is not None:
        args += ["--site-file", str(site_file)]
    done = CliRunner().invoke(app, args, env={"VOLTBUS_BRIDGE_PASSWORD": None})
    assert done.exit_code == 0, done.output
    assert out.stat().st_mode & 0o777 == 0o600
    config = pi.prepare()
    with open(config, "a") as conf:
        conf.write(out.read_text().replace("keepalive_interval 15", "keepalive_interval 5"))
    return done.stdout


def site_broker(tmp: Path, bridges: Path, tls_port: int) -> tuple[Broker, Path]:
    """The site broker from init_broker's files, with its TLS listener on loopback; its CA."""
    site = Broker(tmp / "site")
    site.prepare()  # the users' passwords in site.secrets_dir, as init_broker reads them
    gen, tls = tmp / "site" / "generated", tmp / "site" / "tls"
    init_broker.generate(secrets_dir=site.secrets_dir, out=gen, certs=tmp / "no-certs",
                         root=ROOT, tls_port=tls_port, tls_dir=tls, bridges=bridges)
    listener = (gen / "conf.d" / "tls.conf").read_text().replace(
        f"listener {tls_port}", f"listener {tls_port} 127.0.0.1")
    (site.directory / "mosquitto.conf").write_text(render_config(
        port=site.port, data_dir=site.directory / "data", password_file=gen / "passwd",
        acl_file=gen / "acl", log_file=site.directory / "mosquitto.log",
        user="root" if os.geteuid() == 0 else None) + listener)
    return site, tls / "ca.crt"


async def test_tls_bridge_with_generated_files_and_bad_bridges_stay_down(
        tmp_path: Path, services: ServiceGroup, csms: Csms) -> None:
    from voltbus_api.tlsgen import Server, ensure

    bridges = tmp_path / "bridges"
    bridges.mkdir()
    tls_port = free_port()  # the site broker's TLS port, named in the Pis' configs
    pis = {s: Broker(tmp_path / s.lower()) for s in ("P1", "P2", "P3")}
    # the site's CA first (init_broker makes it and keeps it): the Pis' configs name it
    ensure(tmp_path / "site" / "tls", [Server("mqtt-server", ("mosquitto",))])
    ca = tmp_path / "site" / "tls" / "ca.crt"
    other = tmp_path / "other-ca"
    ensure(other, [Server("x", ())])
    acl = bridge_cli(pis["P1"], "p1", "P1", tls_port, ca, tmp_path / "p1.pw",
                     bridges / "p1.json")
    assert "user bridge-p1" in acl
    assert f"topic read {ROOT}/P1/energy/+/limit/set" in acl
    # P2: the site knows its user, but the Pi's password changed since
    bridge_cli(pis["P2"], "p2", "P2", tls_port, ca, tmp_path / "p2.pw", bridges / "p2.json")
    (tmp_path / "p2.pw").write_text("a-different-password-0123\n")
    bridge_cli(pis["P2"], "p2", "P2", tls_port, ca, tmp_path / "p2.pw", None)
    # P3: right password, but it trusts another CA than the site broker's
    bridge_cli(pis["P3"], "p3", "P3", tls_port, other / "ca.crt", tmp_path / "p3.pw",
               bridges / "p3.json")
    (bridges / "junk.json").write_text('{"username": "energy", "password_hash": "x"}')
    site, site_ca = site_broker(tmp_path, bridges, tls_port)
    assert site_ca == ca
    acl_text = (tmp_path / "site" / "generated" / "acl").read_text()
    assert "user bridge-p1" in acl_text
    assert "user bridge-p3" in acl_text
    assert "junk" not in acl_text
    site.start()
    for pi in pis.values():
        pi.start()
    try:
        await _run(tmp_path, services, csms, site, pis)
    except AssertionError as exc:
        logs = "\n".join(f"{s}: {(p.directory / 'mosquitto.log').read_text()[-1500:]}"
                         for s, p in pis.items())
        raise AssertionError(f"{exc}\n{logs}\n{services.logs()}") from None
    finally:
        services.stop_all()
        for pi in pis.values():
            pi.stop()
        site.stop()


async def _run(tmp_path: Path, services: ServiceGroup, csms: Csms, site: Broker,
               pis: dict[str, Broker]) -> None:
    for station in ("P1", "P2"):
        broker = pis[station]
        base = {"VOLTBUS_STATIONS": station, "VOLTBUS_DATA_DIR": str(tmp_path / station)}
        services.start("hardware", {**base, **broker.env("hardware"),
                                    "VOLTBUS_METER_INTERVAL_S": "0.5"})
        services.start("gateway", {**base, **broker.env("gateway"),
                                   "VOLTBUS_CSMS_URL": csms.url, "VOLTBUS_MAX_CURRENT_A": "16"})
    services.start("energy", {**site.env("energy"), "VOLTBUS_STATIONS": "P1",
                              "VOLTBUS_ENERGY_ALL_STATIONS": "true",
                              "VOLTBUS_ENERGY_SITE": SITE,
                              "VOLTBUS_ENERGY_FUSE_A": str(FUSE_A),
                              "VOLTBUS_ENERGY_SIM_HOUSE_A": str(HOUSE_A),
                              "VOLTBUS_ENERGY_CONNECTOR_MAX_A": "16",
                              "VOLTBUS_DATA_DIR": str(tmp_path / "energy")})
    # P1 crossed the TLS bridge; P2's gateway is online on its own broker
    await wait_online(site, "P1", ("hardware", "gateway"))
    await wait_online(pis["P2"], "P2", ("hardware", "gateway"))
    await wait_online(site, SITE, ("energy",))

    watch = Watch()
    everything: list[str] = []
    spy = Bus(site.settings("energy"), station="+", service=None)

    async def seen(topic: str, payload: bytes, retain: bool) -> None:
        everything.append(topic)

    spy.on_raw(f"{ROOT}/#", seen)
    op = Bus(site.settings("operator", stations=["P1"]), station="P1", service=None)
    local = {s: Bus(pis[s].settings("operator", stations=[s]), station=s, service=None)
             for s in ("P1", "P2", "P3")}
    for s in ("P1", "P2"):
        watch.follow(local[s], ch.CHARGING, f"{s}.charging", connector=1)
        watch.follow(local[s], ch.OCPP_STATUS, f"{s}.status", connector=1)
    tasks = [asyncio.create_task(b.run()) for b in (spy, op, *local.values())]
    try:
        for b in (spy, op, *local.values()):
            await b.wait_connected(5)
        for s in ("P1", "P2"):
            await watch.until(lambda lt, s=s: lt.get(f"{s}.status") is not None
                              and lt[f"{s}.status"].status is ConnectorStatus.AVAILABLE,
                              f"{s} Available", 30)
        # P1 charges, commanded from the site broker; the energy manager's share reaches its
        # gateway on the Pi's broker through the bridge: (15 A fuse - 5 A house) = 10 A
        op.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await watch.until(lambda lt: lt["P1.status"].status is ConnectorStatus.PREPARING,
                          "P1 Preparing (plugged from the site)")
        op.publish(ch.COMMAND, GatewayCommand(command=CommandName.START, id_tag="04A1B2C3"),
                   connector=1)
        await watch.until(lambda lt: lt["P1.status"].status is ConnectorStatus.CHARGING,
                          "P1 Charging", 30)
        await watch.until(lambda lt: lt.get("P1.charging") is not None
                          and lt["P1.charging"].current_limit_a == FUSE_A - HOUSE_A,
                          "the energy manager's 10 A at P1's gateway", 20)
        # P2, behind the bridge with the wrong password, charges on its own broker alone
        local["P2"].publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await watch.until(lambda lt: lt["P2.status"].status is ConnectorStatus.PREPARING,
                          "P2 Preparing")
        local["P2"].publish(ch.COMMAND, GatewayCommand(command=CommandName.START,
                                                       id_tag="04A1B2C3"), connector=1)
        await watch.until(lambda lt: lt["P2.status"].status is ConnectorStatus.CHARGING,
                          "P2 Charging without the site", 30)
        local["P3"].publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await asyncio.sleep(3)  # several bridge restart attempts (restart_timeout 2 30)
        assert not [t for t in everything if "/P2/" in t or "/P3/" in t], everything
        assert any("/P1/" in t for t in everything)
        for name, why in (("p2", "not authori"), ("p3", "certificate verify failed")):
            log = (pis[name.upper()].directory / "mosquitto.log").read_text().lower()
            assert why in log, (name, log[-1500:])
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
