"""The isolation rules' shared helpers: Ctx, which locates an instance's fields in the inventory and builds
located diagnostics, plus small lookups the rules have in common."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import Any

from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan
from provisioner.inventory.model import Host, Instance, Inventory
from provisioner.inventory.yamlsource import DocPath


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


class Ctx:
    """Locates instance fields in the inventory and builds diagnostics."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv

    def at(self, path: DocPath, *, key: bool = True) -> SourceSpan | None:
        return self.inv.spans.key(path) if key else self.inv.spans.value(path)

    def field(self, inst: Instance, *field: str) -> SourceSpan | None:
        src = inst.source_of(*field)
        if not src or src[0] not in ("defaults", "groups", "hosts"):
            # the tool's own default (build.DEFAULT_INSTANCE, layered at the top): point at the instance
            src = inst.doc_path
        # the key names what is wrong ("port:", "canvasHost:"); its line and column are what editors jump to
        return self.at(src, key=True)

    def error(self, code: str, msg: str, span: SourceSpan | None, *related: SourceSpan | None) -> Diagnostic:
        return Diagnostic(Severity.ERROR, msg, span, code, tuple(r for r in related if r))

    def warning(self, code: str, msg: str, span: SourceSpan | None, *related: SourceSpan | None) -> Diagnostic:
        return Diagnostic(Severity.WARNING, msg, span, code, tuple(r for r in related if r))


def _pairs(host: Host) -> Iterator[tuple[Instance, Instance]]:
    return combinations(host.instances, 2)


def _where(span: SourceSpan | None) -> str:
    return f" (line {span.line})" if span else ""
