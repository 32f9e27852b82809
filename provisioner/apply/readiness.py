"""What OpenClaw says about readiness, read as data: the `failing` list of /readyz and the channel probe's verdicts.

OpenClaw's probe contract (docs/gateway/health.md in the package; measured on 2026.9.6 in the systemd lab):
`/startupz` 200 = the process started; `/readyz` 200 = started, agent databases admitted and every configured
channel account passes its deep check. A channel that cannot connect passes that check for a grace period of
120 s from the channel's start (hard-wired in 2026.9.6, not a config key), then `/readyz` answers
`503 {"ready":false,"failing":["telegram"]}`. `openclaw channels status --probe --json` asks the running gateway
to probe each account at once: an unreachable API or a refused token is `probe.ok: false` within seconds.

Everything here is pure: what a gateway printed goes in (it is the service user's output, so it is capped and
taken as data), verdicts come out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NAME_CAP = 64  # characters of one name from the `failing` list kept
DETAIL_CAP = 160  # characters of a probe's error kept


def failing_of(body: bytes) -> tuple[str, ...]:
    """The `failing` list of a /readyz body (`{"ready":false,"failing":["telegram"],...}`); () if there is none."""
    try:
        doc = json.loads(body[: 1 << 20])
    except ValueError:
        return ()
    failing = doc.get("failing") if isinstance(doc, dict) else None
    if not isinstance(failing, list):
        return ()
    return tuple(_clean(x, NAME_CAP) for x in failing[:20] if isinstance(x, str))


def describe_ready(status: int | str, failing: Iterable[str]) -> str:
    """`503 (failing: telegram)`, or just the status."""
    names = list(failing)
    return f"{status} (failing: {', '.join(names)})" if names else str(status)


@dataclass(frozen=True)
class ChannelVerdict:
    """One channel of an instance, as the gateway's live probe judged it."""

    channel: str
    ok: bool | None  # None: the gateway gave no probe result for it (nothing proven either way)
    detail: str = ""  # why it failed: the probe's error, by account


@dataclass(frozen=True)
class ProbeReport:
    """What `channels status --probe --json` came to for one instance."""

    verdicts: tuple[ChannelVerdict, ...] = ()
    problem: str = ""  # the CLI could not ask the gateway: why (the verdicts are then empty)

    def failed(self, channels: Iterable[str]) -> list[ChannelVerdict]:
        wanted = set(channels)
        return [v for v in self.verdicts if v.channel in wanted and v.ok is False]

    def proven(self, channels: Iterable[str]) -> bool:
        """Every one of `channels` passed its probe."""
        ok = {v.channel for v in self.verdicts if v.ok is True}
        return not self.problem and all(c in ok for c in channels)


def probe_report(text: str) -> ProbeReport:
    """Parse what `openclaw channels status --probe --json` printed (the service user's output: data)."""
    try:
        doc = json.loads(text[text.index("{"):])
    except ValueError:
        last = (text.strip().splitlines() or ["no output"])[-1]
        return ProbeReport(problem=f"the channel probe printed no JSON: {_clean(last, DETAIL_CAP)}")
    if not isinstance(doc, dict):
        return ProbeReport(problem="the channel probe printed no JSON object")
    if doc.get("gatewayReachable") is False or doc.get("configOnly") is True:
        why = str(doc.get("error") or "gateway not reachable").splitlines()[0]
        return ProbeReport(problem=f"the CLI could not ask the gateway: {_clean(why, DETAIL_CAP)}")
    accounts = doc.get("channelAccounts")
    if not isinstance(accounts, dict):
        return ProbeReport(problem="the channel probe listed no channel accounts")
    return ProbeReport(tuple(_verdict(str(ch), accts) for ch, accts in sorted(accounts.items())))


def _verdict(channel: str, accounts: Any) -> ChannelVerdict:
    if not isinstance(accounts, list):
        return ChannelVerdict(channel, None)
    bad: list[str] = []
    good = 0
    for a in accounts:
        if not isinstance(a, dict) or a.get("enabled") is False or a.get("configured") is False:
            continue
        probe = a.get("probe")
        if not isinstance(probe, dict) or not isinstance(probe.get("ok"), bool):
            return ChannelVerdict(channel, None)  # one account unproven: the whole channel is
        if probe["ok"]:
            good += 1
            continue
        why = probe.get("error") or (f"HTTP {probe['status']}" if probe.get("status") else "probe failed")
        bad.append(f"account {_clean(a.get('accountId', '?'), NAME_CAP)}: {_clean(why, DETAIL_CAP)}")
    if bad:
        return ChannelVerdict(channel, False, "; ".join(bad))
    return ChannelVerdict(channel, True if good else None)


def _clean(value: Any, cap: int) -> str:
    """One line of at most `cap` printable characters: what a hostile gateway printed cannot fake a line of ours."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return text[:cap] + ("…" if len(text) > cap else "")


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (of four characters or more) replaced."""
    for s in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(s, "***")
    return text
