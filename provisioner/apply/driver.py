"""The rollout run of an apply: batches of hosts, each batch in parallel, Ctrl-C, roll back of a failed batch.

`Rollout` drives `apply.rollout.roll_out` (the batch policy) with the per-host work of `apply.executor`. It
prints nothing: progress goes to the `RolloutProgress` it is given, and what a second Ctrl-C does (stop the
process at once) is the caller's `stop_now`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from provisioner.apply.executor import apply_host, roll_back_host
from provisioner.apply.fleet import Fleet
from provisioner.apply.health import channel_probe, plugin_inspect
from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import Playbook, RolloutResult, roll_out, settle_for
from provisioner.apply.upgrade_state import StateGuard
from provisioner.core.changes import Plan
from provisioner.install.release import Artifact, artifact
from provisioner.inventory.model import Host
from provisioner.remote.transport import TransportError
from provisioner.session import Session


class RolloutProgress(Protocol):
    """Where a rollout reports; called from the hosts' worker threads (and from the SIGINT handler)."""

    def __call__(self, host: str, message: str) -> None: ...

    def done(self, host: str, ok: bool, message: str) -> None: ...

    def close(self) -> None: ...


class Rollout:
    """One apply's rollout of `plan` over the session's hosts; `run()` once."""

    def __init__(self, session: Session, plan: Plan, fleet: Fleet, playbook: Playbook, progress: RolloutProgress,
                 *, stop_now: Callable[[], None], saved: bool = False) -> None:
        self.session = session
        self.fleet = fleet
        self.playbook = playbook
        self.progress = progress
        self.stop_now = stop_now  # the second Ctrl-C: the progress is closed, then this (it should not return)
        self.saved = saved  # a saved plan: every planned fact is re-checked on the host, not only the changing ones
        self.planned = {h.host: h for h in plan.hosts}
        self.hosts = {h.name: h for h in session.hosts}
        self.done: dict[str, HostResult] = {}  # what each host started so far came to
        self.stop = threading.Event()  # set by the first Ctrl-C: no host is started after it
        self._artifact_lock = threading.Lock()
        self._artifact: Artifact | None = None
        self.batch_no = 0  # the batch being rolled out (1-based): its settle time is the playbook's for it

    def changing(self) -> list[str]:
        """The hosts with changes, in inventory order."""
        return [h.name for h in self.session.hosts if h.name in self.planned and self.planned[h.name].has_changes]

    def run(self) -> RolloutResult:
        """Roll out batch by batch; every host of the plan has a result at the end. The progress is closed."""
        changing = self.changing()
        previous = signal.signal(signal.SIGINT, self.interrupt) \
            if threading.current_thread() is threading.main_thread() else None
        try:
            result = roll_out(changing, self.playbook, self.run_batch, self.roll_back, interrupted=self.stop.is_set)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self.progress.close()
        self._add_untouched(result)
        return result

    def run_batch(self, batch: list[str]) -> dict[str, HostResult]:
        self.batch_no += 1
        self.progress("batch", ", ".join(batch))
        return self._each(batch, self._apply)

    def roll_back(self, names: list[str]) -> dict[str, HostResult]:
        """Put hosts that took the new revision back on their previous files (their batch failed)."""
        return self._each(names, lambda h: roll_back_host(self.fleet.transport(h), self.session.desired[h.name],
                                                          self.done[h.name], become=self._become(h),
                                                          progress=self.progress))

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        """SIGINT: the first lets the hosts in flight finish and starts no others; the second stops at once."""
        if self.stop.is_set():
            self.progress.close()
            self.stop_now()
            return
        self.stop.set()
        self.progress("controller", "interrupted: finishing the hosts in flight, starting no others "
                                    "(interrupt again to stop at once)")

    def release_artifact(self) -> Artifact:
        """Fetched and packed once per run (and cached across runs), whatever the number of hosts."""
        inv = self.session.inv
        ins = inv.openclaw.install
        assert ins is not None
        with self._artifact_lock:
            if self._artifact is None:
                self.progress("controller", f"caching OpenClaw {inv.openclaw.version} for the hosts")
                self._artifact = artifact(inv.openclaw.version, ins.node_version)
            return self._artifact

    def _apply(self, h: Host) -> HostResult:
        if self.stop.is_set():
            return HostResult(h.name, HostStatus.NOT_REACHED, "interrupted before this host was started")
        t = self.fleet.transport(h)
        probe = channel_probe(t, h, self.session.inv.openclaw.run_command, become=self._become(h)) \
            if h.connection == "ssh" else None
        plugins = plugin_inspect(t, h, self.session.inv.openclaw.run_command, become=self._become(h)) \
            if h.connection == "ssh" else None
        ins = self.session.inv.openclaw.install if h.connection == "ssh" else None
        guard = StateGuard(h, ins.prefix.rstrip("/"), ins.keep, self._become(h)) if ins is not None else None
        r = apply_host(t, self.session.desired[h.name], self.planned[h.name],
                       become=self._become(h), progress=self.progress, health_gate=self.playbook.health_gate,
                       health_timeout=self.playbook.health_timeout, settle=settle_for(self.playbook, self.batch_no),
                       channel_probe=probe, plugin_inspect=plugins, release_artifact=self.release_artifact,
                       recheck_all=self.saved, guard=guard)
        self.done[h.name] = r
        self.progress.done(h.name, r.ok, r.status.value)
        return r

    def _each(self, names: list[str], fn: Callable[[Host], HostResult]) -> dict[str, HostResult]:
        """fn on the named hosts in parallel; a host whose work raised gets a FAILED result saying why."""
        raw: dict[str, Any] = self.fleet.each([self.hosts[n] for n in names], fn)
        out = {}
        for n, r in raw.items():
            if isinstance(r, TransportError):
                # the host may have taken some files (each one whole, old or new) and not restarted yet: the
                # next plan shows which, and restarts what was left pending
                r = HostResult(n, HostStatus.FAILED, f"connection lost during apply: {r.detail}; the host may be on "
                               "its previous or its new files, each file whole; run plan to see")
            elif not isinstance(r, HostResult):
                r = HostResult(n, HostStatus.FAILED, f"{type(r).__name__}: {r}")
            out[n] = r
        return out

    def _add_untouched(self, result: RolloutResult) -> None:
        """Hosts the rollout had nothing to do on: unchanged, or unreachable when they could not be planned. A host
        the plan does not cover (a saved plan made with --limit) is not part of this run and gets no result."""
        for h in self.session.hosts:
            hp = self.planned.get(h.name)
            if hp is not None and h.name not in result.results:
                status = HostStatus.UNREACHABLE if hp.error else HostStatus.UNCHANGED
                result.results[h.name] = HostResult(h.name, status, hp.error or "no changes")

    @staticmethod
    def _become(h: Host) -> bool:
        return h.ssh.become and h.ssh.user != "root"
