"""Views for CI systems: a plan as a pull-request comment (Markdown), diagnostics as GitHub workflow annotations
and as SARIF 2.1.0 (code scanning). Text only: the CLI prints it. Diffs arrive masked (plan.py), so a comment
holds no secret value."""

from __future__ import annotations

import re
from typing import Any

from provisioner.core.changes import Action, Plan
from provisioner.core.diagnostics import Diagnostic
from provisioner.output.plan_view import SYMBOL, summary

FOLD_LINES = 12  # a diff longer than this is folded in <details> in a plan comment
MAX_DIFF_LINES = 400  # and cut beyond this (a comment has a size limit); the full plan is in the job's log


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so that the text cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def plan_markdown(plan: Plan, title: str = "provision plan") -> str:
    """A plan as a pull-request comment: the summary first, then each host's changes; long diffs folded."""
    lines = [f"### {title}", "", f"**{summary(plan)}**", ""]
    for h in plan.hosts:
        todo = [c for c in h.changes if c.action is not Action.NOOP]
        if h.error:
            lines += [f"#### ❌ host `{h.host}`: cannot plan", "", h.error, ""]
            continue
        if not todo:
            continue
        lines += [f"#### host `{h.host}`: {len(todo)} change{'s' * (len(todo) != 1)}", ""]
        for c in todo:
            who = f"[{c.instance}] " if c.instance else ""
            lines.append(f"- `{SYMBOL.get(c.action, '?')} {c.action.value}` {c.kind} `{who}{c.target}`: {c.reason}")
            if not c.diff:
                continue
            diff = c.diff.splitlines()
            cut = len(diff) > MAX_DIFF_LINES
            body = "\n".join(diff[:MAX_DIFF_LINES]) + ("\n… (cut: the full diff is in the job's log)" if cut else "")
            fence = _fence(body)
            block = [f"{fence}diff", body, fence]
            if len(diff) > FOLD_LINES:
                lines += ["", f"  <details><summary>diff ({len(diff)} lines)</summary>", "", *block, "",
                          "  </details>", ""]
            else:
                lines += ["", *block, ""]
        lines.append("")
    unchanged = [h.host for h in plan.hosts if not h.error and not h.has_changes]
    if unchanged:
        lines += [f"No changes on: {', '.join(f'`{n}`' for n in unchanged)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def github_annotations(diags: list[Diagnostic]) -> str:
    """`::error file=...,line=...,col=...,title=...::message` lines: GitHub shows them on the lines of the PR."""
    out = []
    for d in diags:
        props = []
        if d.span is not None:
            props += [f"file={_escape_property(d.span.path)}", f"line={d.span.line}", f"col={d.span.col}"]
        props.append(f"title={_escape_property('provision ' + (d.code or d.severity.value))}")
        level = "error" if d.is_error else "warning"
        out.append(f"::{level} {','.join(props)}::{_escape_data(d.message)}")
    return "".join(line + "\n" for line in out)


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def sarif(diags: list[Diagnostic], tool_version: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log of the diagnostics (upload it with github/codeql-action/upload-sarif)."""
    rules = sorted({d.code or "provision" for d in diags})
    results = []
    for d in diags:
        r: dict[str, Any] = {"ruleId": d.code or "provision", "level": "error" if d.is_error else "warning",
                             "message": {"text": d.message}}
        if d.span is not None:
            r["locations"] = [{"physicalLocation": {
                "artifactLocation": {"uri": d.span.path},
                "region": {"startLine": d.span.line, "startColumn": d.span.col}}}]
        results.append(r)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "openclaw-provisioner", "version": tool_version,
                                "informationUri": "https://docs.openclaw.ai",
                                "rules": [{"id": r, "name": r} for r in rules]}},
            "results": results,
        }],
    }
