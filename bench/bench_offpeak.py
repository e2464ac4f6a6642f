"""Off-peak policy cost in the gateway model: StationModel.handle() per meter reading (the most
frequent event) on a charging connector, without the off-peak pass, with the policy off, and on
with the window closed (session held) - plus the schedule's is_open/next_change per call.

    uv run python bench/bench_offpeak.py [--events 20000] [--connectors 4]

Prints the median and p99 per event (microseconds) and the ratio to the run without off-peak.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from voltbus_common.enums import CommandName, PilotState
from voltbus_ocpp.model.authorisation import Authoriser
from voltbus_ocpp.model.events import (
    AuthorizeAnswered,
    Command,
    LinkChanged,
    MeterSnapshot,
    MeterUpdated,
    PilotChanged,
)
from voltbus_ocpp.model.offpeak import OffPeakChanged, OffPeakSchedule
from voltbus_ocpp.model.results import AuthStatus
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.protocol.v16.config_store import ConfigStore

T0 = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


def model(connectors: int, mode: str) -> StationModel:
    cfg = ConfigStore(None, overrides={"MeterValueSampleInterval": "0"})
    m = StationModel(connectors, cfg, Authoriser(cfg, local_list={}, cache={}),
                     max_current_a=16.0, clock=lambda: T0)
    if mode == "none":
        m.offpeak.annotate = lambda effects, _connectors: effects  # type: ignore[method-assign]
    m.startup()
    m.handle(LinkChanged(True))
    if mode == "held":
        m.handle(OffPeakChanged(True, False, T0 + timedelta(hours=4)))
    for n in m.connectors:
        m.handle(PilotChanged(n, PilotState.C))
        m.handle(Command(n, CommandName.START, "s", id_tag=f"TAG{n}"))
        m.handle(AuthorizeAnswered(f"TAG{n}", AuthStatus.ACCEPTED))
    return m


def timed(events: int, step: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(events):
        t = time.perf_counter_ns()
        step(i)
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def report(name: str, samples: list[float], base: float | None) -> float:
    median = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100)[98]
    ratio = f"  x{median / base:.2f}" if base else ""
    print(f"{name:<38} median {median:7.2f} us  p99 {p99:7.2f} us{ratio}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--connectors", type=int, default=4)
    args = parser.parse_args()
    base = None
    for mode, label in (("none", "handle(meter), no off-peak pass"),
                        ("off", "handle(meter), off-peak disabled"),
                        ("held", "handle(meter), off-peak on, held")):
        m = model(args.connectors, mode)
        n = args.connectors

        def step(i: int, m: StationModel = m, n: int = n) -> None:
            m.handle(MeterUpdated(i % n + 1, MeterSnapshot(1000.0 + i, 3680.0, (16.0,), (230.0,),
                                                           T0)))

        median = report(label, timed(args.events, step), base)
        base = base or median
    schedule = OffPeakSchedule.parse("daily 23:00-07:00; sat,sun 00:00-24:00", "2026-12-25",
                                     "Europe/Amsterdam")
    report("schedule is_open + next_change",
           timed(2000, lambda i: (schedule.is_open(T0 + timedelta(minutes=i)),
                                  schedule.next_change(T0 + timedelta(minutes=i)))), None)


if __name__ == "__main__":
    main()
