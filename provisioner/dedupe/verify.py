"""Prove that the claim directory is one shared store across the HA hosts, whatever the OpenClaw version.

Checks, each with the hosts it concerns: the directory exists (and is the managed mount, when there is
one); a nonce written on one host is read on every other; each host's service user can write there; an
exclusive-create race started on all hosts at the same instant has exactly one winner; how long a
deletion takes to be seen elsewhere; free space.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.dedupe import scripts
from provisioner.inventory.model import Host, Inventory
from provisioner.remote.connect import run_script
from provisioner.remote.transport import Transport

LOW_SPACE_KB = 100 * 1024
DELETE_WAIT_S = 30.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hosts: list[str] = field(default_factory=list)  # the hosts at fault, when it failed
    warning: bool = False


@dataclass
class Verification:
    dir: str
    hosts: list[str]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def dedupe_hosts(inv: Inventory, hosts: list[Host]) -> list[Host]:
    """Hosts with at least one instance taking part in the shared dedupe."""
    return [h for h in hosts if any(i.dedupe for i in h.instances)] if inv.dedupe else []


Each = Callable[[list[Host], Callable[[Host], Any]], dict[str, Any]]


def verify(inv: Inventory, hosts: list[Host], transport: Callable[[Host], Transport], each: Each) -> Verification:
    assert inv.dedupe is not None
    d = inv.dedupe.dir
    v = Verification(d, [h.name for h in hosts])
    by_name = {h.name: h for h in hosts}

    def run(h: Host, script: str) -> str:
        res = run_script(transport(h), script, become=h.ssh.become and h.ssh.user != "root", timeout=120)
        if not res.ok:
            raise RuntimeError(res.err_text()[:300] or f"exit {res.rc}")
        return res.text()

    def errors(results: dict[str, Any]) -> dict[str, str]:
        return {n: str(r) for n, r in results.items() if isinstance(r, BaseException)}

    # 1. facts per host
    facts = each(hosts, lambda h: _parse_facts(run(h, scripts.facts_script(d, h.service.user))))
    unreachable = errors(facts)
    if unreachable:
        v.checks.append(Check("reachable", False, "; ".join(f"{n}: {e}" for n, e in unreachable.items()),
                              sorted(unreachable)))
        return v
    missing = [n for n, f in facts.items() if not f["dir"]]
    v.checks.append(Check("directory exists", not missing,
                          f"{d} is missing on {', '.join(missing)}" if missing else f"{d} exists on every host",
                          missing))
    if missing:
        return v
    if inv.dedupe.mount is not None:
        want = "fuse.sshfs" if inv.dedupe.mount.type == "sshfs" else inv.dedupe.mount.type
        not_mounted = [n for n, f in facts.items() if f["target"] != d or (want != "bind" and f["fstype"] != want)]
        detail = (f"{d} is not a {inv.dedupe.mount.type} mount on " + ", ".join(
            f"{n} ({facts[n]['fstype'] or '?'} at {facts[n]['target'] or '?'})" for n in not_mounted)
            if not_mounted else f"{d} is mounted ({want}) on every host")
        v.checks.append(Check("mounted", not not_mounted, detail, not_mounted))
    # 2. a nonce written on one host is read on every other
    nonce = secrets.token_hex(8)
    first, others = hosts[0], hosts[1:]
    path = f"{d}/.ocp-verify-{nonce}"
    run(first, scripts.write_script(path, nonce))
    try:
        reads = each(others, lambda h: run(h, scripts.read_script(path)).strip())
        blind = sorted(n for n, r in reads.items() if r != f"READ {nonce}")
        v.checks.append(Check(
            "one shared store", not blind,
            (f"{', '.join(blind)} {'does' if len(blind) == 1 else 'do'} not share the store with {first.name}: a "
             f"nonce written there on {first.name} is not seen" if blind else
             f"a nonce written on {first.name} is read on {len(others)} other host(s)"), blind))
    finally:
        run(first, scripts.remove_script(path))
    # 3. each service user can write
    # a service user that apply has not created yet cannot be asked: a warning, not a failure
    cannot = sorted(n for n, f in facts.items() if f["write"] == "0")
    absent = sorted(n for n, f in facts.items() if f["write"] == "nouser")
    detail = "; ".join([*(f"{n}: permission denied for {by_name[n].service.user}" for n in cannot),
                        *(f"{n}: user {by_name[n].service.user} does not exist yet" for n in absent)])
    v.checks.append(Check("writable by the service user", not cannot,
                          detail or "every host's service user can write", cannot or absent, warning=bool(absent)))
    # 4. exclusive-create race from all hosts at once
    race = f"{d}/.ocp-race-{nonce}"
    at_ms = int((time.time() + 1.5) * 1000)  # far enough ahead that every host is waiting when it comes
    outcome = each(hosts, lambda h: run(h, scripts.race_script(race, h.name, at_ms)).strip())
    winners = sorted(n for n, r in outcome.items() if r == "WON")
    bad = errors(outcome)
    race_ok = len(winners) == 1 and not bad
    detail = (f"exactly one winner ({winners[0]}) of {len(hosts)}" if race_ok else
              f"{len(winners)} winners ({', '.join(winners) or 'none'}) of {len(hosts)}: exclusive create is not "
              "atomic across these hosts")
    v.checks.append(Check("exclusive-create race", race_ok, detail, [] if race_ok else winners or sorted(outcome)))
    if not race_ok or any(not c.ok for c in v.checks):
        each(hosts, lambda h: run(h, scripts.remove_script(race)))
        return v
    # 5. how long a deletion takes to be seen elsewhere
    deleter = next((h for h in hosts if h.name in winners), first)
    run(deleter, scripts.remove_script(race))
    waits = each([h for h in hosts if h is not deleter],
                 lambda h: run(h, scripts.wait_gone_script(race, DELETE_WAIT_S)).strip())
    seen = {n: r for n, r in waits.items() if isinstance(r, str)}
    stuck = sorted(n for n, r in seen.items() if r == "TIMEOUT")
    times = {n: int(r.split()[1]) for n, r in seen.items() if r.startswith("GONE")}
    slowest = max(times.values(), default=0)
    v.checks.append(Check("deletion visible elsewhere", not stuck,
                          f"deleted on {deleter.name}: seen on the others after at most {slowest} ms "
                          f"({', '.join(f'{n} {t} ms' for n, t in sorted(times.items()))})"
                          + (f"; still there after {DELETE_WAIT_S:.0f} s on {', '.join(stuck)}" if stuck else ""),
                          stuck))
    each(hosts, lambda h: run(h, scripts.remove_script(race)))
    # 6. free space
    low = sorted(n for n, f in facts.items() if f["free_kb"] < LOW_SPACE_KB)
    v.checks.append(Check("free space", True, ", ".join(f"{n} {f['free_kb'] // 1024} MiB" for n, f in
                                                        sorted(facts.items())), low, warning=bool(low)))
    return v


def _parse_facts(text: str) -> dict[str, Any]:
    f: dict[str, Any] = {"dir": False, "target": "", "fstype": "", "source": "", "free_kb": 0, "write": "0"}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "DIR":
            f["dir"] = rest.strip() == "1"
        elif kind == "MNT":
            parts = rest.split()
            f["target"], f["fstype"], f["source"] = (parts + ["", "", ""])[:3]
        elif kind == "FREE" and rest.strip().isdigit():
            f["free_kb"] = int(rest.strip())
        elif kind == "WRITE":
            f["write"] = rest.strip()
    return f
