"""Memoize validation by content: the same inventory text, tool version and schemas give the same diagnostics.

`plan` in CI on every change, then `apply`, re-validate an unchanged inventory many times; a hit skips the
JSON Schema machinery (its import alone is a good part of a no-op plan's start-up). Keyed by everything the
result depends on; OCP_NO_VALIDATION_CACHE=1 turns it off.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

from provisioner.cache import cache_dir, read_json, write_json
from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan

FORMAT = 1


def _inputs_digest() -> str:
    """What else the result depends on: this tool's code and every schema it ships."""
    h = hashlib.sha256(f"format={FORMAT}".encode())
    pkg = Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(pkg)}:{st.st_size}:{st.st_mtime_ns}".encode())
    schemas = resources.files("provisioner.schemas")
    for name in ("inventory.schema.json",):
        h.update((schemas / name).read_bytes())
    oc = schemas / "openclaw"
    for entry in sorted(oc.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            # the content, not the name: a schema regenerated under the same name must not serve stale results
            h.update(entry.name.encode() + b"\0" + hashlib.sha256(entry.read_bytes()).digest())
    return h.hexdigest()


def key(text: str, path: str, check_configs: bool) -> str | None:
    if os.environ.get("OCP_NO_VALIDATION_CACHE"):
        return None
    h = hashlib.sha256()
    for part in (_inputs_digest(), os.path.abspath(path), str(check_configs), text):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def load(k: str) -> list[Diagnostic] | None:
    data = read_json(cache_dir("validated") / f"{k}.json")
    if not isinstance(data, list):
        return None
    try:
        return [Diagnostic(Severity(d["severity"]), d["message"],
                           SourceSpan(*d["span"]) if d["span"] else None, d["code"],
                           tuple(SourceSpan(*r) for r in d["related"])) for d in data]
    except (ValueError, KeyError, TypeError):
        return None


def store(k: str, diags: list[Diagnostic]) -> None:
    doc = [{"severity": d.severity.value, "message": d.message, "code": d.code,
            "span": [d.span.path, d.span.line, d.span.col] if d.span else None,
            "related": [[r.path, r.line, r.col] for r in d.related]} for d in diags]
    write_json(cache_dir("validated") / f"{k}.json", doc)
