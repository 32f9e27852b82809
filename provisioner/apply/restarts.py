"""Restarts that say what they wait for: queue them, watch each unit stop (within its stop budget) and start again.

A gateway sizes its drain from its unit's `TimeoutStopSec` (drain = budget - 15 s, its own deadline = budget - 5 s),
and a channel that cannot reach its API holds the stop to that deadline (measured on OpenClaw 2026.9.6: 5 min 25 s
with the default 330, 26 s with 30). So a restart is never one blocking command that a command timeout could cut
short or that hangs without a word: `systemctl_script` queues it, and `run_restarts` polls the units, reporting a
stopping unit with its elapsed time and budget, until each one runs a new invocation. A stop that took its budget
is reported with the stability bundle the gateway wrote.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from provisioner.apply.results import Progress, ProgressEvent
from provisioner.apply.services import systemctl
from provisioner.core.desired import DesiredHost
from provisioner.core.policies import Manager
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.systemd import stability_bundle_script, unit_states_script
from provisioner.remote.scripts.trust import user_output
from provisioner.remote.transport import Result, Transport, TransportError

START_MARGIN = 90.0  # seconds a unit may take to start once stopped, beyond its stop budget
REPORT_EVERY = 5.0  # seconds between two reports of the same stopping unit
DEFAULT_BUDGET = 330  # a unit whose budget systemd did not say (OpenClaw's own default)
_SPAN = re.compile(r"(\d+(?:\.\d+)?)(us|ms|min|s|h|d)")
_SPAN_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def span_seconds(text: str) -> float | None:
    """A systemd time span as `systemctl show` prints it ("5min 30s", "30s", "infinity") in seconds."""
    parts = _SPAN.findall(text.replace(" ", ""))
    if not parts or text.strip() == "infinity":
        return None
    return sum(float(n) * _SPAN_UNITS[u] for n, u in parts)


def unit_states(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show -p ...` of several units: their properties, by unit (blocks are separated by a blank line)."""
    out: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        f = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if f.get("Id"):
            out[f["Id"]] = f
    return out


@dataclass
class RestartOutcome:
    """What the restarts of one host came to."""

    result: Result | None = None  # the systemctl script's
    failure: str | None = None  # a unit that did not come back within its budget, or systemctl's error
    stopped_in: dict[str, float] = field(default_factory=dict)  # unit -> seconds its stop took (as polled)
    deadlines: dict[str, str] = field(default_factory=dict)  # unit -> what its stop reaching the deadline left
    budgets: dict[str, int] = field(default_factory=dict)  # unit -> the stop budget its stop was given


def run_restarts(t: Transport, desired: DesiredHost, say: Progress, *, reload: bool, restart: Sequence[str],
                 start: Sequence[str] = (), stop: Sequence[str] = (), remove_units: Sequence[str] = (),
                 mount_points: Sequence[str] = (), become: bool = False, poll: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
                 ) -> RestartOutcome:
    """Run `systemctl_script` and wait until every restarted or started unit runs a new invocation."""
    h = desired.name
    budgets = {s.unit: s.stop_timeout for s in desired.services}
    # stops of units that go away block in the script: its timeout is their budgets, plus time to do the rest
    blocking = sum(budgets.get(u, DEFAULT_BUDGET) for u in stop)
    if stop:
        say(h, ProgressEvent(f"stopping {', '.join(stop)} (stop budget {blocking} s)", "stopping",
                             units=list(stop), budget=blocking))
    res = systemctl(t, desired, reload, restart, start, stop, remove_units, mount_points, become=become,
                    timeout=blocking + 120.0)
    out = RestartOutcome(res)
    if not res.ok:
        return out
    # root's units are queued and watched here; the service user's manager restarted its own before returning
    users = {s.unit for s in desired.services if s.manager is Manager.SYSTEMD_USER}
    units = [u for u in (*restart, *start) if u not in users]
    if not units:
        return out
    before = unit_states(res.text())
    for u, f in before.items():
        budget = span_seconds(f.get("TimeoutStopUSec", ""))
        if budget is not None:
            budgets[u] = int(budget)  # the running unit's own budget: what this stop is given
    out.budgets = budgets
    out.failure = _wait(t, h, units, before, budgets, out, say, become, poll, clock, sleep)
    if not out.failure and not transport_root(t):
        _bundles(t, desired, out, become)
    return out


def _wait(t: Transport, h: str, units: list[str], before: dict[str, dict[str, str]], budgets: dict[str, int],
          out: RestartOutcome, say: Progress, become: bool, poll: float, clock: Callable[[], float],
          sleep: Callable[[float], None]) -> str | None:
    t0 = clock()
    pending = list(units)
    reported: dict[str, float] = {}
    while True:
        states = unit_states(run_script(t, unit_states_script(pending), become=become, timeout=30).text())
        now = clock()
        el = now - t0
        for u in list(pending):
            f = states.get(u, {})
            old = before.get(u, {}).get("InvocationID", "")
            new = f.get("InvocationID", "")
            active = f.get("ActiveState", "")
            queued = f.get("Job", "").strip() not in ("", "0")  # its restart job is still in systemd's queue
            if active == "deactivating" or (queued and (not new or new == old)):  # stopping, or not begun yet
                budget = budgets.get(u, DEFAULT_BUDGET)
                if active == "deactivating" and now - reported.get(u, -REPORT_EVERY) >= REPORT_EVERY:
                    reported[u] = now
                    say(h, ProgressEvent(f"{u}: stopping ({f.get('SubState', '?')}), {el:.0f} s of its {budget} s "
                                         "stop budget", "stopping", unit=u, elapsed=round(el, 1), budget=budget))
                if el > budget + START_MARGIN:
                    return (f"{u} did not restart within its stop budget of {budget} s plus {START_MARGIN:.0f} s "
                            f"to start (still {active}/{f.get('SubState', '?')} after {el:.0f} s)")
                continue
            pending.remove(u)
            out.stopped_in[u] = el
            if u in reported:
                say(h, ProgressEvent(f"{u}: stopped after {el:.0f} s of its {budgets.get(u, DEFAULT_BUDGET)} s "
                                     "stop budget, starting", "stopped", unit=u, elapsed=round(el, 1),
                                     budget=budgets.get(u, DEFAULT_BUDGET)))
        if not pending:
            return None
        sleep(poll)


def _bundles(t: Transport, desired: DesiredHost, out: RestartOutcome, become: bool) -> None:
    """A stop that ran into the gateway's own deadline (budget - 5 s) left a stability bundle: find it."""
    for s in desired.services:
        took = out.stopped_in.get(s.unit)
        budget = out.budgets.get(s.unit, s.stop_timeout)
        if took is None or not s.state_dir or took < max(5.0, budget - 10):
            continue
        minutes = int(took // 60) + 2
        try:
            res = run_script(t, stability_bundle_script(s.user, s.group or s.user, s.state_dir, minutes),
                             become=become, timeout=60)
        except TransportError:
            continue
        path = user_output(res.text()).strip()
        out.deadlines[s.unit] = (f"its stop reached the deadline ({took:.0f} s of {budget} s): the gateway "
                                 f"abandoned its shutdown; stability bundle: {path or 'none found'}")
