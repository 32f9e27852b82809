"""Upgrades that can be undone: the state dirs go back with the old release.

Before a host switches OpenClaw version (a `current` change from one release to another), every instance that is
about to restart on the new one is backed up on the host by OpenClaw's own `backup create --verify`, run with the
OLD release as the instance's service user (remote/scripts/backups.py), into
`~<user>/.openclaw-provisioner/upgrades/<profile>.<stamp>/`. If the new release then fails its gate and the host
goes back to its previous files, the units are stopped, and each state dir is put back from that archive with the
old release's `backup restore` (remote/scripts/state_restore.py); what the new version made of it is moved aside
to `<state dir>.ocp-failed-<new version>-<stamp>`, never deleted. The newest `keep` (the install's `keep`)
snapshots per instance stay on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from provisioner.apply.results import Progress
from provisioner.core.changes import Action, Change, ChangeKind
from provisioner.inventory.model import Host, Instance
from provisioner.plan import ABSENT
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.backups import (
    HOST_DIR,
    NO_STATE,
    create_script,
    parse_created_all,
    prune_script,
    run_dir,
)
from provisioner.remote.scripts.openclaw_cli import split_outputs
from provisioner.remote.scripts.state_restore import RESTORED, restore_state_script
from provisioner.remote.transport import Transport

FAILED_SUFFIX = ".ocp-failed-"  # <state dir>.ocp-failed-<new version>-<stamp>: what the failed version left


@dataclass
class StateGuard:
    """One host's state snapshots around a version switch (built by the driver, used by the executor)."""

    host: Host
    prefix: str
    keep: int = 3
    become: bool = False
    old: str = ""  # the release the host ran before the switch
    new: str = ""
    stamp: str = ""
    archives: dict[str, str] = field(default_factory=dict)  # instance -> its snapshot's path on the host

    def switch(self, todo: list[Change]) -> tuple[str, str] | None:
        """(old, new) when this apply switches the host from one release to another."""
        link = next((c for c in todo if c.kind is ChangeKind.RELEASE_LINK), None)
        if link is None or not link.before or link.before == ABSENT or not link.after:
            return None
        return link.before, link.after

    def snapshot(self, t: Transport, todo: list[Change], units: list[str], say: Progress) -> str | None:
        """Back up the state of every instance about to restart on the new release; the failure, if any."""
        sw = self.switch(todo)
        # an instance whose state dir this apply creates has nothing to protect (and no user yet, on a new host)
        new_dirs = {c.target for c in todo if c.action is Action.CREATE}
        insts = [i for i in self.host.instances if i.unit in units and i.port and i.state_dir not in new_dirs]
        if sw is None or not insts:
            return None
        self.old, self.new = sw
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        root = transport_root(t)
        jobs = [(i, run_dir(i, self.stamp, "upgrades")) for i in insts]
        say(self.host.name, f"backing up the state of {', '.join(i.name for i in insts)} with OpenClaw {self.old} "
                            f"before switching to {self.new}")
        res = run_script(t, create_script(jobs, self._old_command(), root), become=self.become, timeout=1900)
        for (inst, d), c in zip(jobs, parse_created_all(res.text(), len(jobs)), strict=True):
            if c.error == NO_STATE:
                continue  # a new instance: nothing to protect
            if c.error:
                return f"backing up the state of {inst.name} before the switch to {self.new} failed: {c.error}"
            self.archives[inst.name] = f"{d}/{c.name}"
        run_script(t, prune_script(insts, self.keep, root), become=self.become)
        return None

    def restore(self, t: Transport, say: Progress) -> tuple[bool, str]:
        """Put every snapshotted state dir back (units already stopped); (all done, what to report)."""
        if not self.archives:
            return True, ""
        root = transport_root(t)
        insts = {i.name: i for i in self.host.instances}
        jobs = [(insts[n], a, insts[n].state_dir, self.aside(insts[n]),
                 f"{insts[n].service.home.rstrip('/')}/{HOST_DIR}/restore.{insts[n].profile}.{self.stamp}")
                for n, a in sorted(self.archives.items())]
        say(self.host.name, f"putting the state of {', '.join(sorted(self.archives))} back from before {self.new}")
        res = run_script(t, restore_state_script(jobs, self._old_command(), root), become=self.become, timeout=1900)
        outs = split_outputs(res.text(), len(jobs))
        bad = [j[0].name for j, o in zip(jobs, outs, strict=True) if RESTORED not in o.split()]
        if bad:
            return False, (f"state of {', '.join(bad)} NOT put back (still what {self.new} left): "
                           f"{res.err_text()[-300:]}")
        return True, (f"state of {', '.join(j[0].name for j in jobs)} put back from the backup before the switch; "
                      f"what {self.new} wrote is in {', '.join(j[3] for j in jobs)}")

    def aside(self, inst: Instance) -> str:
        return f"{inst.state_dir.rstrip('/')}{FAILED_SUFFIX}{self.new}-{self.stamp}"

    def _old_command(self) -> tuple[str, ...]:
        return (f"{self.prefix}/{self.old}/bin/openclaw",)

