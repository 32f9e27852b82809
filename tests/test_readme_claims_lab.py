"""README claims that need a real host: who holds a lock (plan, unlock, --force), the second Ctrl-C, a corrupt
release tarball refused by the host, and releases beyond `keep` pruned on the host.

Two systemd lab hosts shared by the module, with the stand-in gateway (tests/support/standin-openclaw); the
release tests push a small stand-in release from a controller cache of their own (OCP_OPENCLAW_CACHE), never
the shared one. Every wait is for an event (a file on the host, a line the CLI printed), never a sleep.
"""

from __future__ import annotations

import hashlib
import io
import platform
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.apply.locks import controller_id
from provisioner.remote.scripts.probe import LOCK_PATH, STATE_DIR
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, STANDIN, STANDIN_PATH, install_standin, readyz
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]

VERSION, NODE = "2026.9.6", "24.21.0"


@pytest.fixture(scope="module")
def fleet(lab: Lab) -> Iterator[dict[str, LabHost]]:
    hosts = lab.add_hosts("systemd", 2)
    try:
        for h in hosts:
            install_standin(h)
        yield {"gw-1": hosts[0], "gw-2": hosts[1]}
    finally:
        for h in hosts:
            lab.remove_host(h)


@pytest.fixture()
def provision(lab: Lab, tmp_path: Path) -> Provision:
    return Provision(tmp_path, lab=lab, env=LAB_ENV, timeout=120, forbid_traceback=True)


def inventory(hosts: list[str], *, env: dict[str, str] | None = None, install: dict[str, Any] | None = None,
              timeout: float = 20) -> dict[str, Any]:
    main: dict[str, Any] = {"port": 18789}
    if env:
        main["env"] = env
    openclaw: dict[str, Any] = {"version": VERSION, "command": [STANDIN_PATH]}
    if install:
        openclaw["install"] = install
    return {"version": 1, "openclaw": openclaw,
            "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                         "instance": {"health": {"timeout": timeout}}},
            "hosts": {h: {"instances": {"main": main}} for h in hosts}}


# --- locks: plan shows the holder; unlock clears another controller's or a live run's only with --force ------

def test_plan_names_each_lock_holder_and_unlock_clears_them_only_with_force(
        fleet: dict[str, LabHost], provision: Provision, inventory_writer: Callable[..., Path]) -> None:
    g1, g2 = fleet["gw-1"], fleet["gw-2"]
    inv = str(inventory_writer(inventory(list(fleet)), fleet))
    foreign = f"build-box-7 pid=4242 run=feedc0ffee12 at={int(time.time()) - 600} ctl=0123456789ab"
    alive = subprocess.Popen(["sleep", "600"])  # a live run of this very controller holds gw-2
    try:
        live = (f"{socket.gethostname()} pid={alive.pid} run=a11ve0000001 at={int(time.time()) + 1} "
                f"ctl={controller_id()}")
        for host, line in ((g1, foreign), (g2, live)):
            host.run(["install", "-d", "-m", "0755", STATE_DIR])
            host.write_file(LOCK_PATH, line + "\n", mode=0o644)

        r = provision("plan", inv)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "run feedc0ffee12 of pid 4242 on build-box-7, taken 10 min ago" in r.stdout
        assert "from a controller this one cannot check" in r.stdout
        assert f"run a11ve0000001 of pid {alive.pid} on {socket.gethostname()}" in r.stdout
        assert "still going" in r.stdout

        r = provision("apply", inv, "--yes")
        assert r.returncode == 1 and "refused" in r.stdout, r.stdout + r.stderr
        assert not g1.exists("/etc/systemd/system/openclaw-gateway-main.service")

        r = provision("unlock", inv)
        assert r.returncode == 1, r.stdout + r.stderr
        out = r.stdout + r.stderr
        assert "gw-1: held by run feedc0ffee12" in out and "(--force clears it)" in out
        assert "gw-2: held by a run that is still alive" in out and "not cleared" in out
        assert g1.read_file(LOCK_PATH).decode().strip() == foreign
        assert g2.read_file(LOCK_PATH).decode().strip() == live

        r = provision("unlock", inv, "--force")
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout + r.stderr
        assert "gw-1: cleared the lock of run feedc0ffee12" in out and "(forced)" in out
        assert "gw-2: cleared the lock of run a11ve0000001" in out and "(forced; its run is still alive)" in out
        assert not g1.exists(LOCK_PATH) and not g2.exists(LOCK_PATH)
        assert alive.poll() is None  # --force clears the lock; it never signals the holder
    finally:
        alive.kill()
        alive.wait()
        for host in (g1, g2):  # a failure above must not leave the next tests a locked host
            host.run(["rm", "-f", "--", LOCK_PATH])


# --- Ctrl-C: the first lets the hosts in flight finish, the second exits at once -----------------------------

class Lines:
    """A pipe read line by line in a thread, so that a test can wait for what the CLI printed."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        with self.changed:
            ok = self.changed.wait_for(lambda: any(text in line for line in self.lines), timeout)
        assert ok, f"the CLI never printed {text!r}:\n" + "".join(self.lines)

    def index(self, text: str) -> int:
        with self.changed:
            return next(i for i, line in enumerate(self.lines) if text in line)

    def text(self) -> str:
        self.thread.join(timeout=10)
        return "".join(self.lines)


def test_a_second_ctrl_c_exits_at_once_leaving_a_lock_the_next_unlock_clears(
        fleet: dict[str, LabHost], provision: Provision, inventory_writer: Callable[..., Path]) -> None:
    g1 = fleet["gw-1"]
    # main never gets ready: without the second Ctrl-C, the host in flight waits its 120 s gate out. ops gets
    # ready 5 s after its start: its "ops ready" line, printed after the first Ctrl-C's, is the event that
    # says the first interrupt's handler is done. (A second SIGINT landing while that handler still holds the
    # progress display's lock used to deadlock; tests/test_driver.py covers that case.)
    doc = inventory(["gw-1"], env={"STANDIN_READY": "no"}, timeout=120)
    doc["hosts"]["gw-1"]["instances"]["ops"] = {"port": 19789, "env": {"STANDIN_READY_AFTER": "5"}}
    inv = str(inventory_writer(doc, {"gw-1": g1}))
    proc = provision.start("apply", inv, "--yes")
    err, out = Lines(proc.stderr), Lines(proc.stdout)
    try:
        wait_for(lambda: g1.exists(LOCK_PATH) or proc.poll() is not None, "the apply to take the host lock", timeout=60)
        assert proc.poll() is None, out.text() + err.text()
        proc.send_signal(signal.SIGINT)
        err.wait_for("interrupted: finishing the hosts in flight", timeout=30)
        err.wait_for("gw-1: ops ready", timeout=60)
        assert err.index("gw-1: ops ready") > err.index("interrupted: finishing"), err.text()
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        took = time.monotonic() - start
        stderr = err.text()
        assert rc == 130, stderr
        assert took < 10, f"the second Ctrl-C took {took:.1f} s"
        assert "second interrupt: stopping now" in stderr and "keep each file whole" in stderr
        assert g1.exists(LOCK_PATH), "a run stopped at once keeps its host lock"
        # the run is dead: unlock needs no --force for a lock of this controller's killed run
        r = provision("unlock", inv)
        assert r.returncode == 0 and "its run is dead" in r.stdout + r.stderr, r.stdout + r.stderr
        assert not g1.exists(LOCK_PATH)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        g1.run(["rm", "-f", "--", LOCK_PATH])  # a failure above must not leave the next tests a locked host


# --- releases: the host verifies the pushed tarball; releases beyond keep are pruned on the host --------------

def _tarball(openclaw: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("./bin/openclaw")
        info.size, info.mode = len(openclaw), 0o755
        tar.addfile(info, io.BytesIO(openclaw))
    return buf.getvalue()


def standin_release(cache: Path, *, corrupt: bool = False) -> Path:
    """A release in a controller cache of the test's own: bin/openclaw is the stand-in gateway. `corrupt`: the
    cached tarball is not the one whose checksum was recorded (here a whole, well-formed tarball with one byte
    more in bin/openclaw, so that only the checksum can tell: unpacking it would work)."""
    good = _tarball(STANDIN.read_bytes())
    name = f"openclaw-{VERSION}-node-{NODE}-{platform.machine()}.tar.gz"
    art = cache / "artifacts" / name
    art.parent.mkdir(parents=True, exist_ok=True)
    art.with_name(name + ".sha256").write_text(f"{hashlib.sha256(good).hexdigest()}  {name}\n")
    art.write_bytes(_tarball(STANDIN.read_bytes() + b"\n") if corrupt else good)
    return art


def test_the_host_refuses_a_corrupt_release_tarball_and_installs_nothing(
        fleet: dict[str, LabHost], provision: Provision, inventory_writer: Callable[..., Path],
        tmp_path: Path) -> None:
    g2, prefix = fleet["gw-2"], "/opt/ocj-corrupt"
    cache = tmp_path / "cache"
    standin_release(cache, corrupt=True)
    doc = inventory(["gw-2"], install={"source": "push", "prefix": prefix, "keep": 2, "node_version": NODE})
    inv = str(inventory_writer(doc, {"gw-2": g2}))
    r = provision("apply", inv, "--yes", env={"OCP_OPENCLAW_CACHE": str(cache)})
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "checksum mismatch" in out and f"installing OpenClaw {VERSION} failed" in out
    assert g2.run(["find", prefix, "-mindepth", "1"], check=False).stdout.strip() == ""  # no release, no leftover
    assert not g2.exists("/etc/systemd/system/openclaw-gateway-main.service")  # nothing refers to it
    assert g2.run(["find", f"{STATE_DIR}/incoming", "-type", "f"], check=False).stdout.strip() == ""
    # the control: the same push with an intact tarball installs
    standin_release(cache)
    r = provision("apply", inv, "--yes", env={"OCP_OPENCLAW_CACHE": str(cache)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert g2.exists(f"{prefix}/{VERSION}/bin/openclaw")


def test_releases_beyond_keep_are_pruned_on_the_host(
        fleet: dict[str, LabHost], provision: Provision, inventory_writer: Callable[..., Path],
        tmp_path: Path) -> None:
    g1, prefix = fleet["gw-1"], "/opt/ocj-prune"
    old = ["2026.9.1", "2026.9.2", "2026.9.3"]
    for v in old:
        g1.write_file(f"{prefix}/{v}/.ocp-release", f"openclaw={v} node={NODE}\n")
        g1.write_file(f"{prefix}/{v}/bin/openclaw", STANDIN.read_bytes(), mode=0o755)
    g1.run(["ln", "-sfn", old[-1], f"{prefix}/current"])
    cache = tmp_path / "cache"
    standin_release(cache)
    doc = inventory(["gw-1"], install={"source": "push", "prefix": prefix, "keep": 2, "node_version": NODE})
    inv = str(inventory_writer(doc, {"gw-1": g1}))
    env = {"OCP_OPENCLAW_CACHE": str(cache)}
    r = provision("plan", inv, env=env)
    assert f"{prefix}/2026.9.1" in r.stdout and f"{prefix}/2026.9.2" in r.stdout and "prune: keep 2" in r.stdout
    r = provision("apply", inv, "--yes", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(g1.run(["ls", prefix]).stdout.split()) == ["2026.9.3", VERSION, "current"]
    assert g1.run(["readlink", f"{prefix}/current"]).stdout.strip() == VERSION
    assert readyz(g1, 18789) == "200"
    r = provision("plan", inv, "--detailed-exitcode", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
