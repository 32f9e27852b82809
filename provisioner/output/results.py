"""Human and JSON views of an apply: where every host stands after the rollout."""

from __future__ import annotations

from typing import Any

from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import RolloutResult
from provisioner.output.style import Style


def revision_of(h: HostResult, new: str) -> str:
    """Which revision of its files the host runs after the rollout, in words."""
    if h.status in (HostStatus.CHANGED, HostStatus.UNCHANGED):
        return f"new ({new})"
    if h.status is HostStatus.FAILED:
        return "previous (rolled back)" if h.rolled_back else "unknown: check the host"
    if h.status is HostStatus.ROLLED_BACK:
        return "previous (rolled back with its batch)"
    if h.status is HostStatus.NOT_REACHED:
        return "previous (not reached)"
    if h.status is HostStatus.REFUSED:
        return "previous (refused)"
    return "unknown (unreachable)"


MARK = {
    HostStatus.UNCHANGED: "=",
    HostStatus.CHANGED: "✓",
    HostStatus.FAILED: "✗",
    HostStatus.UNREACHABLE: "?",
    HostStatus.NOT_REACHED: "·",
    HostStatus.REFUSED: "!",
    HostStatus.ROLLED_BACK: "↺",
}


def results_json(r: RolloutResult, revision: str) -> dict[str, Any]:
    return {
        "ok": r.ok,
        "revision": revision,
        "batches": r.batches,
        "stopped_after_batch": r.stopped_after_batch,
        "interrupted": r.interrupted,
        "hosts": [
            {
                "host": h.host,
                "status": h.status.value,
                "revision": revision_of(h, revision),
                "message": h.message,
                "changes_applied": len(h.applied) if h.status is HostStatus.CHANGED else 0,
                "restarted": h.restarted,
                "rolled_back": h.rolled_back,
                "transferred_bytes": h.transferred,
                "health": h.health,
                "failing": h.failing,
                "restarts": h.restarts,
            }
            for h in sorted(r.results.values(), key=lambda x: x.host)
        ],
    }


def render_results(r: RolloutResult, s: Style, revision: str) -> str:
    lines = []
    order = {h: n for n, h in enumerate(x for b in r.batches for x in b)}
    for h in sorted(r.results.values(), key=lambda x: (order.get(x.host, len(order)), x.host)):
        colour = s.green if h.ok else s.red
        detail = h.message
        if h.status is HostStatus.CHANGED:
            detail = f"{len(h.applied)} change(s) applied"
            if h.restarted:
                detail += f"; restarted {', '.join(h.restarted)}"
            if h.transferred:
                detail += f"; pushed {h.transferred / 1e6:.0f} MB"
            if h.message:
                detail += f"; {h.message}"
        status = colour(f"{h.status.value:<11}")
        lines.append(f"  {MARK[h.status]} {h.host:<20} {status} revision: {revision_of(h, revision):<36} {detail}")
        for inst, state in sorted(h.health.items()):
            lines.append(f"      {inst}: {state}")
        for unit, said in sorted(h.restarts.items()):
            lines.append(f"      {unit}: {said}")
    counts: dict[str, int] = {}
    for h in r.results.values():
        counts[h.status.value] = counts.get(h.status.value, 0) + 1
    tail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    head = "Apply complete" if r.ok else "Apply FAILED"
    if r.interrupted:
        head = "Apply INTERRUPTED"
    if r.stopped_after_batch:
        head += f" (rollout stopped after batch {r.stopped_after_batch})"
    lines.append(f"{head}: {tail}.")
    return "\n".join(lines) + "\n"
