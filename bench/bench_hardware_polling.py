"""Cost of polling: CPU of the hardware service per connector at a 1 s meter interval.

Runs `python -m voltbus_hardware` as its own process against a local Mosquitto, (a) with
simulated connectors and (b) with real Modbus drivers reading N Eastron SDM630 meters on one
RS-485 line (a pymodbus RTU server on a pty, in this process). Measures the service process only
(/proc/<pid>/stat), in 5 s windows after a warm-up, and prints median and max CPU %, and CPU per
connector. Usage: uv run python bench/bench_hardware_polling.py [--seconds 15] [--sizes 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimDevice

from tests.fixtures.modbus_slave import MeterValues, sdm630
from tests.fixtures.pty_link import PtyLink
from voltbus_common.devbroker import LocalMosquitto

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def measure(env: dict[str, str], seconds: float) -> list[float]:
    """CPU % of the service in 5 s windows (0.2 % resolution), after a 3 s warm-up."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voltbus_hardware", env={**os.environ, **env},
        stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.sleep(3)
        windows = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            c0, t0 = cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(5)
            windows.append(100 * (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0))
        return windows
    finally:
        proc.terminate()
        await proc.wait()


def station_file(path: Path, port: str, count: int) -> Path:
    """N connectors, each a simulated EV with an SDM630 at address n on one RS-485 line."""
    lines = ["serial:", f"  rs485: {{port: {port}, baudrate: 19200, timeout_s: 0.2}}",
             "connectors:"]
    for n in range(1, count + 1):
        lines.append(f"  - {{evse: {{type: sim}}, relay: {{type: sim}}, meter: {{type: modbus, "
                     f"model: eastron_sdm630, bus: rs485, address: {n}}}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def report(kind: str, count: int, windows: list[float]) -> None:
    """One line of results."""
    median = statistics.median(windows)
    print(f"{kind:10} {count:5d} connectors  CPU median {median:6.2f} %  max {max(windows):6.2f} %"
          f"  per connector {median / count:6.3f} %  ({len(windows)} windows)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--sim-sizes", default="1,4,16,100,500")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalMosquitto(Path(tmp) / "mosquitto")
        broker.prepare()
        broker.start()
        base = {**broker.env("hardware"), "VOLTBUS_METER_INTERVAL_S": "1.0",
                "VOLTBUS_LOG_LEVEL": "WARNING"}
        try:
            print(f"meter interval 1.0 s, pilot/reader poll 0.25 s, {os.cpu_count()} cores")
            results: dict[tuple[str, int], float] = {}
            for count in (int(x) for x in args.sim_sizes.split(",")):
                windows = await measure({**base, "VOLTBUS_STATIONS": "BENCH",
                                         "VOLTBUS_CONNECTORS": str(count)}, args.seconds)
                report("simulated", count, windows)
                results[("sim", count)] = statistics.median(windows)
            for count in (int(x) for x in args.sizes.split(",")):
                link = PtyLink()
                server = ModbusSerialServer(
                    [SimDevice(n, simdata=sdm630(MeterValues())) for n in range(1, count + 1)],
                    port=link.peer_path, baudrate=19200)
                serving = asyncio.create_task(server.serve_forever())
                await asyncio.sleep(0.3)
                path = station_file(Path(tmp) / f"station{count}.yaml", link.driver_path, count)
                windows = await measure({**base, "VOLTBUS_STATIONS": "BENCH",
                                         "VOLTBUS_STATION_FILE": str(path)}, args.seconds)
                report("modbus", count, windows)
                results[("modbus", count)] = statistics.median(windows)
                await server.shutdown()
                serving.cancel()
                link.close()
            one, last = results.get(("modbus", 1)), results.get(("modbus", 16))
            if one and last:
                print(f"modbus 16 vs 1 connectors: CPU ratio {last / one:.1f}x")
        finally:
            broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
