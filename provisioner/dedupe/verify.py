"""Prove that the claim directory is one shared store across the HA hosts, whatever the OpenClaw version.

Checks, each with the hosts it concerns: the directory exists (and is the managed mount, when there is
one); a nonce written on one host is read on every other; each host's service user can write there; an
exclusive-create race started on all hosts at the same instant has exactly one winner; how long a
deletion takes to be seen elsewhere; free space.

Every step inside the directory runs as each host's service user (see remote/scripts/dedupe.py): that directory is
writable by the user, so root never creates, reads or removes anything in it. A directory that is a symbolic
link, or not a directory at all, fails the first check and nothing is written.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.inventory.model import Host, Inventory
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts import dedupe as scripts
from provisioner.remote.scripts.trust import root_output, user_output
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

    def who(h: Host) -> scripts.Who:
        return scripts.Who(h.service.user, h.service.group, transport_root(transport(h)))

    def run(h: Host, script: str) -> str:
        """The whole output of a script (root lines and prefixed user lines)."""
        res = run_script(transport(h), script, become=h.ssh.become and h.ssh.user != "root", timeout=120)
        if not res.ok:
            raise RuntimeError(res.err_text()[:300] or f"exit {res.rc}")
        return res.text()

    def user(h: Host, script: str) -> str:
        """Only what the user side of a script printed."""
        return user_output(run(h, script)).strip()

    def errors(results: dict[str, Any]) -> dict[str, str]:
        return {n: str(r) for n, r in results.items() if isinstance(r, BaseException)}

    # 1. facts per host
    facts = each(hosts, lambda h: _parse_facts(run(h, scripts.facts_script(d, who(h)))))
    unreachable = errors(facts)
    if unreachable:
        v.checks.append(Check("reachable", False, "; ".join(f"{n}: {e}" for n, e in unreachable.items()),
                              sorted(unreachable)))
        return v
    missing = [n for n, f in facts.items() if f["dir"] == "0"]
    refused = {n: f for n, f in facts.items() if f["dir"] not in ("1", "0")}
    why = [f"{d} is missing on {', '.join(missing)}"] if missing else []
    for n, f in sorted(refused.items()):
        what = (f"a symbolic link to {f['found'] or '?'} on {n}" if f["dir"] == "link" else
                f"a {f['found'] or 'file of unknown type'} on {n}, not a directory")
        why.append(f"{d} is {what}; refusing to use it")
    unusable = sorted([*missing, *refused])
    v.checks.append(Check("directory exists", not unusable, "; ".join(why) or f"{d} exists on every host",
                          unusable))
    if unusable:
        return v
    if inv.dedupe.mount is not None:
        want = "fuse.sshfs" if inv.dedupe.mount.type == "sshfs" else inv.dedupe.mount.type
        not_mounted = [n for n, f in facts.items() if f["target"] != d or (want != "bind" and f["fstype"] != want)]
        detail = (f"{d} is not a {inv.dedupe.mount.type} mount on " + ", ".join(
            f"{n} ({facts[n]['fstype'] or '?'} at {facts[n]['target'] or '?'})" for n in not_mounted)
            if not_mounted else f"{d} is mounted ({want}) on every host")
        v.checks.append(Check("mounted", not not_mounted, detail, not_mounted))
    # 2. a nonce written on one host is read on every other
    # written (as its service user) on a host whose user can write there, when there is one
    nonce = secrets.token_hex(8)
    first = next((h for h in hosts if facts[h.name]["write"] == "1"), hosts[0])
    others = [h for h in hosts if h is not first]
    path = f"{d}/.ocp-verify-{nonce}"
    wrote = False
    try:
        user(first, scripts.write_script(path, nonce, who(first)))
        wrote = True
    except RuntimeError as exc:
        v.checks.append(Check("one shared store", False, f"cannot write a nonce in {d} on {first.name} as "
                              f"{_identity(first, facts[first.name])}: {exc}", [first.name]))
    else:
        try:
            reads = each(others, lambda h: user(h, scripts.read_script(path, who(h))))
            blind = sorted(n for n, r in reads.items() if r != f"READ {nonce}")
            v.checks.append(Check(
                "one shared store", not blind,
                (f"{', '.join(blind)} {'does' if len(blind) == 1 else 'do'} not share the store with {first.name}: "
                 f"a nonce written there on {first.name} is not seen" if blind else
                 f"a nonce written on {first.name} is read on {len(others)} other host(s)"), blind))
        finally:
            user(first, scripts.remove_script(path, who=who(first)))
    # 3. each service user can write
    # a service user that apply has not created yet cannot be asked: a warning, not a failure
    cannot = sorted(n for n, f in facts.items() if f["write"] == "0")
    absent = sorted(n for n, f in facts.items() if f["write"] == "nouser")
    detail = "; ".join([*(f"{n}: permission denied for {by_name[n].service.user}" for n in cannot),
                        *(f"{n}: user {by_name[n].service.user} does not exist yet" for n in absent)])
    v.checks.append(Check("writable by the service user", not cannot,
                          detail or "every host's service user can write", cannot or absent, warning=bool(absent)))
    if not wrote:  # not even a nonce could be written there: a race cannot be either
        return v
    # 4. exclusive-create race from all hosts at once
    race = f"{d}/.ocp-race-{nonce}"
    at_ms = int((time.time() + 1.5) * 1000)  # far enough ahead that every host is waiting when it comes
    outcome = each(hosts, lambda h: user(h, scripts.race_script(race, h.name, at_ms, who(h))))
    winners = sorted(n for n, r in outcome.items() if r == "WON")
    bad = errors(outcome)
    race_ok = len(winners) == 1 and not bad
    detail = (f"exactly one winner ({winners[0]}) of {len(hosts)}" if race_ok else
              f"{len(winners)} winners ({', '.join(winners) or 'none'}) of {len(hosts)}: exclusive create is not "
              "atomic across these hosts")
    v.checks.append(Check("exclusive-create race", race_ok, detail, [] if race_ok else winners or sorted(outcome)))
    if not race_ok or any(not c.ok for c in v.checks):
        each(hosts, lambda h: user(h, scripts.remove_script(race, who=who(h))))
        return v
    # 5. how long a deletion takes to be seen elsewhere
    deleter = next((h for h in hosts if h.name in winners), first)
    user(deleter, scripts.remove_script(race, who=who(deleter)))
    waits = each([h for h in hosts if h is not deleter],
                 lambda h: user(h, scripts.wait_gone_script(race, DELETE_WAIT_S, who(h))))
    seen = {n: r for n, r in waits.items() if isinstance(r, str)}
    stuck = sorted(n for n, r in seen.items() if r == "TIMEOUT")
    times = {n: int(r.split()[1]) for n, r in seen.items() if r.startswith("GONE")}
    slowest = max(times.values(), default=0)
    v.checks.append(Check("deletion visible elsewhere", not stuck,
                          f"deleted on {deleter.name}: seen on the others after at most {slowest} ms "
                          f"({', '.join(f'{n} {t} ms' for n, t in sorted(times.items()))})"
                          + (f"; still there after {DELETE_WAIT_S:.0f} s on {', '.join(stuck)}" if stuck else ""),
                          stuck))
    each(hosts, lambda h: user(h, scripts.remove_script(race, who=who(h))))
    # 6. free space
    low = sorted(n for n, f in facts.items() if f["free_kb"] < LOW_SPACE_KB)
    v.checks.append(Check("free space", True, ", ".join(f"{n} {f['free_kb'] // 1024} MiB" for n, f in
                                                        sorted(facts.items())), low, warning=bool(low)))
    return v


def _identity(h: Host, facts: dict[str, Any]) -> str:
    u = h.service.user
    return f"nobody (user {u} does not exist yet)" if facts["write"] == "nouser" else u


def _parse_facts(text: str) -> dict[str, Any]:
    """DIR, MNT, FREE and `WRITE nouser` from the root script's own lines; `WRITE 0|1` only from its user side."""
    f: dict[str, Any] = {"dir": "0", "found": "", "target": "", "fstype": "", "source": "", "free_kb": 0,
                         "write": "0"}
    for line in root_output(text).split("\n"):
        kind, _, rest = line.partition(" ")
        if kind == "DIR":
            f["dir"], _, f["found"] = rest.strip().partition(" ")
        elif kind == "MNT":
            parts = rest.split()
            f["target"], f["fstype"], f["source"] = (parts + ["", "", ""])[:3]
        elif kind == "FREE" and rest.strip().isdigit():
            f["free_kb"] = int(rest.strip())
        elif kind == "WRITE" and rest.strip() == "nouser":
            f["write"] = "nouser"
    if f["write"] != "nouser":
        said = [line.partition(" ")[2].strip() for line in user_output(text).split("\n") if line.startswith("WRITE ")]
        f["write"] = "1" if said[-1:] == ["1"] else "0"
    return f
