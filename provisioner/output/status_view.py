"""Human table and JSON view of `provision status`."""

from __future__ import annotations

from typing import Any

from provisioner.apply.doctor import DoctorReport
from provisioner.apply.health import InstanceHealth
from provisioner.apply.readiness import describe_ready
from provisioner.output.style import Style

Doctor = dict[tuple[str, str], DoctorReport]


def status_json(rows: list[InstanceHealth], errors: dict[str, str], doctor: Doctor | None = None) -> dict[str, Any]:
    doctor = doctor or {}
    return {
        "healthy": not errors and all(r.healthy for r in rows),
        "instances": [
            {"host": r.host, "instance": r.instance, "unit": r.unit, "port": r.port, "unit_state": r.unit_state,
             "healthz": r.live, "readyz": r.ready, "readyz_failing": list(r.failing), "channels": r.channels,
             "channels_failing": list(r.channels_failing), "openclaw_status": r.openclaw,
             "config_readonly": r.config_readonly, "healthy": r.healthy,
             "doctor": doctor[(r.host, r.instance)].as_json() if (r.host, r.instance) in doctor else None}
            for r in rows
        ],
        "unreachable": errors,
    }


def render_status(rows: list[InstanceHealth], errors: dict[str, str], s: Style, doctor: Doctor | None = None) -> str:
    doctor = doctor or {}
    asked = ("DOCTOR",) if doctor else ()  # OpenClaw's own checks: a column when they ran (not --no-doctor)
    head = ("HOST", "INSTANCE", "PORT", "UNIT", "HEALTHZ", "READYZ", "CHANNELS", "CONFIG RO", "OPENCLAW GATEWAY STATUS",
            *asked, "")
    table = [head] + [(r.host, r.instance, str(r.port), r.unit_state, r.live, describe_ready(r.ready, r.failing),
                       _cap(r.channels, 60), r.config_readonly,
                       r.openclaw,
                       *((doctor[(r.host, r.instance)].summary() if (r.host, r.instance) in doctor else "not asked",)
                         if doctor else ()),
                       "healthy" if r.healthy else "UNHEALTHY" if r.known else "unknown") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = []
    for n, row in enumerate(table):
        text = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        if n == 0:
            text = s.bold(text)
        elif row[-1] == "UNHEALTHY":
            text = s.red(text)
        lines.append(text)
    for host, err in sorted(errors.items()):
        lines.append(s.red(f"{host}: unreachable: {err}"))
    lines += _findings(rows, doctor, s)
    ok = sum(1 for r in rows if r.healthy)
    tail = f"; {len(errors)} host(s) unreachable" if errors else ""
    unknown = sum(1 for r in rows if not r.known)
    if unknown:
        tail += (f"; {unknown} not asked: manager: none on a stand-in host (a directory), where nothing runs them: "
                 "their files are in place (`provision plan` shows any difference), starting them is yours")
    lines.append(f"{ok} of {len(rows) - unknown} instance(s) healthy{tail}" if len(rows) > unknown else
                 f"{len(rows)} instance(s){tail}")
    return "\n".join(lines) + "\n"


def _findings(rows: list[InstanceHealth], doctor: Doctor, s: Style) -> list[str]:
    """OpenClaw's own findings, per instance, by severity then checkId (`--json` has every field of each)."""
    out = []
    for r in rows:
        report = doctor.get((r.host, r.instance))
        for sev, found in (report.by_severity() if report else {}).items():
            for f in found:
                line = f"{r.host}/{r.instance}: doctor {sev} {f.check_id}: {f.message[:160]}"
                out.append(s.red(line) if sev == "error" else line)
    return out


def _cap(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
