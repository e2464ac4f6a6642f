"""The gateway's fail-safe when the energy manager is lost (the real gateway, simulated hardware,
dev central system and the energy manager as processes on a real Mosquitto): the energy
manager's limit holds only while it is refreshed. Frozen (SIGSTOP: no limit, no Will), its
connector falls to VOLTBUS_ENERGY_LIMIT_FAILSAFE_A after VOLTBUS_ENERGY_LIMIT_TIMEOUT_S and
ocpp/{c}/charging says why; thawed, its limit is back at once. Stopped, its status goes
offline and the fail-safe starts at once, also for a gateway restarted meanwhile. Without an
energy manager (or with another site's) nothing changes, and a bad setting exits 2 naming it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.energy.test_with_gateway import Watch, start_session
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, ServiceProcess, wait_online
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ConnectorStatus, LimitSource

FUSE_A, HOUSE_A = 16.0, 5.0
SHARE_A = FUSE_A - HOUSE_A  # one car: 11 A, below the hardware's 16 A
FAILSAFE_A = 6.0


def charging(latest: dict[str, Any]) -> Any:
    return latest.get("charging")


def managed(amps: float) -> Any:
    """The energy manager's limit in force, no fail-safe."""
    return lambda lt: (charging(lt) is not None and charging(lt).current_limit_a == amps
                       and charging(lt).limit_source is LimitSource.ENERGY_MANAGER
                       and charging(lt).energy_limit_a == amps
                       and not charging(lt).energy_fail_safe)


def fail_safe(reason: str) -> Any:
    return lambda lt: (charging(lt) is not None and charging(lt).energy_fail_safe
                       and charging(lt).current_limit_a == FAILSAFE_A
                       and charging(lt).energy_limit_a == FAILSAFE_A
                       and charging(lt).limit_source is LimitSource.ENERGY_FAIL_SAFE
                       and reason in (charging(lt).energy_fail_safe_reason or ""))


async def site_with_one_car(services: ServiceGroup, mosquitto: Broker, station: str,
                            tmp_path: Path, gateway_env: dict[str, str]
                            ) -> tuple[ServiceProcess, dict[str, str], Bus, Watch]:
    """The charge point (gateway at 16 A), the energy manager (simulated grid: 5 A house,
    16 A fuse; limits re-sent every 0.3 s) and a running session at the energy manager's
    11 A; returns the energy manager's process and env, the operator's bus and its Watch (the
    bus runs: the caller cancels it)."""
    await services.start_charge_point(mosquitto, station, tmp_path / "data", gateway_env={
        "VOLTBUS_MAX_CURRENT_A": "16", **gateway_env})
    site = f"S{station}"
    energy_env = {**mosquitto.env("energy"), "VOLTBUS_STATIONS": station,
                  "VOLTBUS_ENERGY_SITE": site, "VOLTBUS_ENERGY_FUSE_A": str(FUSE_A),
                  "VOLTBUS_ENERGY_SIM_HOUSE_A": str(HOUSE_A),
                  "VOLTBUS_ENERGY_CONNECTOR_MAX_A": "16", "VOLTBUS_ENERGY_PERIOD_S": "0.2",
                  "VOLTBUS_ENERGY_RESEND_S": "0.3",
                  # a frozen process must not lose its connection (and send its Will) soon
                  "VOLTBUS_MQTT_KEEPALIVE_S": "120",
                  "VOLTBUS_DATA_DIR": str(tmp_path / "energy")}
    energy = services.start("energy", energy_env)
    await wait_online(mosquitto, site, ("energy",))
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    watch = Watch()
    watch.follow(operator, ch.CHARGING, "charging", connector=1)
    watch.follow(operator, ch.OCPP_STATUS, "status", connector=1)
    operator_task = asyncio.create_task(operator.run())
    operator.task = operator_task  # type: ignore[attr-defined]
    await start_session(operator, watch)
    await watch.until(lambda lt: lt["status"].status is ConnectorStatus.CHARGING, "Charging", 30)
    await watch.until(managed(SHARE_A), f"the energy manager's {SHARE_A} A")
    return energy, energy_env, operator, watch


async def stop_bus(bus: Bus) -> None:
    task: asyncio.Task[None] = bus.task  # type: ignore[attr-defined]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_no_refresh_brings_the_fail_safe_and_the_limit_takes_over_again(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    """SIGSTOP freezes the energy manager (no limit, no Will): after the 1.5 s timeout the
    car charges at the 6 A fail-safe and the bus says why; SIGCONT: 11 A again at once."""
    energy, _env, operator, watch = await site_with_one_car(
        services, mosquitto, station, tmp_path, {"VOLTBUS_ENERGY_LIMIT_TIMEOUT_S": "1.5"})
    try:
        await asyncio.sleep(2.0)  # refreshed every 0.3 s: well inside the timeout
        assert managed(SHARE_A)(watch.latest), watch.latest
        os.kill(energy.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        await watch.until(fail_safe("no energy manager limit for 1.5 s"),
                          "the fail-safe limit after the timeout", 10)
        waited = time.monotonic() - frozen
        # the last refresh came at most 0.3 s (plus a step) before the freeze
        assert 1.0 <= waited <= 6.0, waited
        assert watch.latest["status"].status is ConnectorStatus.CHARGING  # 6 A: still charging

        os.kill(energy.pid, signal.SIGCONT)
        thawed = time.monotonic()
        await watch.until(managed(SHARE_A), "the energy manager's limit again", 10)
        assert time.monotonic() - thawed < 5.0
    except AssertionError:
        raise AssertionError(services.logs()) from None
    finally:
        os.kill(energy.pid, signal.SIGCONT)
        await stop_bus(operator)


async def test_the_energy_managers_will_brings_the_fail_safe_at_once(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    """A 60 s timeout, so only the status can do it: the energy manager stopped (its status
    offline), the fail-safe starts within seconds; started again, its limit is back. Stopped
    again and the gateway restarted meanwhile: the retained offline status puts the restarted
    gateway's connector in fail-safe at once (it remembers the connector was managed)."""
    energy, energy_env, operator, watch = await site_with_one_car(
        services, mosquitto, station, tmp_path, {"VOLTBUS_ENERGY_LIMIT_TIMEOUT_S": "60"})
    site = f"S{station}"
    try:
        stopped = time.monotonic()
        energy.stop()
        await watch.until(fail_safe("energy manager offline"), "the fail-safe on the Will", 10)
        assert time.monotonic() - stopped < 15.0  # far below the 60 s timeout

        energy = services.start("energy", energy_env)
        await wait_online(mosquitto, site, ("energy",))
        await watch.until(managed(SHARE_A), "the energy manager's limit again", 20)

        energy.stop()
        await watch.until(fail_safe("energy manager offline"), "the fail-safe again", 10)
        gateway = next(p for p in services.started if p.name == "gateway" and p.alive())
        restarted = Watch()
        restarted.follow(operator, ch.CHARGING, "charging", connector=1)
        await services.restart(gateway, mosquitto, station)
        await restarted.until(lambda lt: charging(lt) is not None
                              and charging(lt).energy_fail_safe
                              and charging(lt).energy_limit_a == FAILSAFE_A
                              and charging(lt).energy_fail_safe_reason
                              == "energy manager offline",
                              "the restarted gateway in fail-safe", 15)
    except AssertionError:
        raise AssertionError(services.logs()) from None
    finally:
        await stop_bus(operator)


async def test_without_an_energy_manager_nothing_changes(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    """A 1 s timeout, no energy manager for this station: the session charges at the
    hardware's 16 A well past the timeout, and another site's energy manager coming and
    going (its Will) changes nothing here."""
    await services.start_charge_point(mosquitto, station, tmp_path / "data", gateway_env={
        "VOLTBUS_MAX_CURRENT_A": "16", "VOLTBUS_ENERGY_LIMIT_TIMEOUT_S": "1"})
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    watch = Watch()
    seen: list[Any] = []
    watch.follow(operator, ch.CHARGING, "charging", connector=1)
    watch.follow(operator, ch.OCPP_STATUS, "status", connector=1)

    async def keep(msg: Any) -> None:
        seen.append(msg.payload)

    operator.on(ch.CHARGING, keep, connector=1)
    task = asyncio.create_task(operator.run())
    try:
        await start_session(operator, watch)
        await watch.until(lambda lt: lt["status"].status is ConnectorStatus.CHARGING,
                          "Charging", 30)
        # another site's energy manager (its own status, online then offline)
        other = Bus(mosquitto.settings("energy", stations=[f"X{station}"]),
                    station=f"X{station}", service="energy")
        async with other:
            await other.wait_connected(5)
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.5)  # past the timeout
        latest = watch.latest["charging"]
        assert (latest.current_limit_a, latest.limit_source, latest.energy_limit_a,
                latest.energy_fail_safe) == (16.0, LimitSource.HARDWARE, None, False)
        assert not any(p.energy_fail_safe for p in seen), seen
        assert watch.latest["status"].status is ConnectorStatus.CHARGING
    except AssertionError:
        raise AssertionError(services.logs()) from None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_bad_fail_safe_setting_exits_2_naming_it(tmp_path: Path) -> None:
    """A timeout that is not a number and a fail-safe limit an EV cannot be offered (3 A):
    exit 2 at once, the setting named, no traceback."""
    for name, value, words in (
            ("VOLTBUS_ENERGY_LIMIT_TIMEOUT_S", "soon", "valid number"),
            ("VOLTBUS_ENERGY_LIMIT_FAILSAFE_A", "3", "at least 6 A"),
            ("VOLTBUS_ENERGY_LIMIT_FAILSAFE_A", "-1", "greater than or equal to 0")):
        env = {**os.environ, name: value, "VOLTBUS_DATA_DIR": str(tmp_path)}
        done = subprocess.run([sys.executable, "-m", "voltbus_ocpp"], env=env, timeout=30,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 2, (name, value, done.stderr)
        assert "invalid configuration (GatewaySettings)" in done.stderr, done.stderr
        [line] = [x for x in done.stderr.splitlines() if x.strip().startswith(name + ":")]
        assert words in line, done.stderr
        assert "Traceback" not in done.stderr
