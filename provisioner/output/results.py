"""Human and JSON views of an apply: where every host stands after the rollout."""

from __future__ import annotations

from typing import Any

from provisioner.apply.executor import HostStatus
from provisioner.apply.rollout import RolloutResult
from provisioner.output.style import Style

MARK = {
    HostStatus.UNCHANGED: "=",
    HostStatus.CHANGED: "✓",
    HostStatus.FAILED: "✗",
    HostStatus.UNREACHABLE: "?",
    HostStatus.NOT_REACHED: "·",
    HostStatus.REFUSED: "!",
}


def results_json(r: RolloutResult) -> dict[str, Any]:
    return {
        "ok": r.ok,
        "stopped_after_batch": r.stopped_after_batch,
        "hosts": [
            {
                "host": h.host,
                "status": h.status.value,
                "message": h.message,
                "changes_applied": len(h.applied) if h.status is HostStatus.CHANGED else 0,
                "restarted": h.restarted,
                "rolled_back": h.rolled_back,
                "health": h.health,
            }
            for h in sorted(r.results.values(), key=lambda x: x.host)
        ],
    }


def render_results(r: RolloutResult, s: Style) -> str:
    lines = []
    for h in sorted(r.results.values(), key=lambda x: x.host):
        colour = s.green if h.ok else s.red
        detail = h.message
        if h.status is HostStatus.CHANGED:
            detail = f"{len(h.applied)} change(s) applied"
            if h.restarted:
                detail += f"; restarted {', '.join(h.restarted)}"
        lines.append(f"  {MARK[h.status]} {h.host:<24} {colour(h.status.value):<12} {detail}")
        for inst, state in sorted(h.health.items()):
            lines.append(f"      {inst}: {state}")
    counts: dict[str, int] = {}
    for h in r.results.values():
        counts[h.status.value] = counts.get(h.status.value, 0) + 1
    tail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    head = "Apply complete" if r.ok else "Apply FAILED"
    if r.stopped_after_batch:
        head += f" (rollout stopped after batch {r.stopped_after_batch})"
    lines.append(f"{head}: {tail}.")
    return "\n".join(lines) + "\n"
