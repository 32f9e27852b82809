"""Human and JSON views of diagnostics (`PATH:LINE:COL: error: message`)."""

from __future__ import annotations

from typing import Any

from provisioner.core.diagnostics import Diagnostic, SourceSpan
from provisioner.output.style import Style


def span_json(span: SourceSpan | None) -> dict[str, Any] | None:
    return None if span is None else {"file": span.path, "line": span.line, "column": span.col}


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "severity": d.severity.value,
        "code": d.code,
        "message": d.message,
        "location": span_json(d.span),
        "related": [span_json(r) for r in d.related],
    }


def format_diagnostic(d: Diagnostic, style: Style) -> str:
    where = str(d.span) if d.span else "<inventory>"
    sev = style.red("error") if d.is_error else style.yellow("warning")
    return f"{style.bold(where)}: {sev}: {d.message}"


def summary_line(diags: list[Diagnostic]) -> str:
    e = sum(1 for d in diags if d.is_error)
    w = len(diags) - e
    return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"
