"""Workspace documents: every entry expands to files confined to the workspace, read from a plain source.

Not part of the memoized rules (validation_cache.py keys on the inventory's text): the sources are files on the
controller that change without the inventory changing, so this runs on every validation.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from provisioner.core.diagnostics import Diagnostic, SourceSpan
from provisioner.inventory.model import Inventory
from provisioner.render.documents import DocumentError, expand, expand_entry
from provisioner.rules.context import Ctx


def rule_documents(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for inst in h.instances:
            if not inst.documents:
                continue
            bad = False
            for e in inst.documents:
                try:
                    expand_entry(inst, e)
                except DocumentError as exc:
                    bad = True
                    yield c.error("document", str(exc), _span(c, exc))
            if bad:
                continue
            owned = {inst.config_path, inst.env_file, inst.token_file}
            for f in expand(inst):
                path = posixpath.join(inst.workspace, f.rel)
                if path in owned:
                    yield c.error("document", f"{inst.address}: document {f.entry.target!r} would land on {path}, "
                                  "a file the tool renders itself", c.field(inst, "documents", f.entry.target))


def _span(c: Ctx, exc: DocumentError) -> SourceSpan | None:
    at = ("documents", exc.entry.target, *((exc.field,) if exc.field else ()))
    return c.field(exc.instance, *at)


def check_documents(inv: Inventory) -> list[Diagnostic]:
    return list(rule_documents(Ctx(inv)))
