"""The benchmark runs (tiny configuration): it must produce its table of timings and ratios, not hit targets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.lab


def test_bench_produces_a_results_table_with_provision_and_pyinfra(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    env = {**os.environ, "OCP_LAB_PREFIX": "ocs-", "OCP_LAB_SUBNET": "10.83.0", "OCP_LAB_DIR": "/run/ocs-lab",
           "OCP_BENCH_DIR": str(tmp_path / "work")}
    r = subprocess.run([sys.executable, str(REPO / "bench/run"), "--hosts", "2", "--reps", "1",
                        "--tools", "provision,pyinfra", "--files-curve-hosts", "2", "--write", str(out)],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = out.read_text()
    assert re.search(r"^\| 2 \| provision \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", table, re.M), table
    assert re.search(r"^\| 2 \| pyinfra \| [\d.]+ \| [\d.]+ \| nan \| [\d.]+ \| [\d.]+× \| [\d.]+× \|", table, re.M)
    assert re.search(r"^\| 60 \| [\d.]+ \|", table, re.M)
    assert "`provision validate` of a 100-host inventory:" in table
