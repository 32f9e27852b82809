"""Who holds a host lock and whether that run still lives; restarts an interrupted run left pending; the
probe records both. Pure code and real local processes, no hosts."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from provisioner.apply.locks import Liveness, controller_id, liveness, new_holder, parse_holder, refusal
from provisioner.core.changes import Action
from provisioner.core.desired import DesiredHost, DesiredService
from provisioner.core.observed import ObservedHost, ObservedService
from provisioner.core.policies import Manager
from provisioner.plan import plan_host
from provisioner.remote.connect import LockLost, held, run_script
from provisioner.remote.local import LocalTransport
from provisioner.remote.scripts.probe import PENDING_DIR, ProbeRequest, parse_probe, probe_script
from provisioner.remote.scripts.shell import sh_script


def test_a_holder_line_round_trips() -> None:
    h = parse_holder(new_holder())
    assert h.controller == socket.gethostname() and h.pid == os.getpid() and h.ctl == controller_id()
    assert h.run and len(h.run) == 12 and h.since is not None and abs(h.since - time.time()) < 5
    assert f"pid {os.getpid()} on {socket.gethostname()}" in h.describe()


def test_this_process_is_a_live_holder() -> None:
    assert liveness(parse_holder(new_holder())) is Liveness.LIVE


def test_a_finished_process_is_a_dead_holder() -> None:
    p = subprocess.Popen(["true"])
    p.wait()
    raw = new_holder().replace(f"pid={os.getpid()}", f"pid={p.pid}")
    assert liveness(parse_holder(raw)) is Liveness.DEAD
    assert "no longer alive" in refusal(raw) and "provision unlock" in refusal(raw)


def test_a_pid_reused_by_a_younger_process_is_not_the_holder() -> None:
    # the lock says it was taken long before this process started: this process cannot be its holder
    raw = new_holder().replace(f"at={int(time.time())}", f"at={int(time.time()) - 86400 * 400}")
    assert liveness(parse_holder(raw)) is Liveness.DEAD


@pytest.mark.parametrize("raw", [
    "other-controller pid=1 run=abc at=1",  # another machine: its pids mean nothing here
    f"{socket.gethostname()} pid=1 run=abc at=1 ctl=000000000000",  # same hostname, another container
    f"{socket.gethostname()} pid=1 run=abc at=1",  # written without a controller id
    "garbage",
    "",
])
def test_a_holder_this_controller_cannot_check_is_never_called_dead(raw: str) -> None:
    assert liveness(parse_holder(raw)) is Liveness.UNKNOWN
    assert "--force" in refusal(raw)


def _host(active: str = "active") -> tuple[DesiredHost, ObservedHost]:
    svc = DesiredService("h", "main", "gw-main.service", Manager.SYSTEMD, "oc", 18789, ())
    desired = DesiredHost("h", "oc", "/home/oc", (), (), (svc,))
    observed = ObservedHost("h", services={"gw-main.service": ObservedService(
        "gw-main.service", "loaded", active, "enabled")})
    return desired, observed


def test_a_restart_left_pending_by_an_interrupted_run_is_planned() -> None:
    desired, observed = _host()
    assert plan_host(desired, observed).changes == ()
    observed = ObservedHost(observed.name, services=observed.services, pending_restart=("gw-main.service",))
    (c,) = plan_host(desired, observed).changes
    assert c.action is Action.RESTART and "cut off before restarting" in c.reason


def test_the_probe_reports_pending_restarts_and_the_lock() -> None:
    req = ProbeRequest(units=("gw-main.service",))
    assert f"{PENDING_DIR}/*.service" in probe_script(req)
    out = "M gw-main.service\nR gw-main.service\nL ctl pid=1 run=x at=2\nEND\n"
    obs = parse_probe("h", req, out)
    assert obs.pending_restart == ("gw-main.service",) and obs.lock_holder == "ctl pid=1 run=x at=2"


# The fence: every script a run sends while it holds the lock runs only while the lock is still that run's.
# Real sh and flock on a stand-in host (a directory standing for /).

def _stand_in(tmp_path: Path, lock_line: str | None) -> LocalTransport:
    from provisioner.remote.scripts.probe import LOCK_PATH

    root = tmp_path / "host"
    (root / LOCK_PATH.lstrip("/")).parent.mkdir(parents=True)
    if lock_line is not None:
        (root / LOCK_PATH.lstrip("/")).write_text(lock_line + "\n")
    return LocalTransport("h1", str(root))


def _body(t: LocalTransport) -> str:
    return sh_script([f"touch -- {t.root}/ran", "echo DONE"])


def test_a_script_under_the_lock_runs_while_the_lock_is_this_runs(tmp_path: Path) -> None:
    me = new_holder()
    t = _stand_in(tmp_path, me)
    res = run_script(held(t, me), _body(t))
    assert res.ok and res.text().strip() == "DONE" and (tmp_path / "host" / "ran").exists()


@pytest.mark.parametrize("lock_line", ["other pid=1 run=aaaaaaaaaaaa at=1 ctl=000000000000", None, ""])
def test_a_script_under_a_lock_taken_over_or_cleared_changes_nothing(tmp_path: Path, lock_line: str | None) -> None:
    t = _stand_in(tmp_path, lock_line)
    with pytest.raises(LockLost, match="no longer holds the host lock"):
        run_script(held(t, new_holder()), _body(t))
    assert not (tmp_path / "host" / "ran").exists()


def test_the_fence_holds_the_busy_lock_for_the_whole_script(tmp_path: Path) -> None:
    # a takeover (clear_lock_script) waits on the busy flock: it must not get it while a fenced script runs,
    # even when that script takes the busy lock again itself (write_script does)
    from provisioner.remote.scripts.writes import BUSY_PATH, busy_lines

    me = new_holder()
    t = _stand_in(tmp_path, me)
    busy = tmp_path / "host" / BUSY_PATH.lstrip("/")
    probe = f"if flock -n {busy}.first true; then echo FREE; else echo HELD; fi"
    # the first busy file is moved aside: taking the lock again by reopening fd 8 would let go of it
    res = run_script(held(t, me), sh_script([f"mv {busy} {busy}.first; : > {busy}", probe, *busy_lines(), probe]))
    assert res.text().split() == ["HELD", "HELD"], res.text()
    assert subprocess.run(["flock", "-n", f"{busy}.first", "true"]).returncode == 0  # it ends with the script


def test_a_script_without_the_lock_is_sent_as_it_is(tmp_path: Path) -> None:
    t = _stand_in(tmp_path, None)
    assert run_script(t, _body(t)).ok and (tmp_path / "host" / "ran").exists()


def test_a_user_side_sub_script_gets_no_busy_lock_descriptor(tmp_path: Path) -> None:
    from provisioner.remote.scripts.trust import HELPERS, as_user

    me = new_holder()
    t = _stand_in(tmp_path, me)
    res = run_script(held(t, me), sh_script([HELPERS, "ls /proc/self/fd > /dev/null",  # root side: fd 8 open
                                             "[ -e /proc/self/fd/8 ] && echo ROOT8",
                                             *as_user("u", "g", ["if [ -e /proc/self/fd/8 ]; then echo USER8; "
                                                                 "else echo NO8; fi"], t.root)]))
    assert res.ok, res.err_text()
    assert "ROOT8" in res.text() and "NO8" in res.text() and "USER8" not in res.text(), res.text()


def test_a_listener_whose_process_is_gone_by_the_time_it_is_looked_up_holds_no_port(tmp_path: Path) -> None:
    # ss lists a gateway's old process; it exits (a restart) before its cgroup is read: its port is free now
    gone = subprocess.Popen(["true"])
    gone.wait()
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ss").write_text("#!/bin/sh\ncat <<'EOF'\n"
                             f'LISTEN 0 511 127.0.0.1:18789 0.0.0.0:* users:(("node",pid={gone.pid},fd=21))\n'
                             f'LISTEN 0 511 127.0.0.1:18791 0.0.0.0:* users:(("python3",pid={os.getpid()},fd=3))\n'
                             "EOF\n")
    (fake / "ss").chmod(0o755)
    req = ProbeRequest(systemd=False, unit_dirs=(), listeners=True)
    r = subprocess.run(["/bin/sh", "-s"], input=probe_script(req), capture_output=True, text=True, timeout=30,
                       env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"})
    ports = {lst.port: lst for lst in parse_probe("h1", req, r.stdout).listeners}
    assert set(ports) == {18791}, r.stdout
    comm = Path("/proc/self/comm").read_text().strip()
    assert ports[18791].pid == os.getpid() and ports[18791].command == comm


def test_a_host_another_live_run_is_changing_says_so_before_its_problems() -> None:
    from provisioner.apply.planning import with_problems
    from provisioner.core.changes import HostPlan

    plain = with_problems(HostPlan("h1", ()), 1)
    assert plain.error == "1 problem(s) on the host would break the apply (see above)"
    busy = with_problems(HostPlan("h1", (), locked_by=new_holder()), 2)
    assert busy.error is not None and busy.error.startswith("host is locked by another run that is still going (")
    assert busy.error.endswith("; 2 problem(s) on the host would break the apply (see above)")
    dead = subprocess.Popen(["true"])
    dead.wait()
    dead_holder = new_holder().replace(f"pid={os.getpid()}", f"pid={dead.pid}")
    stale = with_problems(HostPlan("h1", (), locked_by=dead_holder), 1)
    assert stale.error == plain.error  # a dead run changes nothing any more: the problems are the host's own
    assert with_problems(HostPlan("h1", ()), 0).error is None
    assert with_problems(HostPlan("h1", (), error="unreachable"), 3).error == "unreachable"
