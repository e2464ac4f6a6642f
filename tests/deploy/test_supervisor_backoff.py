"""`voltbus up`'s supervisor restarts a crashed service fast; only a crash loop backs off."""

from __future__ import annotations

import itertools
import os
import sys
import time

import pytest

from voltbus_common.cli.supervisor import Child, Supervisor, restart_delay_s


def test_first_crashes_restart_after_one_second_then_the_delay_doubles_to_30() -> None:
    assert [restart_delay_s(n, 1) for n in range(1, 10)] == [1, 1, 1, 2, 4, 8, 16, 30, 30]
    assert restart_delay_s(1, -9) == 1  # SIGKILL
    assert restart_delay_s(7, 75) == 0  # a planned restart (the gateway's hard Reset)


def _starts(child: Child, within_s: float, sup: Supervisor) -> list[float]:
    starts = [child.started_at]
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        sup.poll()
        if child.started_at != starts[-1]:
            starts.append(child.started_at)
        time.sleep(0.05)
    return starts


@pytest.mark.parametrize(("code", "gap_s"), [(3, (0.95, 1.9)), (75, (0.0, 1.0))])
def test_a_real_crashing_process_is_restarted_in_time(code: int, gap_s: tuple[float, float]
                                                      ) -> None:
    sup = Supervisor()
    child = Child("crasher", [sys.executable, "-c", f"raise SystemExit({code})"],
                  dict(os.environ))
    sup.children.append(child)
    sup._start(child)
    try:
        starts = _starts(child, 3.5, sup)
    finally:
        sup.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) >= 2, gaps
    for gap in gaps[:3]:  # start-up plus the delay, polled every 50 ms (the old first was 2 s)
        assert gap_s[0] <= gap <= gap_s[1], gaps
