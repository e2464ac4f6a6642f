"""The long runs of the fuzz suites (issue 15; docs/reliability.md, "Bad input and attackers").

The fault tests run small sizes in CI, well under a minute. This runs the same tests, with the
same assertions, at the sizes the issue asks for:

- tests/faults/test_fuzz_csms.py: `--frames` hostile frames (default 20000) from a fake central
  system over a real WebSocket, plus half as many again, to the real gateway during a
  transaction;
- tests/faults/test_fuzz_mqtt.py: `--per-topic` malformed payloads (default 5000) on each of the
  contract's 37 concrete topics, to all five services as processes.

Each run prints its figures (counts, time, RSS before and after, log lines).
Usage: uv run python bench/bench_fuzz.py [--frames 20000] [--per-topic 5000] [--only csms|mqtt]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(test: str, env: dict[str, str], timeout_s: int) -> int:
    """One test file with pytest, output shown; its exit code."""
    cmd = [sys.executable, "-m", "pytest", test, "-q", "-s", "-x", f"--timeout={timeout_s}",
           "-k", "not deep_nesting and not salvage and not refused"]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, check=False).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--per-topic", type=int, default=5000)
    parser.add_argument("--only", choices=["csms", "mqtt"])
    args = parser.parse_args()
    codes = []
    if args.only in (None, "csms"):
        codes.append(run("tests/faults/test_fuzz_csms.py",
                         {"VOLTBUS_FUZZ_FRAMES": str(args.frames)}, 600))
    if args.only in (None, "mqtt"):
        codes.append(run("tests/faults/test_fuzz_mqtt.py",
                         {"VOLTBUS_FUZZ_PER_TOPIC": str(args.per_topic)},
                         300 + args.per_topic // 2))
    sys.exit(max(codes))


if __name__ == "__main__":
    main()
