"""Settings the tool owns (gateway port, bind and mode, workspace, the unit's OpenClaw env) must not be
contradicted from `config`, `env` or `secrets`; a gateway exposed beyond loopback needs auth."""

from __future__ import annotations

from collections.abc import Iterator

from provisioner.core.diagnostics import Diagnostic
from provisioner.rules.context import Ctx, _get

UNIT_OWNED_ENV = ("OPENCLAW_PROFILE", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_GATEWAY_PORT",
                  "OPENCLAW_SYSTEMD_UNIT", "HOME", "OPENCLAW_CONFIG_READONLY")

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
