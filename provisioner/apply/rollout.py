"""Roll a plan out batch by batch: hosts of a batch in parallel, stop when failures exceed max_fail."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from provisioner.apply.results import HostResult, HostStatus


@dataclass(frozen=True)
class Playbook:
    """How to roll out: batch sizes (counts or percentages, the last one repeating) and failure budget. The
    field defaults are what a playbook file leaves out; the default *playbook* is playbooks/default.yaml
    (`provisioner.playbook.default_playbook`)."""

    serial: tuple[int | str, ...] = (1, "100%")
    max_fail: int | str = 0
    name: str = "default"
    health_gate: bool = True
    health_timeout: float | None = None  # overrides each instance's own timeout
    settle: tuple[float, ...] = (0.0,)  # per batch (the last repeats): see `settle_for`
    pause: float = 0.0
    on_failure: str = "stop"  # stop | rollback (also put back the batch's hosts that succeeded)


def settle_for(playbook: Playbook, batch: int) -> float:
    """Seconds batch `batch` (1-based) watches /readyz after the first 200, for instances with channels the live
    probe did not prove connected."""
    s = playbook.settle or (0.0,)
    return float(s[min(max(batch, 1), len(s)) - 1])


def batches(hosts: Sequence[str], serial: Sequence[int | str]) -> list[list[str]]:
    out: list[list[str]] = []
    total = len(hosts)
    i = 0
    step = 0
    while i < len(hosts):
        spec = serial[min(step, len(serial) - 1)] if serial else "100%"
        size = _size(spec, total)
        out.append(list(hosts[i: i + size]))
        i += size
        step += 1
    return out


def _size(spec: int | str, total: int) -> int:
    if isinstance(spec, str) and spec.endswith("%"):
        return max(1, math.ceil(total * float(spec[:-1]) / 100))
    return max(1, int(spec))


def fail_budget(max_fail: int | str, batch_size: int) -> int:
    if isinstance(max_fail, str) and max_fail.endswith("%"):
        return int(batch_size * float(max_fail[:-1]) / 100)
    return int(max_fail)


@dataclass
class RolloutResult:
    results: dict[str, HostResult] = field(default_factory=dict)
    stopped_after_batch: int | None = None
    batches: list[list[str]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())


def roll_out(hosts: Sequence[str], playbook: Playbook,
             run_batch: Callable[[list[str]], dict[str, HostResult]],
             roll_back: Callable[[list[str]], dict[str, HostResult]] | None = None,
             sleep: Callable[[float], None] = time.sleep,
             interrupted: Callable[[], bool] = lambda: False) -> RolloutResult:
    out = RolloutResult()
    plan = batches(hosts, playbook.serial)
    out.batches = plan
    for n, batch in enumerate(plan, 1):
        if n > 1 and playbook.pause:
            sleep(playbook.pause)
        if interrupted():
            out.interrupted = True
            out.stopped_after_batch = n - 1
            for rest in plan[n - 1:]:
                for h in rest:
                    out.results[h] = HostResult(h, HostStatus.NOT_REACHED, "interrupted before its batch")
            break
        results = run_batch(batch)
        out.results.update(results)
        failed = sum(1 for r in results.values() if not r.ok)
        if failed > fail_budget(playbook.max_fail, len(batch)):
            out.stopped_after_batch = n
            succeeded = [h for h, r in results.items() if r.status is HostStatus.CHANGED]
            if playbook.on_failure == "rollback" and succeeded and roll_back is not None:
                out.results.update(roll_back(succeeded))
            for rest in plan[n:]:
                for h in rest:
                    out.results[h] = HostResult(h, HostStatus.NOT_REACHED, f"rollout stopped after batch {n}")
            break
    out.interrupted = out.interrupted or interrupted()
    return out
