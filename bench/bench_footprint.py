"""Idle footprint of the four services: memory (RSS, PSS), idle CPU and cold start to Available.

Starts a real Mosquitto, a local InfluxDB 1.x and the development central system (not counted),
then the hardware (simulated), gateway, recorder and api services as processes, with their
defaults otherwise. It times the cold start from launching the four processes to the first
StatusNotification `Available` the central system receives (by the central system's own receive
time), waits until every service is online and the stack has settled, then prints per service:

- RSS (VmRSS) and PSS (Pss from /proc/<pid>/smaps_rollup: shared pages split among sharers),
- CPU as a share of one core over an idle window (user + system ticks from /proc/<pid>/stat),
- the CPU seconds each service had used when the central system saw Available (its start-up
  cost: on a shared 2-core machine the cold start is about the four added up over the share of
  the cores they get),

and the totals. With --runs N the whole stack is started N times and the medians are printed.

An installed stack has its bytecode compiled (the image sets UV_COMPILE_BYTECODE=1), while a
development checkout run with PYTHONDONTWRITEBYTECODE=1 compiles every module at every start
(about twice the start-up CPU, and several MB more per process). So the bench first compiles the
virtualenv and the workspace sources (`compileall`, quick once done); --no-compile skips that.

    uv run python bench/bench_footprint.py [--runs 3] [--idle 30] [--settle 10]

Issue 14's goal: the four together <= 150 MB PSS idle, <= 1 % of a core idle, cold start to
Available <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, cpu_seconds, rss_kib, wait_online
from voltbus_common.devbroker import free_port, wait_for_port
from voltbus_common.devinflux import LocalInfluxDB

SERVICES = ("gateway", "hardware", "recorder", "api")
KEYS = ("rss", "pss", "cpu", "start_cpu")
STATION = "FP001"


def pss_kib(pid: int) -> int:
    """Proportional set size of a process in KiB (from /proc/<pid>/smaps_rollup)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def first_available(http_port: int) -> float | None:
    """Receive time (epoch s) of the first StatusNotification Available at the central system."""
    url = f"http://127.0.0.1:{http_port}/chargers/{STATION}/messages?action=StatusNotification"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            messages = json.loads(response.read())
    except OSError:
        return None
    for message in messages:
        if message.get("payload", {}).get("status") == "Available":
            return datetime.fromisoformat(message["at"]).timestamp()
    return None


def keep_logs(group: ServiceGroup, logs: Path) -> None:
    """Copy every started service's log into logs/."""
    logs.mkdir(parents=True, exist_ok=True)
    for proc in group.started:
        shutil.copy(proc.log_path, logs / proc.log_path.name)


async def one_run(idle_s: float, settle_s: float,
                  logs: Path | None = None) -> dict[str, dict[str, float]]:
    """Start the stack once; per service rss/pss (MiB/MB) and cpu (%), plus the cold start."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Broker(work / "mosquitto")
        broker.prepare()
        broker.start()
        influx = LocalInfluxDB(work / "influx")
        influx.start()
        group = ServiceGroup(work)
        try:
            ws_port, http_port, api_port = free_port(), free_port(), free_port()
            token_file = work / "api_token"
            token_file.write_text(secrets.token_urlsafe(24))
            group.start("devcsms", {"VOLTBUS_DEVCSMS_PORT": str(ws_port),
                                    "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port)})
            await asyncio.to_thread(wait_for_port, ws_port, 60)
            await asyncio.to_thread(wait_for_port, http_port, 60)
            base = {"VOLTBUS_STATIONS": STATION, "VOLTBUS_DATA_DIR": str(work / "data")}
            influx_env = {"VOLTBUS_INFLUX_API": "1", "VOLTBUS_INFLUX_URL": influx.url,
                          "VOLTBUS_INFLUX_DATABASE": "voltbus"}
            envs = {
                "gateway": {**base, **broker.env("gateway"),
                            "VOLTBUS_CSMS_URL": f"ws://127.0.0.1:{ws_port}/ocpp"},
                "hardware": {**base, **broker.env("hardware")},
                "recorder": {**base, **broker.env("recorder"), **influx_env},
                "api": {**base, **broker.env("api"), **influx_env,
                        "VOLTBUS_API_PORT": str(api_port),
                        "VOLTBUS_API_ADMIN_TOKEN_FILE": str(token_file)},
            }
            started = time.time()
            procs = {name: group.start(name, env) for name, env in envs.items()}
            available = None
            while available is None and time.time() - started < 60:
                await asyncio.sleep(0.02)
                available = await asyncio.to_thread(first_available, http_port)
            if available is None:
                raise TimeoutError(f"never Available at the central system\n{group.logs()}")
            start_cpu = {n: cpu_seconds(p.pid) for n, p in procs.items()}
            await wait_online(broker, STATION, SERVICES, timeout=60)
            await asyncio.to_thread(wait_for_port, api_port, 60)
            await asyncio.sleep(settle_s)
            for name, proc in procs.items():
                if not proc.alive():
                    raise RuntimeError(f"{name} died\n{group.logs()}")
            cpu0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
            t0 = time.monotonic()
            await asyncio.sleep(idle_s)
            elapsed = time.monotonic() - t0
            result = {n: {"cpu": (cpu_seconds(p.pid) - cpu0[n]) / elapsed * 100,
                          "rss": rss_kib(p.pid) / 1024, "pss": pss_kib(p.pid) * 1.024 / 1000,
                          "start_cpu": start_cpu[n]}
                      for n, p in procs.items()}
            result["cold_start"] = {"s": available - started}
            return result
        finally:
            group.stop_all()
            if logs is not None:
                keep_logs(group, logs)
            influx.stop()
            broker.stop()


def compile_bytecode() -> None:
    """Bytecode for the virtualenv and the workspace packages, as an installed image has."""
    repo = Path(__file__).resolve().parents[1]
    paths = [sysconfig.get_paths()["purelib"], str(repo / "common"), str(repo / "services")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *paths], check=False,
                   stdout=subprocess.DEVNULL)


def main(runs: int, idle_s: float, settle_s: float, logs: Path | None, compile_: bool) -> None:
    """Run the stack `runs` times; print each run and the medians."""
    if compile_:
        compile_bytecode()
    print(f"bytecode {'compiled' if compile_ else 'not compiled (compiled at each start)'}")
    results = []
    for i in range(runs):
        result = asyncio.run(one_run(idle_s, settle_s, logs))
        results.append(result)
        total = {k: sum(result[n][k] for n in SERVICES) for k in KEYS}
        print(f"run {i + 1}: cold start to Available {result['cold_start']['s']:.2f} s "
              f"(start CPU {total['start_cpu']:.2f} s); RSS {total['rss']:.1f} MiB, "
              f"PSS {total['pss']:.1f} MB, CPU {total['cpu']:.2f} % of one core")

    def median(name: str, key: str) -> float:
        return statistics.median(r[name][key] for r in results)

    print(f"\nmedians over {runs} run(s), idle window {idle_s:g} s:")
    print(f"{'service':<10} {'RSS MiB':>8} {'PSS MB':>8} {'CPU %':>7} {'start CPU s':>12}")
    for name in SERVICES:
        print(f"{name:<10} {median(name, 'rss'):8.1f} {median(name, 'pss'):8.1f} "
              f"{median(name, 'cpu'):7.2f} {median(name, 'start_cpu'):12.2f}")
    totals = {k: statistics.median(sum(r[n][k] for n in SERVICES) for r in results)
              for k in KEYS}
    print(f"{'total':<10} {totals['rss']:8.1f} {totals['pss']:8.1f} {totals['cpu']:7.2f} "
          f"{totals['start_cpu']:12.2f}")
    cold = statistics.median(r["cold_start"]["s"] for r in results)
    print(f"cold start to Available at the central system: {cold:.2f} s")
    print(f"goal ratios: PSS {totals['pss'] / 150:.2f} of 150 MB, CPU {totals['cpu']:.2f} of 1 %, "
          f"cold start {cold / 2:.2f} of 2 s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--idle", type=float, default=30.0, help="idle CPU window, seconds")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds after every service is online before measuring")
    parser.add_argument("--logs", type=Path, default=None,
                        help="copy the services' logs (of the last run) into this directory")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile bytecode first (a source checkout's start)")
    args = parser.parse_args()
    main(args.runs, args.idle, args.settle, args.logs, not args.no_compile)
