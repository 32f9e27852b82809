"""Human table and JSON view of `provision backup` (and of what `provision restore` did)."""

from __future__ import annotations

from typing import Any

from provisioner.apply.backups import Backup
from provisioner.output.style import Style


def backup_json(rows: list[Backup], errors: dict[str, str], out: str) -> dict[str, Any]:
    return {"out": out, "archives": [b.as_json() for b in rows], "unreachable": errors,
            "summary": {"ok": sum(1 for b in rows if b.ok), "failed": sum(1 for b in rows if not b.ok),
                        "bytes": sum(b.size for b in rows if b.ok)}}


def render_backups(rows: list[Backup], errors: dict[str, str], s: Style) -> str:
    head = ("HOST", "INSTANCE", "SIZE", "SHA256", "SECONDS", "ARCHIVE")
    table = [head] + [(b.host, b.instance, _size(b.size) if b.ok else "-", b.sha256[:16] if b.ok else "-",
                       f"{b.seconds:.0f}", b.path if b.ok else f"FAILED: {b.error}") for b in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = []
    for n, row in enumerate(table):
        text = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        lines.append(s.bold(text) if n == 0 else s.red(text) if row[-1].startswith("FAILED") else text)
    for b in rows:
        lines += [f"{b.host}/{b.instance}: removed {p} (--keep)" for p in b.pruned]
    for host, err in sorted(errors.items()):
        lines.append(s.red(f"{host}: unreachable: {err}"))
    ok = sum(1 for b in rows if b.ok)
    tail = f"; {len(errors)} host(s) unreachable" if errors else ""
    lines.append(f"{ok} of {len(rows)} instance(s) backed up, {_size(sum(b.size for b in rows if b.ok))}{tail}")
    return "\n".join(lines) + "\n"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"
