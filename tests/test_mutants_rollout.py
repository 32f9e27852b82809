"""The rollout's decisions, exactly, on a stand-in `run_batch` (pure: no host, no clock). Found by mutation testing
(`scripts/mutation rollout`): the README's pause, Ctrl-C, rollback and max_fail claims were only proven through
slow CLI runs, so a changed bound or a dropped branch in `roll_out` went unnoticed by the fast tests.

README, "Rollouts": batches of counts or percentages of the changing hosts, the last one repeating; `max_fail`
failed hosts a batch may have (count or "10%") before the rollout stops; `pause` seconds between batches;
`on_failure: stop` keeps the batch's good hosts on the new revision, `rollback` puts them back too; a failed batch
stops the rollout and hosts not yet reached are untouched; the first Ctrl-C starts no other host."""

from __future__ import annotations

import pytest

from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import Playbook, batches, fail_budget, roll_out

HOSTS = [f"h{i}" for i in range(1, 7)]


class Fleet:
    """A stand-in for the hosts: which batches ran, which hosts were rolled back, the pauses taken."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing
        self.ran: list[list[str]] = []
        self.rolled_back: list[list[str]] = []
        self.pauses: list[float] = []

    def run(self, batch: list[str]) -> dict[str, HostResult]:
        self.ran.append(batch)
        return {h: HostResult(h, HostStatus.FAILED if h in self.failing else HostStatus.CHANGED) for h in batch}

    def roll_back(self, hosts: list[str]) -> dict[str, HostResult]:
        self.rolled_back.append(hosts)
        return {h: HostResult(h, HostStatus.ROLLED_BACK) for h in hosts}


def _status(r, hosts=HOSTS):  # type: ignore[no-untyped-def]
    assert all(res.host == h for h, res in r.results.items())  # every result names its own host
    return [r.results[h].status.value for h in hosts]


@pytest.mark.parametrize(("serial", "sizes"), [
    ((), [6]),  # no serial at all: one batch of everything
    ((2,), [2, 2, 2]),
    (("34%",), [3, 3]),  # a percentage rounds up
    (("33%",), [2, 2, 2]),
    ((0,), [1] * 6),  # a batch holds at least one host
    (("100%", 1), [6]),
    ((4, 1), [4, 1, 1]),
    ((1, 2, 3), [1, 2, 3]),  # each size in turn
    (("50.5%",), [4, 2]),  # 3.03 hosts: rounds up to 4
])
def test_batch_sizes(serial: tuple, sizes: list[int]) -> None:
    got = batches(HOSTS, serial)
    assert [len(b) for b in got] == sizes and [h for b in got for h in b] == HOSTS


@pytest.mark.parametrize(("max_fail", "size", "budget"), [
    ("50%", 3, 1), ("50%", 4, 2), ("100%", 3, 3), ("34%", 3, 1), ("33%", 3, 0), (1, 1, 1),
])
def test_fail_budget_of_a_batch(max_fail: int | str, size: int, budget: int) -> None:
    assert fail_budget(max_fail, size) == budget


@pytest.mark.parametrize(("max_fail", "ran", "stopped"), [
    (0, [["h1"], ["h2", "h3", "h4", "h5", "h6"]], 2),  # the canary is fine, the rest has one failure: stop after 2
    (1, [["h1"], ["h2", "h3", "h4", "h5", "h6"]], None),  # one failure is within budget
    ("20%", [["h1"], ["h2", "h3", "h4", "h5", "h6"]], None),  # 20% of 5 = 1
    ("19%", [["h1"], ["h2", "h3", "h4", "h5", "h6"]], 2),
])
def test_max_fail_decides_whether_the_rollout_stops(max_fail: int | str, ran: list[list[str]],
                                                    stopped: int | None) -> None:
    fleet = Fleet(failing={"h3"})
    r = roll_out(HOSTS, Playbook(serial=(1, "100%"), max_fail=max_fail), fleet.run, sleep=fleet.pauses.append)
    assert fleet.ran == ran and r.stopped_after_batch == stopped
    assert r.ok is False and r.interrupted is False and r.batches == ran


def test_a_failed_batch_leaves_later_hosts_untouched_and_says_after_which_batch() -> None:
    fleet = Fleet(failing={"h2"})
    r = roll_out(HOSTS, Playbook(serial=(1, 2)), fleet.run, fleet.roll_back, sleep=fleet.pauses.append)
    assert fleet.ran == [["h1"], ["h2", "h3"]] and fleet.rolled_back == []  # on_failure: stop
    assert _status(r) == ["changed", "failed", "changed", "not-reached", "not-reached", "not-reached"]
    assert {r.results[h].message for h in ("h4", "h5", "h6")} == {"rollout stopped after batch 2"}
    assert r.stopped_after_batch == 2 and r.batches == [["h1"], ["h2", "h3"], ["h4", "h5"], ["h6"]]


def test_rollback_puts_the_batch_s_good_hosts_back_too() -> None:
    fleet = Fleet(failing={"h2"})
    r = roll_out(HOSTS, Playbook(serial=(1, 3), on_failure="rollback"), fleet.run, fleet.roll_back,
                 sleep=fleet.pauses.append)
    assert fleet.rolled_back == [["h3", "h4"]]  # only the hosts of the failed batch that took the new revision
    assert _status(r) == ["changed", "failed", "rolled-back", "rolled-back", "not-reached", "not-reached"]


def test_rollback_has_nothing_to_do_when_no_host_of_the_batch_succeeded() -> None:
    fleet = Fleet(failing={"h1"})
    r = roll_out(HOSTS, Playbook(serial=(1,), on_failure="rollback"), fleet.run, fleet.roll_back,
                 sleep=fleet.pauses.append)
    assert fleet.rolled_back == [] and r.stopped_after_batch == 1
    r = roll_out(HOSTS, Playbook(serial=(2,), on_failure="rollback"), Fleet(failing={"h1"}).run, None,
                 sleep=fleet.pauses.append)  # no way to roll back given: the good host stays changed
    assert _status(r, ["h1", "h2"]) == ["failed", "changed"]


def test_pause_comes_between_batches_never_before_the_first() -> None:
    fleet = Fleet()
    r = roll_out(HOSTS[:3], Playbook(serial=(1,), pause=2.5), fleet.run, sleep=fleet.pauses.append)
    assert fleet.pauses == [2.5, 2.5] and r.ok and r.stopped_after_batch is None
    fleet = Fleet()
    roll_out(HOSTS[:3], Playbook(serial=(1,), pause=0.0), fleet.run, sleep=fleet.pauses.append)
    assert fleet.pauses == []


def test_an_interrupt_starts_no_further_batch_and_reports_every_host() -> None:
    fleet = Fleet()
    asked: list[int] = []

    def interrupted() -> bool:
        asked.append(len(fleet.ran))
        return len(fleet.ran) >= 2  # Ctrl-C while the second batch runs

    r = roll_out(HOSTS[:4], Playbook(serial=(1,)), fleet.run, sleep=fleet.pauses.append, interrupted=interrupted)
    assert fleet.ran == [["h1"], ["h2"]] and r.interrupted and r.stopped_after_batch == 2
    assert _status(r, HOSTS[:4]) == ["changed", "changed", "not-reached", "not-reached"]
    assert r.results["h3"].message == "interrupted before its batch"


def test_an_interrupt_before_the_first_batch_touches_no_host() -> None:
    fleet = Fleet()
    r = roll_out(HOSTS[:2], Playbook(serial=(1,)), fleet.run, sleep=fleet.pauses.append, interrupted=lambda: True)
    assert fleet.ran == [] and r.interrupted and r.stopped_after_batch == 0
    assert _status(r, HOSTS[:2]) == ["not-reached", "not-reached"]


def test_an_interrupt_during_the_last_batch_is_still_reported() -> None:
    fleet = Fleet()
    r = roll_out(HOSTS[:2], Playbook(serial=(2,)), fleet.run, sleep=fleet.pauses.append,
                 interrupted=lambda: bool(fleet.ran))
    assert fleet.ran == [["h1", "h2"]] and r.interrupted and r.stopped_after_batch is None and r.ok
