"""Batching and failure budgets (pure), and every shipped playbook loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import Playbook, batches, fail_budget, roll_out
from provisioner.playbook import load_playbook

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


def test_shipped_playbooks_load() -> None:
    for p in sorted((Path(__file__).parents[1] / "playbooks").glob("*.yaml")):
        assert isinstance(load_playbook(str(p)), Playbook)


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
