"""Browser profiles and Chrome DevTools (CDP) endpoints: each profile needs one, none may be shared."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from provisioner.core.diagnostics import Diagnostic
from provisioner.inventory.model import Instance
from provisioner.rules.context import Ctx, _get, _where


def browser_profiles(inst: Instance) -> dict[str, Any]:
    profiles = _get(inst.config, "browser", "profiles")
    return profiles if isinstance(profiles, dict) else {}


def cdp_ports(inst: Instance) -> list[tuple[str, int]]:
    return [(n, p["cdpPort"]) for n, p in browser_profiles(inst).items()
            if isinstance(p, dict) and isinstance(p.get("cdpPort"), int) and not isinstance(p["cdpPort"], bool)]


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
