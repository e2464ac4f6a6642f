"""`python -m voltbus_energy` as a process: a configuration it cannot use stops it at once with
exit 2 and a message naming the setting (like every other service)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_sunspec_grid_meter_without_a_host_exits_2_naming_the_setting(tmp_path: Path) -> None:
    env = {**os.environ, "VOLTBUS_ENERGY_GRID": "sunspec", "VOLTBUS_DATA_DIR": str(tmp_path)}
    env.pop("VOLTBUS_ENERGY_GRID_HOST", None)
    done = subprocess.run([sys.executable, "-m", "voltbus_energy"], env=env, timeout=30,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert "invalid configuration (EnergySettings)" in done.stderr
    assert "VOLTBUS_ENERGY_GRID_HOST is needed" in done.stderr
    assert "Traceback" not in done.stderr
