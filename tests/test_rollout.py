"""Batching and failure budgets (pure), and every shipped playbook loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import Playbook, batches, fail_budget, roll_out
from provisioner.playbook import default_playbook, load_playbook

HOSTS = [f"h{i}" for i in range(1, 11)]


@pytest.mark.parametrize(("serial", "sizes"), [
    ((1, "100%"), [1, 9]),
    ((1,), [1] * 10),
    (("50%",), [5, 5]),
    ((1, "50%"), [1, 5, 4]),
    ((2, 3, "30%"), [2, 3, 3, 2]),
    (("1%",), [1] * 10),
])
def test_batches(serial: tuple, sizes: list[int]) -> None:
    got = batches(HOSTS, serial)
    assert [len(b) for b in got] == sizes
    assert [h for b in got for h in b] == HOSTS


@pytest.mark.parametrize(("max_fail", "size", "budget"), [(0, 5, 0), (2, 5, 2), ("10%", 5, 0), ("50%", 5, 2)])
def test_fail_budget(max_fail: int | str, size: int, budget: int) -> None:
    assert fail_budget(max_fail, size) == budget


def test_a_failed_batch_stops_the_rollout_and_later_hosts_are_not_reached() -> None:
    seen: list[list[str]] = []

    def run(batch: list[str]) -> dict[str, HostResult]:
        seen.append(batch)
        return {h: HostResult(h, HostStatus.FAILED if h == "h2" else HostStatus.CHANGED) for h in batch}

    r = roll_out(HOSTS[:4], Playbook(serial=(1,)), run, sleep=lambda s: None)
    assert seen == [["h1"], ["h2"]] and r.stopped_after_batch == 2
    assert [r.results[h].status for h in HOSTS[:4]] == [HostStatus.CHANGED, HostStatus.FAILED,
                                                        HostStatus.NOT_REACHED, HostStatus.NOT_REACHED]


SHIPPED = {
    "default": Playbook(serial=(1, "100%"), max_fail=0, name="default", health_gate=True, health_timeout=None,
                        settle=(130.0, 0.0), pause=0.0, on_failure="stop"),
    "canary-then-halves": Playbook(serial=(1, "50%"), max_fail="10%", name="canary-then-halves", health_gate=True,
                                   health_timeout=None, pause=0.0, on_failure="rollback"),
    "one-by-one": Playbook(serial=(1,), max_fail=0, name="one-by-one", health_gate=True, health_timeout=180,
                           pause=5.0, on_failure="stop"),
}


def test_shipped_playbooks_load_with_the_values_their_files_state() -> None:
    found = {p.stem: load_playbook(str(p)) for p in sorted((Path(__file__).parents[1] / "playbooks").glob("*.yaml"))}
    assert found == SHIPPED
    # what `apply` uses without --playbook: one canary, then the rest (10 hosts: 1 then 9, never 1 by 1)
    assert default_playbook() == SHIPPED["default"]
    assert [len(b) for b in batches(HOSTS, default_playbook().serial)] == [1, 9]


def test_release_plan_installs_switches_and_prunes_but_never_the_current_link() -> None:
    from provisioner.core.changes import Action
    from provisioner.core.desired import DesiredHost, DesiredRelease
    from provisioner.core.observed import ObservedHost
    from provisioner.plan import plan_host

    r = DesiredRelease("/opt/openclaw", "2026.9.6", "24.21.0", "push", keep=2)
    obs = ObservedHost("h", releases={"2026.9.4": "openclaw=2026.9.4 node=24.21.0 sha256=a",
                                      "2026.9.5": "openclaw=2026.9.5 node=24.21.0 sha256=b"},
                       current_release="2026.9.5")
    hp = plan_host(DesiredHost("h", "", "/root", (), (), (), r), obs)
    got = [(c.kind, c.action, c.target) for c in hp.changes]
    assert got == [("release", Action.CREATE, "/opt/openclaw/2026.9.6"),
                   ("release-link", Action.UPDATE, "/opt/openclaw/current"),
                   ("release", Action.DELETE, "/opt/openclaw/2026.9.4")]
    down = plan_host(DesiredHost("h", "", "/root", (), (), (),
                                 DesiredRelease("/opt/openclaw", "2026.9.1", "24.21.0", "push")), obs)
    assert down.error and "downgrade must be explicit" in down.error
