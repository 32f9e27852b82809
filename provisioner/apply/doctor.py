"""OpenClaw's own checks of each instance, for `provision status`: `openclaw doctor --lint --json`.

It runs the way the gateway itself would: as the instance's service user, with its env file read as data and the
instance's own variables (remote/scripts/openclaw_cli.py), never as root. `--lint` is read-only; the call also has
OPENCLAW_CONFIG_READONLY=1. What it prints is the service user's output: it is parsed as data, and its words are
shown, never acted on.

Measured on 2026.9.6: one JSON document `{"schemaVersion": 1, "ok", "checksRun", "checksSkipped", "findings":
[{"checkId", "severity", "message", "path", "fixHint", ...}]}`; exit 1 when any finding is reported (warnings
too), 0 when none. Node's own notes may follow it on the same output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.inventory.model import Host
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.openclaw_cli import per_instance_script, split_outputs
from provisioner.remote.transport import Transport

LINT_ARGS = ("doctor", "--lint", "--json")
SEVERITIES = ("error", "warning", "info")  # the order they are shown in
_FIELDS = ("checkId", "severity", "message", "path", "fixHint")
_TEXT_CAP = 2000  # characters kept of one field of a finding


@dataclass(frozen=True)
class Finding:
    check_id: str
    severity: str
    message: str
    path: str = ""
    fix_hint: str = ""
    extra: tuple[tuple[str, str], ...] = ()  # the finding's other fields (target, requirement, ...)

    def as_json(self) -> dict[str, str]:
        return {"checkId": self.check_id, "severity": self.severity, "message": self.message, "path": self.path,
                "fixHint": self.fix_hint, **dict(self.extra)}


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...] = ()
    ok: bool | None = None  # what doctor said; None: it did not answer (see error)
    error: str = ""

    def by_severity(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in sorted(self.findings, key=lambda f: (_rank(f.severity), f.check_id)):
            out.setdefault(f.severity, []).append(f)
        return out

    def summary(self) -> str:
        if self.ok is None:
            return f"not run: {self.error}"
        if not self.findings:
            return "no findings"
        return ", ".join(f"{len(fs)} {sev}" for sev, fs in self.by_severity().items())

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error or None, "findings": [f.as_json() for f in self.findings]}


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _text(value: Any) -> str:
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    # the service user's words: no control characters reach a terminal (newlines become spaces)
    return "".join(c if c.isprintable() else " " for c in s)[:_TEXT_CAP]


def parse_lint(text: str) -> DoctorReport:
    """The report in what one `doctor --lint --json` call printed (its JSON, wherever in the output it starts)."""
    decoder = json.JSONDecoder()
    for i, c in enumerate(text):
        if c != "{" or (i and text[i - 1] != "\n"):
            continue
        try:
            doc, _ = decoder.raw_decode(text, i)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("findings"), list):
            found = []
            for f in doc["findings"]:
                if isinstance(f, dict):
                    check, sev, msg, path, hint = (_text(f.get(k, "")) for k in _FIELDS)
                    extra = tuple((_text(k), _text(v)) for k, v in sorted(f.items()) if k not in _FIELDS)
                    found.append(Finding(check, sev, msg, path, hint, extra))
            return DoctorReport(tuple(found), bool(doc.get("ok")))
    last = text.strip().splitlines()[-1:] or ["no output"]
    return DoctorReport(error=f"no JSON report: {_text(last[0])[:120]}")


def doctor_reports(t: Transport, host: Host, command: Sequence[str], *, become: bool = False
                   ) -> dict[str, DoctorReport]:
    """`openclaw doctor --lint --json` of every instance of the host, each as its own service user, all at once."""
    insts = [i for i in host.instances if i.port]
    if not insts:
        return {}
    res = run_script(t, per_instance_script(insts, command, LINT_ARGS, transport_root(t)), become=become,
                     timeout=240)
    return {inst.name: parse_lint(text)
            for inst, text in zip(insts, split_outputs(res.text(), len(insts)), strict=True)}
