"""The human view of a Plan: per host, each change with its reason and a unified diff (secrets already masked)."""

from __future__ import annotations

from provisioner.core.changes import Action, Plan
from provisioner.output.style import Style
from provisioner.planfile import summary_counts

SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.RESTART: "↻",
    Action.START: "▶",
    Action.STOP: "■",
    Action.CREATE_USER: "+",
    Action.REFUSE: "!",
}


def _colour_diff(diff: str, s: Style) -> str:
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            out.append(s.bold(line))
        elif line.startswith("+"):
            out.append(s.green(line))
        elif line.startswith("-"):
            out.append(s.red(line))
        elif line.startswith("@@"):
            out.append(s.cyan(line))
        else:
            out.append(line)
    return "\n".join(out)


def render_plan(plan: Plan, s: Style, *, show_diffs: bool = True) -> str:
    lines: list[str] = []
    for h in plan.hosts:
        if h.error:
            lines.append(s.bold(f"host {h.host}: ") + s.red(f"cannot plan: {h.error}"))
            continue
        todo = [c for c in h.changes if c.action is not Action.NOOP]
        if not todo:
            lines.append(s.bold(f"host {h.host}: ") + s.dim("no changes"))
        else:
            lines.append(s.bold(f"host {h.host}: {len(todo)} change{'s' * (len(todo) != 1)}"))
        if h.locked_by:
            from provisioner.apply.locks import refusal

            lines.append("  " + s.yellow("! " + refusal(h.locked_by)))
        if not todo:
            continue
        for c in todo:
            who = f"[{c.instance}] " if c.instance else ""
            sym = SYMBOL.get(c.action, "?")
            line = f"  {sym} {c.action.value:<11} {c.kind:<7} {who}{c.target}  ({c.reason})"
            lines.append(s.red(line) if c.action is Action.REFUSE else line)
            if show_diffs and c.diff:
                lines.append("    " + _colour_diff(c.diff, s).replace("\n", "\n    "))
    lines.append(summary(plan))
    return "\n".join(lines) + "\n"


def summary(plan: Plan) -> str:
    c = summary_counts(plan)
    parts = [f"{n} to {a}" for a, n in c.items()
             if a not in ("hosts", "hosts_changing", "hosts_failed", "hosts_refused", Action.REFUSE.value)]
    what = ", ".join(parts) if parts else "no changes"
    tail = f"; {c['hosts_failed']} host(s) could not be planned" if c["hosts_failed"] else ""
    if c["hosts_refused"]:
        tail += (f"; {c['hosts_refused']} host(s) refused: {c.get(Action.REFUSE.value, 0)} path(s) hold something "
                 "the tool will not touch, so apply leaves those hosts alone")
    return f"Plan: {what} on {c['hosts_changing']} of {c['hosts']} host(s){tail}."
