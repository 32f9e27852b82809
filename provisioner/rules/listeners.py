"""Channel webhook listeners: ports a channel binds on the host besides the gateway's own. Two instances on one
host whose listeners take the same port, or a listener inside an instance's port span, fail at start (EADDRINUSE).

Which channels listen, from OpenClaw's own docs (node_modules/openclaw/docs/channels/ of 2026.9.6):
- telegram in webhook mode (`webhookUrl` set): "The local listener binds to 127.0.0.1:8787 by default"
  (`webhookHost`, `webhookPort`; 0 lets the OS choose) (telegram/transports.md).
- feishu with `connectionMode: webhook`: `webhookHost` 127.0.0.1, `webhookPort` 3000 by default
  (feishu/configuration-reference.md).
- nextcloud-talk: "webhook listener port (default: 8788)", host 0.0.0.0 by default (nextcloud-talk.md).
Accounts inherit the channel's keys (pollers.accounts). Listeners of one instance are not compared with each
other: how one gateway shares a port between its own accounts is its business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from provisioner.core.diagnostics import Diagnostic, SourceSpan
from provisioner.inventory.model import Instance
from provisioner.rules.context import Ctx, _where
from provisioner.rules.pollers import accounts
from provisioner.rules.ports import port_span

_ANY = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Listens:
    channel: str
    listening: Callable[[dict[str, Any]], bool]  # the (account's) config serves webhooks
    switch: str | None  # the key that turns the listener on (where a default port is reported)
    host: str
    port: int


SPECS = (
    Listens("telegram", lambda a: bool(a.get("webhookUrl")), "webhookUrl", "127.0.0.1", 8787),
    Listens("feishu", lambda a: a.get("connectionMode") == "webhook", "connectionMode", "127.0.0.1", 3000),
    Listens("nextcloud-talk", lambda a: True, None, "0.0.0.0", 8788),
)


@dataclass(frozen=True)
class Listener:
    inst: Instance
    channel: str
    account: str
    bind: str
    port: int
    span: SourceSpan | None

    def describe(self) -> str:
        who = self.inst.address if self.account == "default" else f"{self.inst.address} (account {self.account})"
        return f"{who}: channels.{self.channel} webhook listener {self.bind or '*'}:{self.port}"


def listeners(c: Ctx, inst: Instance) -> Iterator[Listener]:
    chans = inst.config.get("channels") if isinstance(inst.config, dict) else None
    if not inst.enabled or not isinstance(chans, dict):
        return
    for spec in SPECS:
        ch = chans.get(spec.channel)
        if not isinstance(ch, dict) or ch.get("enabled") is False:
            continue
        for acc, cfg, where in accounts(ch):
            if cfg.get("enabled") is False or not spec.listening(cfg):
                continue
            port = cfg.get("webhookPort", spec.port)
            if not isinstance(port, int) or isinstance(port, bool) or port <= 0:
                continue  # 0: the OS chooses; anything else is the schema's to refuse
            bind = cfg.get("webhookHost", spec.host)
            key = next((k for k in ("webhookPort", spec.switch) if k and k in where), None)
            at = ("channels", spec.channel, *(str(p) for p in where[key])) if key else ("channels", spec.channel)
            yield Listener(inst, spec.channel, acc, bind if isinstance(bind, str) else spec.host, port,
                           c.field(inst, "config", *at))


def _clash(a: Listener, b: Listener) -> bool:
    return a.port == b.port and (a.bind == b.bind or a.bind in _ANY or b.bind in _ANY)


def rule_channel_ports(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        seen: list[Listener] = []
        spans = [(other, span) for other in h.instances if other.enabled and (span := port_span(other)) is not None]
        for i in h.instances:
            for lst in listeners(c, i):
                for other, span in spans:
                    if lst.port in span.ports():
                        whose = "its own" if other is i else f"{other.address}'s"
                        yield c.error("channel-port", f"{lst.describe()} is inside {whose} port span "
                                      f"{span.describe()}: the gateway would fail to bind it (EADDRINUSE); choose "
                                      "a webhookPort outside every instance's span", lst.span, c.field(other, "port"))
                first = next((s for s in seen if s.inst is not i and _clash(s, lst)), None)
                if first is not None:
                    yield c.error("channel-port", f"{lst.describe()} and {first.describe()}{_where(first.span)} "
                                  f"bind the same port on {h.name}: the second gateway would fail to start "
                                  "(EADDRINUSE); give each instance's listener its own webhookPort",
                                  lst.span, *((first.span,) if first.span != lst.span else ()))
                seen.append(lst)
