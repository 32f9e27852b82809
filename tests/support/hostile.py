"""Helpers for the service-user attack tests (tests/test_hostile_user_lab.py): the real CLI with hard time
limits, snapshots of what the attacker must not be able to change (taken inside a host, as root), and a
background loop that swaps paths in the service user's tree, as that user, while `apply` runs."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisioner.remote.scripts.probe import LOCK_PATH
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import cli_argv, cli_env
from tests.support.waiting import wait_for

USER = "openclaw"
HOME = f"/home/{USER}"
LOCK = LOCK_PATH


@dataclass
class Run:
    args: tuple[str, ...]
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def tail(self, n: int = 3000) -> str:
        return (f"`provision {' '.join(self.args)}` exit {self.rc} after {self.seconds:.1f} s\n--- stdout:\n"
                f"{self.out[-n:]}\n--- stderr:\n{self.err[-n:]}")

    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except ValueError:
            pytest.fail(f"not one JSON document on stdout:\n{self.tail()}")

    def line_with(self, *words: str) -> str | None:
        """The first output line holding every word (case-insensitive)."""
        low = [w.lower() for w in words]
        return next((ln for ln in self.text.splitlines() if all(w in ln.lower() for w in low)), None)


class Cli:
    """The real CLI from the lab's client namespace. Every call has a hard time limit: a hang fails the test
    (the process is killed) instead of blocking the run. Every output is kept for scanning."""

    def __init__(self, lab: Lab, cwd: Path, env: Mapping[str, str]) -> None:
        self.lab, self.cwd = lab, cwd
        self.env = {"NO_COLOR": "1", "XDG_CACHE_HOME": str(cwd / "cache"), **env}
        self.outputs: list[str] = []

    def __call__(self, *args: str, timeout: float = 60, env: Mapping[str, str] | None = None) -> Run:
        began = time.monotonic()
        try:
            r = subprocess.run(self.lab.client_argv(cli_argv(*args)), cwd=self.cwd, env=cli_env({**self.env, **(
                env or {})}), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            pytest.fail(f"`provision {' '.join(args)}` did not finish within {timeout:.0f} s (killed); "
                        f"stdout so far:\n{out[-2000:]}")
        run = Run(tuple(args), r.returncode, r.stdout, r.stderr, time.monotonic() - began)
        self.outputs += [r.stdout, r.stderr]
        assert "Traceback (most recent call last)" not in r.stderr, run.tail()
        return run


# ---- what must not change ----------------------------------------------------------------------------------

SNAPSHOT = r"""
import hashlib, json, os, stat, sys
req = json.load(sys.stdin)
KINDS = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "link", stat.S_IFIFO: "fifo"}
def digest(p):
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
def entry(p, strict, big=1 << 62):
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    e = {"kind": KINDS.get(stat.S_IFMT(st.st_mode), "other"), "uid": st.st_uid, "gid": st.st_gid,
         "mode": "%04o" % (st.st_mode & 0o7777)}
    if e["kind"] == "file":
        e["sha256"] = digest(p) if st.st_size <= big else "size %d" % st.st_size
    elif e["kind"] == "link":
        e["to"] = os.readlink(p)
    if strict:
        e["mtime_ns"] = st.st_mtime_ns
    return e
out = {"victims": {}, "tree": {}, "units": {}}
for p, strict in req["victims"]:
    e = out["victims"][p] = entry(p, strict)
    if e and e["kind"] == "dir":
        e["entries"] = {n: entry(os.path.join(p, n), strict) for n in sorted(os.listdir(p))}
skip = tuple(req["skip"])
for top in req["trees"]:
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if os.path.join(d, x) not in skip]
        for n in dirs + files:
            p = os.path.join(d, n)
            if p not in skip:
                out["tree"][p] = entry(p, False, 64 << 20)
for u in req["units"]:
    import subprocess
    r = subprocess.run(["systemctl", "show", "-p", "InvocationID", "--value", u], capture_output=True, text=True)
    out["units"][u] = r.stdout.strip()
print(json.dumps(out))
"""


@dataclass
class Victims:
    """Paths outside the user's files (owner, mode, bytes; directories one level down) and, `strict`, their
    mtimes too: a file created and removed again inside a victim directory still shows."""

    loose: Sequence[str]
    strict: Sequence[str]

    def snapshot(self, host: LabHost) -> dict[str, Any]:
        req = {"victims": [[p, False] for p in self.loose] + [[p, True] for p in self.strict], "trees": [],
               "skip": [], "units": []}
        r = host.run(["python3", "-c", SNAPSHOT], input=json.dumps(req))
        snap: dict[str, Any] = json.loads(r.stdout)["victims"]
        return snap


def host_state(host: LabHost, *, skip: Iterable[str] = (), units: Iterable[str] = ()) -> dict[str, Any]:
    """Every entry of the user's home (but `skip` and what is below it), the gateway units' files and the
    InvocationID of `units`: what a refused apply must leave exactly as it was."""
    units = list(units)
    req = {"victims": [], "trees": [HOME], "skip": list(skip), "units": units}
    r = host.run(["python3", "-c", SNAPSHOT], input=json.dumps(req))
    snap = json.loads(r.stdout)
    files = host.run("sha256sum /etc/systemd/system/openclaw-gateway-* 2>/dev/null; true")
    return {"home": snap["tree"], "unit_files": files.stdout, "invocations": snap["units"]}


def diff_state(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    out = []
    for part in before:
        b, a = before[part], after[part]
        if isinstance(b, dict):
            out += [f"{part}: {k}: {b.get(k)} -> {a.get(k)}" for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k)]
        elif b != a:
            out.append(f"{part}: {b!r} -> {a!r}")
    return out


def kind(host: LabHost, path: str) -> tuple[str, str, str, int]:
    """(what stat calls it, owner, octal mode, link count) of a path, not following a link."""
    r = host.run(["stat", "-c", "%F|%U|%a|%h", "--", path])
    f, owner, mode, links = r.stdout.strip().split("|")
    return f, owner, mode, int(links)


def pwned(host: LabHost, tag: str) -> list[str]:
    """Every file a payload of this run would have made, anywhere on the host (tmpfs /tmp and /run included)."""
    script = 'find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name "$1" -print; true'
    return sorted(p for p in host.run(["sh", "-c", script, "-", f"pwned-{tag}*"]).stdout.split("\n") if p)


# ---- a swap loop, as the user --------------------------------------------------------------------------------

SWAP = r"""
import ctypes, json, os, sys, time
a = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
missed = 0
def exchange(x, y):  # renameat2(RENAME_EXCHANGE): both names swap what they hold, in one step
    global missed
    if libc.renameat2(-100, x.encode(), -100, y.encode(), 2) != 0:
        missed += 1  # a name is gone for a moment (the tool renames too): try again next time
with open(a["pidfile"], "w") as f:
    f.write(str(os.getpid()))
end = time.time() + a["deadline"]
flips = 0
if a["wait"]:
    while not (os.path.lexists(a["lock"]) or os.path.exists(a["go"]) or os.path.exists(a["stop"])):
        if time.time() > end:
            break
        time.sleep(0.0003)
started = time.time()
while not os.path.exists(a["stop"]) and time.time() < end:
    for x, y in a["pairs"]:
        exchange(x, y)
    time.sleep(a["hold"])
    for x, y in a["pairs"]:  # always in pairs: when it stops, every name holds what it held at the start
        exchange(x, y)
    flips += 1
    time.sleep(a["rest"])
print(json.dumps({"flips": flips, "missed": missed, "waited": a["wait"], "ran_s": round(time.time() - started, 3)}))
"""


@dataclass
class SwapLoop:
    """Runs SWAP on `host` as the service user: each pair of paths is exchanged for `hold` seconds, then back for
    `rest` seconds, over and over. With wait=True it starts only once the host lock exists (or the test says go,
    for a lock the user cannot see). Stopped by a file it polls, a deadline, and at worst by its own PID."""

    host: LabHost
    pairs: Sequence[tuple[str, str]]
    tag: str
    wait: bool = False
    hold: float = 0.003
    rest: float = 0.004
    result: dict[str, Any] = field(default_factory=dict)

    def _files(self) -> dict[str, str]:
        return {k: f"/tmp/ocb-swap-{self.tag}.{k}" for k in ("pidfile", "go", "stop")}

    @contextmanager
    def running(self) -> Iterator[SwapLoop]:
        f = self._files()
        self.host.run(["rm", "-f", *f.values()])
        arg = json.dumps({**f, "pairs": self.pairs, "wait": self.wait, "lock": LOCK, "hold": self.hold,
                          "rest": self.rest, "deadline": 240})
        proc = subprocess.Popen(self.host.nsenter_argv(["python3", "-c", SWAP, arg], user=USER),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watcher_stop = threading.Event()
        watcher = threading.Thread(target=self._watch_lock, args=(watcher_stop,), daemon=True)
        try:
            end = time.monotonic() + 20
            while not self.host.exists(f["pidfile"]):
                assert proc.poll() is None and time.monotonic() < end, f"swap loop did not start: {proc.stderr}"
                time.sleep(0.05)
            if self.wait:
                watcher.start()
            yield self
        finally:
            watcher_stop.set()
            self.host.run(["touch", f["stop"]])
            try:
                out, err = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                pid = self.host.run(["cat", f["pidfile"]], check=False).stdout.strip()
                if pid.isdigit():
                    self.host.run(["kill", "-9", pid], check=False)
                out, err = proc.communicate(timeout=15)
            self.result = json.loads(out) if out.strip() else {"error": err[-2000:]}
            self.host.run(["rm", "-f", *f.values()])

    def settle(self, targets: Mapping[str, str]) -> None:
        """Put each pair back as it started (the first name the real thing, the second a link to targets[second]):
        a swap that missed (the tool renamed a name away for a moment) or a write that replaced the link at the
        first name leaves them otherwise. Done as the user, as the attacker would."""
        script = ("import ctypes, json, os, shutil, sys\n"
                  "libc = ctypes.CDLL(None, use_errno=True)\n"
                  "for x, y, to in json.loads(sys.argv[1]):\n"
                  "    if os.path.islink(x) and not os.path.islink(y):\n"
                  "        libc.renameat2(-100, x.encode(), -100, y.encode(), 2)\n"
                  "    if not os.path.islink(y):\n"
                  "        shutil.rmtree(y) if os.path.isdir(y) else os.unlink(y)\n"
                  "        os.symlink(to, y)\n")
        self.host.run(["python3", "-c", script, json.dumps([[x, y, targets[y]] for x, y in self.pairs])], user=USER)

    def _watch_lock(self, stop: threading.Event) -> None:
        """The lock as root sees it, from the host's overlay upper dir (instant, whatever the dir's mode)."""
        seen = self.host.dir / "upper" / LOCK.lstrip("/")
        while not stop.is_set():
            if os.path.lexists(seen):
                self.host.run(["touch", self._files()["go"]], check=False)
                return
            time.sleep(0.001)


def sysctl(name: str, value: str | None = None) -> str:
    """Read (and, with `value`, set) a machine-wide sysctl; returns the value before."""
    p = Path("/proc/sys") / name.replace(".", "/")
    old = p.read_text().strip()
    if value is not None:
        p.write_text(value + "\n")
    return old


def free_kb(host: LabHost, path: str) -> int:
    return int(host.run(["df", "-Pk", path]).stdout.splitlines()[1].split()[3])


def restart_and_wait(host: LabHost, unit: str) -> None:
    """Restart `unit` as a crash or a reboot would, and wait until that start is over: its main process ran and
    exited (systemd waits to restart it, or gave up), or it is running (then the test looks at it)."""
    def ended() -> bool:
        props = dict(ln.split("=", 1) for ln in host.run(
            ["systemctl", "show", "-p", "InvocationID,SubState,MainPID", unit]).stdout.splitlines())
        return props["InvocationID"] != before and (
            props["SubState"] in ("auto-restart", "failed", "dead") or props["MainPID"] != "0")

    before = host.run(["systemctl", "show", "-p", "InvocationID", "--value", unit]).stdout.strip()
    host.run(["systemctl", "restart", unit])
    wait_for(ended, what=f"{unit} to start again")


def user_processes_holding(host: LabHost, needle: str) -> list[str]:
    """PIDs of the service user's processes whose environment holds `needle` (read as root)."""
    out = host.run(["sh", "-c", 'for p in $(pgrep -u "$1"); do grep -qaF -- "$2" /proc/$p/environ 2>/dev/null '
                    '&& echo "$p $(tr "\\0" " " < /proc/$p/cmdline)"; done; true', "-", USER, needle]).stdout
    return out.splitlines()
