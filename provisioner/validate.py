"""The no-network pipeline: read the inventory, check schema and isolation, render, check configs against OpenClaw."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan
from provisioner.inventory.build import build_inventory
from provisioner.inventory.model import Instance, Inventory
from provisioner.inventory.ranges import expand_inventory
from provisioner.inventory.yamlsource import load_yaml
from provisioner.rules.context import Ctx
from provisioner.rules.isolation import check_isolation


@dataclass
class Validated:
    path: str
    inventory: Inventory | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.inventory is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


def read_inventory(path: str) -> tuple[str, str]:
    with open(path, "rb") as f:
        raw = f.read()
    return raw.decode("utf-8"), hashlib.sha256(raw).hexdigest()


def validate_file(path: str, *, check_configs: bool = True, strict: bool = False) -> Validated:
    """strict: a literal secret in the OpenClaw config (rules/secrets.py) is an error, not a warning."""
    try:
        text, sha = read_inventory(path)
    except (OSError, UnicodeDecodeError) as exc:
        diag = Diagnostic(Severity.ERROR, f"cannot read inventory: {exc}", SourceSpan(path, 1, 1), "io")
        return Validated(path, None, [diag])
    v = validate_text(text, path, sha, check_configs=check_configs)
    return strictly(v) if strict else v


def strictly(v: Validated) -> Validated:
    from dataclasses import replace

    from provisioner.rules.secrets import LITERAL_CODE

    diags = [replace(d, severity=Severity.ERROR) if d.code == LITERAL_CODE else d for d in v.diagnostics]
    return Validated(v.path, v.inventory, diags)


def validate_text(text: str, path: str, sha: str = "", *, check_configs: bool = True) -> Validated:
    from provisioner import validation_cache

    data, spans, diags = load_yaml(text, path)
    if data is None and not diags:
        diags = [Diagnostic(Severity.ERROR, "the file holds no YAML document (it is empty, or only `---` and "
                            "comments): an inventory is a mapping that starts with `version: 1`",
                            SourceSpan(path, 1, 1), "empty")]
    if data is None or diags:
        return Validated(path, None, diags)
    # ranges first: the cache, the schema and every rule see the expanded hosts
    diags = expand_inventory(data, spans)
    if diags:
        return Validated(path, None, diags)
    k = validation_cache.key(text, path, check_configs)
    cached = validation_cache.load(k) if k else None
    if cached is not None and not any(d.is_error and d.code == "schema" for d in cached):
        inv = build_inventory(data, spans, path, sha or hashlib.sha256(text.encode()).hexdigest())
        return _with_documents(Validated(path, inv, cached))
    result = _validate(data, spans, text, path, sha, check_configs)
    if k:
        validation_cache.store(k, result.diagnostics)
    return _with_documents(result)


def _with_documents(v: Validated) -> Validated:
    """The documents' diagnostics, never memoized: their sources change without the inventory's text changing."""
    if v.inventory is None or not any(i.documents for h in v.inventory.hosts for i in h.instances):
        return v
    from provisioner.rules.documents import check_documents

    diags = [*v.diagnostics, *check_documents(v.inventory)]
    diags.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    return Validated(v.path, v.inventory, diags)


def _validate(data: Any, spans: Any, text: str, path: str, sha: str, check_configs: bool) -> Validated:
    from provisioner.rules.schema import check_schema

    diags = check_schema(data, spans)
    if diags:
        return Validated(path, None, diags)
    inv = build_inventory(data, spans, path, sha or hashlib.sha256(text.encode()).hexdigest())
    diags = check_isolation(inv)
    if check_configs and not any(d.is_error for d in diags):
        diags += check_openclaw_configs(inv)
    diags.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    return Validated(path, inv, diags)


# gateway keys the tool writes from instance fields: a complaint about them points at that field
OWNED_KEYS: dict[tuple[str, ...], str] = {
    ("gateway", "port"): "port",
    ("gateway", "bind"): "bind",
    ("agents", "defaults", "workspace"): "workspace",
}


def check_openclaw_configs(inv: Inventory, *, schema: dict[str, Any] | None = None,
                           version: str | None = None, hosts: set[str] | None = None) -> list[Diagnostic]:
    """Check every rendered openclaw.json against what the OpenClaw version accepts, located in the inventory."""
    from provisioner.render.files import gateway_config
    from provisioner.rules.openclaw_config import check_openclaw_config
    from provisioner.rules.openclaw_schemas import has_schema

    version = version or inv.openclaw.version
    ctx = Ctx(inv)
    if schema is None and not has_schema(version):
        # the version the inventory names, else (the tool's default) the openclaw: section or the top of the file
        span = ctx.at(("openclaw", "version"), key=False)
        return [Diagnostic(Severity.WARNING, f"no OpenClaw config schema is shipped for version {version}: rendered "
                           "configs are checked against the hosts' own `openclaw config schema` at plan time",
                           span, "openclaw-version")]
    out: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for host in inv.hosts:
        if hosts is not None and host.name not in hosts:
            continue
        for inst in host.instances:
            cfg = gateway_config(inv, inst)
            for issue in check_openclaw_config(version, cfg, schema=schema):
                span, hint = _locate(ctx, inst, tuple(str(p) for p in issue.path))
                key = (str(span), issue.message)
                if key in seen:  # one shared default can fail for many instances: say it once
                    continue
                seen.add(key)
                message = f"{inst.address}: {issue.message}{hint}"
                out.append(Diagnostic(Severity.ERROR, message, span, "openclaw-config"))
    return out


def _locate(ctx: Ctx, inst: Instance, path: tuple[str, ...]) -> tuple[SourceSpan | None, str]:
    inv = ctx.inv
    if path[:2] == ("gateway", "inboundDedupe") and inv.dedupe is not None and not _has(inst.config, path[:2]):
        return ctx.at(("dedupe",)), (
            " (the tool renders it from the inventory's dedupe: section; set dedupe.configure_gateway: false to "
            "provision and verify the shared directory without the key: the gateways will then NOT coordinate)"
        )
    for owned, fld in OWNED_KEYS.items():
        if path[: len(owned)] == owned and not _has(inst.config, owned):
            return ctx.field(inst, fld), ""
    return ctx.field(inst, "config", *path), ""


def _has(cfg: Any, path: tuple[str, ...]) -> bool:
    for p in path:
        if not isinstance(cfg, dict) or p not in cfg:
            return False
        cfg = cfg[p]
    return True
