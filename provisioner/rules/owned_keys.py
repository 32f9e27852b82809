"""Settings the tool owns (gateway port, bind and mode, workspace, the unit's OpenClaw env) must not be
contradicted from `config`, `env` or `secrets`; every gateway has auth unless a loopback one opts out."""

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
    """Auth by default: every gateway gets token auth (a token from `secrets:`, or one made on the host) unless
    `config.gateway.auth.mode: none` opts out, which only a loopback bind may, and never silently."""
    for h in c.inv.hosts:
        for i in h.instances:
            mode = _get(i.config, "gateway", "auth", "mode")
            where = c.field(i, "config", "gateway", "auth", "mode")
            if mode == "none" and i.bind != "loopback":
                yield c.error("auth-off-exposed", f"{i.address}: gateway.auth.mode none with bind {i.bind!r}: "
                              "whoever reaches the port drives this gateway; remove the opt-out (the gateway then "
                              "gets a token, made on the host unless secrets: gives OPENCLAW_GATEWAY_TOKEN) or bind "
                              "loopback", where, c.field(i, "bind"))
            elif mode == "none":
                yield c.warning("auth-off", f"{i.address}: gateway auth is off (explicit opt-out): any process on "
                                "this host, the agents of other gateways included, can drive this gateway; remove "
                                "the opt-out to get a token made on the host", where)
            elif mode == "password" and not (
                    _get(i.config, "gateway", "auth", "password") is not None
                    or any("OPENCLAW_GATEWAY_PASSWORD" in m for m in (i.secrets, i.env))):
                yield c.error("auth-password-missing", f"{i.address}: gateway.auth.mode password without a password; "
                              "add secrets: {OPENCLAW_GATEWAY_PASSWORD: {env: NAME}}", where)
