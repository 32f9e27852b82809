"""Isolation rules: plain functions Inventory -> Diagnostics, on normalised paths and real port sets (FACTS)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan
from provisioner.core.policies import Manager
from provisioner.inventory.model import Host, Instance, Inventory
from provisioner.inventory.yamlsource import DocPath

# FACTS (OpenClaw 2026.9.6): from base B, browser control B+2, extension relay B+3..B+10, managed CDP B+11..B+110
DERIVED_SPAN = 110
RECOMMENDED_SPACING = 120
UNIT_OWNED_ENV = ("OPENCLAW_PROFILE", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_GATEWAY_PORT",
                  "OPENCLAW_SYSTEMD_UNIT", "HOME")


@dataclass(frozen=True)
class PortSpan:
    """The ports one instance occupies: its derived range plus explicit CDP ports."""

    base: int
    extra: tuple[int, ...]

    @property
    def range(self) -> range:
        return range(self.base, self.base + DERIVED_SPAN + 1)

    def ports(self) -> set[int]:
        return set(self.range) | set(self.extra)

    def describe(self) -> str:
        extra = f" + CDP {', '.join(map(str, self.extra))}" if self.extra else ""
        return f"{self.base}..{self.base + DERIVED_SPAN}{extra}"


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def browser_profiles(inst: Instance) -> dict[str, Any]:
    profiles = _get(inst.config, "browser", "profiles")
    return profiles if isinstance(profiles, dict) else {}


def cdp_ports(inst: Instance) -> list[tuple[str, int]]:
    return [(n, p["cdpPort"]) for n, p in browser_profiles(inst).items()
            if isinstance(p, dict) and isinstance(p.get("cdpPort"), int) and not isinstance(p["cdpPort"], bool)]


def port_span(inst: Instance) -> PortSpan | None:
    if inst.port is None:
        return None
    return PortSpan(inst.port, tuple(sorted({p for _, p in cdp_ports(inst)})))


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


# --- rules ---------------------------------------------------------------------------------------------

def rule_port_required(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for i in h.instances:
            if i.port is None:
                yield c.error("port-missing", f"{i.address}: no port; give every instance an explicit `port:` "
                              "(OpenClaw would otherwise derive one from the profile name)", c.at(i.doc_path))


def rule_port_range(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for i in h.instances:
            if i.port is not None and i.port + DERIVED_SPAN > 65535:
                yield c.error("port-range", f"{i.address}: base port {i.port} leaves no room for its derived ports "
                              f"(they run to {i.port + DERIVED_SPAN}, past 65535)", c.field(i, "port"))
            for name, port in cdp_ports(i):
                if not 1 <= port <= 65535:
                    yield c.error("port-range", f"{i.address}: browser profile {name!r} cdpPort {port} is outside "
                                  "1..65535", c.field(i, "config", "browser", "profiles", name, "cdpPort"))


def rule_port_overlap(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for a, b in _pairs(h):
            sa, sb = port_span(a), port_span(b)
            if sa is None or sb is None:
                continue
            common = sa.ports() & sb.ports()
            first_a = c.field(a, "port")
            if common:
                lo, hi = min(common), max(common)
                shared = f"{lo}" if lo == hi else f"{lo}..{hi}" if len(common) == hi - lo + 1 else \
                    f"{len(common)} ports between {lo} and {hi}"
                yield c.error(
                    "port-overlap",
                    f"{b.address} and {a.address}{_where(first_a)} occupy the same ports ({shared}): "
                    f"{b.name} uses {sb.describe()}, {a.name} uses {sa.describe()} (an OpenClaw instance occupies "
                    f"its base port through base+{DERIVED_SPAN})",
                    c.field(b, "port"), first_a)
            elif abs(sa.base - sb.base) < RECOMMENDED_SPACING:
                yield c.warning(
                    "port-spacing",
                    f"{b.address} base port {sb.base} is {abs(sa.base - sb.base)} from {a.address}'s {sa.base}"
                    f"{_where(first_a)}; keep base ports at least {RECOMMENDED_SPACING} apart",
                    c.field(b, "port"), first_a)


def rule_cdp(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        urls: dict[str, tuple[Instance, tuple[str, ...]]] = {}
        for i in h.instances:
            seen_ports: dict[int, str] = {}
            seen_urls: dict[str, str] = {}
            for name, prof in browser_profiles(i).items():
                if not isinstance(prof, dict):
                    continue
                if "cdpPort" not in prof and "cdpUrl" not in prof:
                    yield c.error("cdp-missing", f"{i.address}: browser profile {name!r} sets neither cdpPort nor "
                                  "cdpUrl; a hand-written profile needs one of them",
                                  c.field(i, "config", "browser", "profiles", name))
                port = prof.get("cdpPort")
                if isinstance(port, int) and port in seen_ports:
                    yield c.error("cdp-duplicate", f"{i.address}: browser profiles {seen_ports[port]!r} and {name!r} "
                                  f"share cdpPort {port}", c.field(i, "config", "browser", "profiles", name, "cdpPort"))
                elif isinstance(port, int):
                    seen_ports[port] = name
                url = prof.get("cdpUrl")
                if isinstance(url, str) and url in seen_urls:
                    yield c.error("cdp-duplicate", f"{i.address}: browser profiles {seen_urls[url]!r} and {name!r} "
                                  f"share cdpUrl {url}", c.field(i, "config", "browser", "profiles", name, "cdpUrl"))
                elif isinstance(url, str):
                    seen_urls[url] = name
            owned: list[tuple[str, tuple[str, ...]]] = []
            top = _get(i.config, "browser", "cdpUrl")
            if isinstance(top, str):
                owned.append((top, ("config", "browser", "cdpUrl")))
            owned += [(u, ("config", "browser", "profiles", n, "cdpUrl")) for u, n in seen_urls.items()]
            for url, fpath in owned:
                key = url.rstrip("/").lower()
                if key in urls and urls[key][0] is not i:
                    other, opath = urls[key]
                    first = c.field(other, *opath)
                    yield c.error("cdp-url-shared", f"{i.address} and {other.address}{_where(first)} point at the same "
                                  f"Chrome DevTools endpoint {url}; each instance needs its own browser",
                                  c.field(i, *fpath), first)
                else:
                    urls.setdefault(key, (i, fpath))


PATH_FIELDS = (("state_dir", "state dir"), ("config_path", "config path"), ("workspace", "workspace"),
               ("env_file", "env file"))
TREE_FIELDS = ("state_dir", "workspace")


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def rule_paths(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for a, b in _pairs(h):
            reported = False
            for fb, nb in PATH_FIELDS:
                pb = getattr(b, fb)
                for fa, na in PATH_FIELDS:
                    pa = getattr(a, fa)
                    clash = (pa == pb or (fa in TREE_FIELDS and _inside(pb, pa))
                             or (fb in TREE_FIELDS and _inside(pa, pb)))
                    if not clash or reported:
                        continue
                    first = c.field(a, fa)
                    how = "is the same path as" if pa == pb else "overlaps"
                    yield c.error(
                        f"duplicate-{fb.replace('_', '-')}",
                        f"{b.address} {nb} {pb} {how} {a.address}'s {na} {pa}{_where(first)}: two gateways would "
                        "share state (OpenClaw refuses a second process on one state dir)",
                        c.field(b, fb), first)
                    reported = True


def rule_profiles(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for a, b in _pairs(h):
            if a.profile.lower() == b.profile.lower():
                first = c.field(a, "profile")
                yield c.error("duplicate-profile", f"{b.address} and {a.address}{_where(first)} use the same "
                              f"profile {b.profile!r} (OpenClaw profile names are case-insensitive)",
                              c.field(b, "profile"), first)
            if a.unit == b.unit:
                first = c.field(a, "unit")
                yield c.error("duplicate-unit", f"{b.address} and {a.address}{_where(first)} both use unit {b.unit}",
                              c.field(b, "unit"), first)


# config sections the tool writes keys into (gateway.mode/port/bind, agents.defaults.workspace)
OWNED_SECTIONS = (("gateway",), ("agents",), ("agents", "defaults"))


def rule_owned_config(c: Ctx) -> Iterator[Diagnostic]:
    """Keys the tool sets itself must not be contradicted from inside `config`."""
    for h in c.inv.hosts:
        for i in h.instances:
            for at in OWNED_SECTIONS:
                node = _get(i.config, *at[:-1])
                if isinstance(node, dict) and at[-1] in node and not isinstance(node[at[-1]], dict):
                    yield c.error("config-conflict", f"{i.address}: config {'.'.join(at)} must be a mapping: the tool "
                                  "writes its own keys into it", c.field(i, "config", *at))
            gw = _get(i.config, "gateway")
            owned = (("port", i.port, "port"), ("bind", i.bind, "bind"), ("mode", "local", None))
            for key, want, field in owned:
                if isinstance(gw, dict) and key in gw and gw[key] != want:
                    fix = f"set `{field}:` on the instance instead" if field else (
                        "a gateway the tool runs must be local: without gateway.mode \"local\" OpenClaw refuses "
                        "to start (exit 78)")
                    yield c.error("config-conflict", f"{i.address}: config gateway.{key} = {gw[key]!r} contradicts "
                                  f"{want!r}; {fix}", c.field(i, "config", "gateway", key))
            ws = _get(i.config, "agents", "defaults", "workspace")
            if ws is not None and ws != i.workspace:
                yield c.error("config-conflict", f"{i.address}: config agents.defaults.workspace contradicts the "
                              "instance's workspace; set `workspace:` on the instance instead",
                              c.field(i, "config", "agents", "defaults", "workspace"))
            for name in sorted(set(i.env) | set(i.secrets)):
                field = "env" if name in i.env else "secrets"
                if name in UNIT_OWNED_ENV:
                    yield c.error("env-conflict", f"{i.address}: {name} is set by the tool from the instance's "
                                  "settings; setting it here would break isolation", c.field(i, field, name))
                elif name in i.env and name in i.secrets:
                    yield c.error("env-conflict", f"{i.address}: {name} is both in env and secrets",
                                  c.field(i, "secrets", name))


def rule_bind_auth(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for i in h.instances:
            if i.bind == "loopback":
                continue
            mode = _get(i.config, "gateway", "auth", "mode")
            has_secret = any(k in i.secrets or k in i.env
                             for k in ("OPENCLAW_GATEWAY_TOKEN", "OPENCLAW_GATEWAY_PASSWORD"))
            if mode in (None, "none") and not has_secret:
                yield c.warning("bind-without-auth", f"{i.address}: bind {i.bind!r} exposes the gateway beyond "
                                "loopback without auth; set config gateway.auth and a token secret",
                                c.field(i, "bind"))


def rule_groups(c: Ctx) -> Iterator[Diagnostic]:
    names = {h.name for h in c.inv.hosts}
    for g, members in c.inv.groups.items():
        for idx, m in enumerate(members):
            if m not in names:
                yield c.error("unknown-host", f"group {g!r} lists host {m!r}, which is not in hosts:",
                              c.at(("groups", g, "hosts", idx), key=False))
        if g in names:
            yield c.error("group-host-name", f"group {g!r} has the same name as a host; --limit could not tell them "
                          "apart", c.at(("groups", g)))


def rule_dedupe(c: Ctx) -> Iterator[Diagnostic]:
    dd = c.inv.dedupe
    if dd and not dd.configure_gateway:
        yield c.warning("dedupe-not-rendered", f"dedupe.configure_gateway is false: {dd.dir} is provisioned and "
                        "verified, but gateway.inboundDedupe is not rendered, so these gateways will NOT coordinate "
                        "and an inbound message may be processed once per host",
                        c.at(("dedupe", "configure_gateway")))
    first: tuple[Instance, str, SourceSpan | None] | None = None
    for h in c.inv.hosts:
        for i in h.instances:
            if dd and _inside(dd.dir, i.state_dir):
                yield c.error("dedupe-dir", f"dedupe.dir {dd.dir} is inside {i.address}'s state dir; the shared "
                              "claim directory must be its own mount", c.at(("dedupe", "dir"), key=False))
            explicit = _get(i.config, "gateway", "inboundDedupe", "file", "dir")
            if explicit is None:
                continue
            span = c.field(i, "config", "gateway", "inboundDedupe", "file", "dir")
            if dd and i.dedupe and explicit != dd.dir:
                yield c.error("dedupe-dir", f"{i.address}: config gateway.inboundDedupe dir {explicit!r} differs from "
                              f"dedupe.dir {dd.dir!r}; every instance must claim in the same directory", span)
            elif first is None:
                first = (i, explicit, span)
            elif explicit != first[1]:
                yield c.error("dedupe-dir", f"{i.address} claims inbound messages in {explicit!r} but "
                              f"{first[0].address}{_where(first[2])} in {first[1]!r}; HA gateways must share one "
                              "directory", span, first[2])


# characters systemd does not take literally in the unit settings these paths land in: EnvironmentFile= is a
# glob, `\` escapes (or, at the end, continues the line), and leading or trailing blanks are stripped
_UNIT_GLOB = frozenset("*?[]\\")
_EXEC_SAFE = re.compile(r"^[A-Za-z0-9_./@+:-]([A-Za-z0-9_./@+: -]*[A-Za-z0-9_./@+:-])?$")  # inner spaces: quoted


def _unit_trouble(path: str) -> str | None:
    bad = sorted({ch for ch in path if ch in _UNIT_GLOB})
    if bad:
        return "contains " + " ".join(repr(ch) for ch in bad)
    if path != path.strip():
        return "starts or ends with a blank"
    return None


def _origin(c: Ctx, h: Host, i: Instance, key: str) -> SourceSpan | None:
    """Where a path came from: its own setting, or else the service home a default one is derived from."""
    if (key,) in i.provenance:
        return c.field(i, key)
    for path in ((*h.doc_path, "service", "home"), ("defaults", "service", "home")):
        span = c.at(path, key=False)
        if span is not None:
            return span
    return c.field(i, key)


def rule_unit_syntax(c: Ctx) -> Iterator[Diagnostic]:
    """Values the systemd unit carries where systemd would not read them literally: refused, never mangled."""
    for h in c.inv.hosts:
        for i in h.instances:
            if i.service.manager is Manager.NONE:
                continue
            checks = [("state_dir", "WorkingDirectory=")]
            if ("env_file",) in i.provenance:  # a default env file is in the state dir: checked with it
                checks.append(("env_file", "EnvironmentFile="))
            for key, setting in checks:
                trouble = _unit_trouble(getattr(i, key))
                if trouble:
                    yield c.error("unit-path", f"{i.address} {key} {getattr(i, key)!r} {trouble}: systemd reads it in "
                                  f"{setting}, where that is not taken literally (a glob, an escape, or stripped); "
                                  "choose a path without it", _origin(c, h, i, key))
    oc = c.inv.openclaw
    exe = oc.run_command[0] if oc.run_command else ""
    if exe and not _EXEC_SAFE.match(exe) and any(i.service.manager is not Manager.NONE for h in c.inv.hosts
                                                 for i in h.instances):
        what, where = (("openclaw.install.prefix", ("openclaw", "install", "prefix")) if oc.install is not None
                       else ("openclaw.command[0]", ("openclaw", "command", 0)))
        yield c.error("unit-command", f"{what} makes {exe!r} the executable systemd starts: it may only hold "
                      "letters, digits, inner spaces and _ . / @ + : - (systemd refuses quotes and backslashes there, "
                      "and would not expand $, % or ~); put the program at a plain path",
                      c.at(where, key=False) or c.at(("openclaw",)))


def rule_addresses(c: Ctx) -> Iterator[Diagnostic]:
    seen: dict[tuple[str, int], Host] = {}
    for h in c.inv.hosts:
        if h.connection != "ssh" or not h.address:
            continue
        key = (h.address.lower(), h.ssh.port)
        if key in seen:
            first = c.at((*seen[key].doc_path, "address"), key=False)
            yield c.warning("duplicate-address", f"hosts {seen[key].name!r}{_where(first)} and {h.name!r} have the "
                            f"same address {h.address}:{h.ssh.port}; their files would land on one machine",
                            c.at((*h.doc_path, "address"), key=False), first)
        else:
            seen[key] = h


RULES: tuple[Callable[[Ctx], Iterator[Diagnostic]], ...] = (
    rule_port_required,
    rule_port_range,
    rule_port_overlap,
    rule_cdp,
    rule_paths,
    rule_profiles,
    rule_owned_config,
    rule_bind_auth,
    rule_groups,
    rule_dedupe,
    rule_addresses,
    rule_unit_syntax,
)


def check_isolation(inv: Inventory) -> list[Diagnostic]:
    ctx = Ctx(inv)
    return [d for rule in RULES for d in rule(ctx)]
