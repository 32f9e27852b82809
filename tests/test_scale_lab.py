"""docs/scale.md's recipe, on real systemd hosts: a fleet split into groups, each planned to its own saved plan and
applied by its own process (as each job of a CI matrix would), at the same time.

Each apply is held in flight by its gateways' readiness (the stand-in gateway answers /readyz only once a gate file
exists on its host), so "at the same time" is proven, not hoped for: both hosts' locks are seen held at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, install_standin
from tests.test_faults_lab import Fleet, locked, wait_for

pytestmark = pytest.mark.lab

GATE = "/srv/ocp-ready-gate"


@pytest.fixture()
def fleet(lab: Lab, make_host: Callable[..., LabHost], inventory_writer: Callable[..., Path],
          tmp_path: Path) -> Fleet:
    """Two systemd hosts running the stand-in gateway, converged on a first revision (as tests/test_faults_lab)."""
    hosts = {}
    for name in ("gw1", "gw2"):
        hosts[name] = make_host("systemd")
        install_standin(hosts[name])
    f = Fleet(lab, hosts, Provision(tmp_path, lab=lab, env=LAB_ENV), inventory_writer, tmp_path)
    f.converge(f.inventory("r0"))
    return f


def _plan(fleet: Fleet, inv: str, out: Path, *limit: str) -> str:
    r = fleet.provision("plan", inv, *(a for g in limit for a in ("--limit", g)), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    return str(out)


def test_disjoint_saved_plans_apply_at_once_and_an_overlapping_one_is_refused_by_the_host_lock(
        fleet: Fleet, tmp_path: Path) -> None:
    gw1, gw2 = fleet.hosts["gw1"], fleet.hosts["gw2"]
    for h in (gw1, gw2):
        h.run(["rm", "-f", GATE])
    gated = {"extra_env": {"STANDIN_READY_FILE": GATE}, "health_timeout": 120}

    # two matrix jobs: each plans its own group and applies its own plan, at the same time
    inv = fleet.inventory("r1", **gated)
    east = _plan(fleet, inv, tmp_path / "east.plan", "gw1")
    west = _plan(fleet, inv, tmp_path / "west.plan", "gw2")
    a = fleet.provision.start("apply", east)
    b = fleet.provision.start("apply", west)
    wait_for(lambda: locked(gw1) and locked(gw2), timeout=120, what="both applies to hold their host at once")
    assert a.poll() is None and b.poll() is None, "an apply ended before the other took its lock"
    for h in (gw1, gw2):
        h.run(["touch", GATE])
    ra, rb = fleet.provision.finish(a, timeout=180), fleet.provision.finish(b, timeout=180)
    assert ra.returncode == 0, ra.stdout + ra.stderr
    assert rb.returncode == 0, rb.stdout + rb.stderr
    again = fleet.provision("plan", inv, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr  # both groups converged: nothing left to do

    # plans that overlap (gw1 in both): the second apply finds gw1 locked by the first, still running, and stops
    gw1.run(["rm", "-f", GATE])
    inv2 = fleet.inventory("r2", **gated)
    first = _plan(fleet, inv2, tmp_path / "gw1.plan", "gw1")
    whole = _plan(fleet, inv2, tmp_path / "all.plan")
    run = fleet.provision.start("apply", first)
    wait_for(lambda: locked(gw1), timeout=120, what="the first apply to take gw1's lock")
    second = fleet.provision("apply", whole)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "locked by another run that is still going" in second.stdout, second.stdout
    assert run.poll() is None, "the first apply ended before the second tried: the refusal proved nothing"
    gw1.run(["touch", GATE])
    r = fleet.provision.finish(run, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
