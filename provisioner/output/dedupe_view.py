"""Human and JSON views of `dedupe verify`."""

from __future__ import annotations

from typing import Any

from provisioner.dedupe.verify import Verification
from provisioner.output.style import Style


def verification_json(v: Verification) -> dict[str, Any]:
    return {"dir": v.dir, "hosts": v.hosts, "ok": v.ok,
            "checks": [{"check": c.name, "ok": c.ok, "warning": c.warning, "detail": c.detail, "hosts": c.hosts}
                       for c in v.checks]}


def render_verification(v: Verification, s: Style) -> str:
    lines = [s.bold(f"dedupe directory {v.dir} on {len(v.hosts)} host(s): {', '.join(v.hosts)}")]
    for c in v.checks:
        mark = s.green("PASS") if c.ok and not c.warning else (s.yellow("WARN") if c.ok else s.red("FAIL"))
        lines.append(f"  {mark}  {c.name}: {c.detail}")
    lines.append("The directory is one shared store." if v.ok else
                 s.red("The directory is NOT proven to be one shared store."))
    return "\n".join(lines) + "\n"
