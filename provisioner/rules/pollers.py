"""One poller per bot token, fleet-wide: two instances whose channel (or account) connects with a credential from
the same source, in a mode where the credential allows one connection, fight over it.

Which channels, from OpenClaw's own docs (node_modules/openclaw/docs/channels/ of 2026.9.6):
- telegram, long polling (no `webhookUrl`): "Each gateway process guards long polling so only one active poller
  can use a bot token at a time. Persistent `getUpdates` 409 conflicts point to another OpenClaw gateway, script,
  or external poller using the same token" (telegram/messaging.md).
- slack, Socket Mode (`mode` unset or "socket"), by its App-Level Token: "One Socket Mode session per app per
  host; multiple Gateways need separate Slack apps" (slack/transports.md).

The same source: the same controller environment variable or file behind `secrets:`, the same literal (compared,
never shown), or the same file on the same host (`tokenFile`, a file SecretRef).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from provisioner.core.diagnostics import Diagnostic, SourceSpan
from provisioner.inventory.model import Instance
from provisioner.rules.context import Ctx
from provisioner.rules.secret_fields import SUBSTITUTION, ConfigPath, ref_of


@dataclass(frozen=True)
class OneConnection:
    channel: str
    credential: str  # what the docs call it
    fields: tuple[str, ...]  # config keys holding it, the first one set wins (tokenFile beats botToken)
    file_fields: tuple[str, ...]  # those of `fields` that name a file on the host
    env_fallback: str  # read from the environment by the default account only
    polls: Callable[[dict[str, Any]], bool]  # the (account's) config uses the one-connection transport
    mode: str  # the one-connection transport, in words
    fix: str


CHANNELS = (
    OneConnection("telegram", "bot token", ("tokenFile", "botToken"), ("tokenFile",), "TELEGRAM_BOT_TOKEN",
                  lambda a: not a.get("webhookUrl"), "long polling",
                  "only one poller can use a bot token at a time (getUpdates 409 conflicts): give each its own bot "
                  "token (the rescue bot too), or use webhook mode (webhookUrl) behind the load balancer"),
    OneConnection("slack", "app-level token", ("appToken",), (), "SLACK_APP_TOKEN",
                  lambda a: a.get("mode", "socket") == "socket", "Socket Mode",
                  "Slack allows one Socket Mode session per app: give each gateway its own Slack app, or use "
                  "HTTP Request URLs (mode: http) behind the load balancer"),
)

_NOT_INHERITED = ("accounts", "defaultAccount")


def accounts(ch: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, ConfigPath]]]:
    """(account id, its effective config, where each of its keys is set) of a channel section: its `accounts`
    over the channel's own keys, or the channel itself as the default account."""
    base = {k: v for k, v in ch.items() if k not in _NOT_INHERITED}
    accs = ch.get("accounts")
    if not isinstance(accs, dict) or not accs:
        yield "default", base, {k: (k,) for k in base}
        return
    for name, acc in accs.items():
        if isinstance(acc, dict):
            where: dict[str, ConfigPath] = {k: (k,) for k in base}
            where.update({k: ("accounts", name, k) for k in acc})
            yield str(name), {**base, **acc}, where


@dataclass(frozen=True)
class Use:
    inst: Instance
    account: str
    span: SourceSpan | None


def source_of(inst: Instance, value: Any, file_field: bool) -> tuple[tuple[str, ...], str] | None:
    """(identity, words) of where a credential's value comes from; None when it cannot be known here."""
    if file_field and isinstance(value, str):
        return ("host-file", inst.host, posixpath.normpath(value)), f"file {value} on {inst.host}"
    ref = ref_of(value)
    name = None
    if ref is not None:
        if ref[0] == "file":
            return ("host-ref", inst.host, ref[1], ref[2]), f"file SecretRef {ref[1]}:{ref[2]} on {inst.host}"
        if ref[0] != "env":
            return None  # exec and store: what they yield is not known before the gateway asks
        name = ref[2]
    elif isinstance(value, str):
        m = SUBSTITUTION.fullmatch(value)
        if m is None:
            return ("literal", value), "the same literal"
        name = m.group(1)
    if name is None:
        return None
    secret = inst.secrets.get(name)
    if secret is not None and secret.env:
        return ("controller-env", secret.env), f"controller env {secret.env}"
    if secret is not None and secret.file:
        return ("controller-file", secret.file), f"controller file {secret.file}"
    if name in inst.env:
        return ("literal", inst.env[name]), f"the same literal env {name}"
    return None  # not set: rule_secret_refs says so


def uses(c: Ctx, spec: OneConnection) -> Iterator[tuple[tuple[str, ...], str, Use]]:
    for h in c.inv.hosts:
        for i in h.instances:
            ch = (i.config.get("channels") or {}).get(spec.channel) if isinstance(i.config, dict) else None
            if not i.enabled or not isinstance(ch, dict) or ch.get("enabled") is False:
                continue
            default = ch.get("defaultAccount") or "default"
            for acc, cfg, where in accounts(ch):
                if cfg.get("enabled") is False or not spec.polls(cfg):
                    continue
                field = next((f for f in spec.fields if cfg.get(f) not in (None, "")), None)
                if field is not None:
                    src = source_of(i, cfg[field], field in spec.file_fields)
                    span = c.field(i, "config", "channels", spec.channel, *(str(p) for p in where[field]))
                elif acc == default and spec.env_fallback in i.secrets | i.env:
                    src = source_of(i, "${" + spec.env_fallback + "}", False)
                    span = c.field(i, "secrets" if spec.env_fallback in i.secrets else "env", spec.env_fallback)
                else:
                    continue
                if src is not None:
                    yield src[0], src[1], Use(i, acc, span)


def _label(u: Use) -> str:
    return u.inst.address if u.account == "default" else f"{u.inst.address} (account {u.account})"


def rule_one_poller(c: Ctx) -> Iterator[Diagnostic]:
    for spec in CHANNELS:
        groups: dict[tuple[str, ...], tuple[str, list[Use]]] = {}
        for ident, words, use in uses(c, spec):
            groups.setdefault(ident, (words, []))[1].append(use)
        for words, group in groups.values():
            if len({u.inst.address for u in group}) < 2:
                continue  # one gateway process guards its own accounts
            names = ", ".join(_label(u) for u in group)
            spans = list(dict.fromkeys(u.span for u in group))
            for span in spans:
                yield c.error("one-poller", f"{names}: {spec.channel} in {spec.mode} with one {spec.credential} "
                              f"({words}) on {len({u.inst.address for u in group})} instances: {spec.fix}",
                              span, *(s for s in spans if s != span))
