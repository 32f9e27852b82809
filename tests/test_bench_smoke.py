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


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OCP_LAB_PREFIX": "ocs-", "OCP_LAB_SUBNET": "10.83.0", "OCP_LAB_DIR": "/run/ocs-lab",
            "OCP_BENCH_DIR": str(tmp_path / "work")}


def test_bench_produces_a_results_table_with_provision_and_pyinfra(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    env = _env(tmp_path)
    r = subprocess.run([sys.executable, str(REPO / "bench/run"), "--hosts", "2", "--reps", "1",
                        "--tools", "provision,pyinfra", "--files-curve-hosts", "2", "--write", str(out)],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = out.read_text()
    assert re.search(r"^\| 2 \| provision \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", table, re.M), table
    assert re.search(r"^\| 2 \| pyinfra \| [\d.]+ \| [\d.]+ \| nan \| [\d.]+ \| [\d.]+× \| [\d.]+× \|", table, re.M)
    assert re.search(r"^\| 60 \| [\d.]+ \|", table, re.M)
    assert "`provision validate` of a 100-host inventory:" in table


def test_bench_wan_mode_runs_through_the_relay_and_reports_it(tmp_path: Path) -> None:
    """WAN mode, cheaply: 2 hosts, provision only, one RTT. The relay really sits in the path (sshd's banner comes
    at least 2 RTT after connect), and the controller's memory and descriptors are reported."""
    out = tmp_path / "benchmarks.md"
    r = subprocess.run([sys.executable, str(REPO / "bench/run"), "--hosts", "2", "--reps", "1", "--tools", "provision",
                        "--files-curve-hosts", "0", "--rtt", "40", "--write", str(out)],
                       env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = out.read_text()
    assert re.search(r"^\| 2 @ 40 ms \| provision \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", table, re.M), table
    relay = re.search(r"^\| 40 \| ([\d.]+) / [\d.]+ \| sshd \+ 80 \| (\d+) \|", table, re.M)
    assert relay, table
    # the tools' traffic went through it: the banner checks alone are ~30 chunks
    assert float(relay[1]) >= 80 and int(relay[2]) > 100, relay[0]
    assert re.search(r"^\| 2 @ 40 ms \| \d+ MB / \d+ fds \|", table, re.M), table
    assert "Load average (1 min)" in table
