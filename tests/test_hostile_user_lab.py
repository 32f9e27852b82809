"""Issue 12's acceptance: the gateway's service user is hostile. Each test attacks AS that user (`openclaw`,
made by the tool's first apply) on a lab host booted with real systemd, then runs the real CLI as root's
operator would (`plan`, `apply --yes`, `status`, `unlock`, `dedupe verify`), and checks:

(a) nothing outside the user's own files changed: owner, mode and bytes (and, for the victim directories, the
    mtime: a file made and removed again still shows) of /srv/victim, /etc/passwd, /etc/shadow, /root,
    /etc/cron.d, /etc/sudoers.d ...;
(b) the tool did the right thing, or failed that host naming the path and what it found; it never reports
    success while refusing (exit 0 only when it really applied, then the file is what `render` makes);
(c) every command ends within a hard time limit (a hang fails the test).

The gateway is the stand-in (tests/support/standin-openclaw). One fleet per module; every test puts the host
back on the baseline inventory when it ends.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.hostile import (
    HOME,
    LOCK,
    USER,
    Cli,
    Run,
    SwapLoop,
    Victims,
    diff_state,
    free_kb,
    host_state,
    kind,
    pwned,
    restart_and_wait,
    sysctl,
    user_processes_holding,
)
from tests.support.lab_cli import STANDIN_PATH, install_standin

pytestmark = pytest.mark.lab

TAG = uuid.uuid4().hex[:8]
VICTIM, VICTIM_FILE, ROOT_FILE = "/srv/victim", "/srv/victim.file", f"/root/ocb-{TAG}.env"
MAIN, RESCUE = f"{HOME}/.openclaw-main", f"{HOME}/.openclaw-rescue"
CONFIG, ENV = f"{MAIN}/openclaw.json", f"{RESCUE}/gateway.env"
TOKEN = f"tok-{TAG}"
ROOT_SECRET = f"rootsecret-{TAG}"  # in ROOT_FILE (root 0600): no output may ever show it, nor a line of /etc/shadow
VICTIMS = Victims(loose=["/etc/passwd", "/etc/shadow", "/root", ROOT_FILE],
                  strict=[VICTIM, VICTIM_FILE, "/etc/cron.d", "/etc/sudoers.d"])
UNITS = ["openclaw-gateway-main.service", "openclaw-gateway-rescue.service"]
LINK, FIFO, DIRECTORY = "symbolic link", "fifo", "directory"


@dataclass
class Fleet:
    lab: Lab
    gw: LabHost
    gw2: LabHost
    cli: Cli
    dir: Path
    base: str = ""
    cleanups: list[str] = field(default_factory=list)  # root shell lines on gw that undo a test's attack
    n: int = 0

    def doc(self) -> dict[str, Any]:
        return {"version": 1, "openclaw": {"version": "2026.9.6", "command": [STANDIN_PATH]},
                "defaults": {"ssh": self.gw.ssh_settings(), "service": {"manager": "systemd", "user": USER},
                             "instance": {"health": {"timeout": 20}}},
                "hosts": {"gw": {"address": self.gw.address, "instances": {
                    "main": {"port": 18789, "config": {"logging": {"level": "info"}}},
                    "rescue": {"port": 19789, "config": {"gateway": {"auth": {"mode": "token"}}},
                               "secrets": {"OPENCLAW_GATEWAY_TOKEN": {"env": "OCB_TOKEN"}}}}}}}

    def write(self, doc: dict[str, Any]) -> str:
        self.n += 1
        path = self.dir / f"inv-{self.n}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return str(path)

    def changed(self, prefix: str = "changed", **instances: dict[str, Any]) -> str:
        """The baseline with main's config changed (so the tool wants to write CONFIG) and extra instances."""
        doc = self.doc()
        insts = doc["hosts"]["gw"]["instances"]
        insts["main"]["config"]["messages"] = {"responsePrefix": f"{prefix}-{TAG}"}
        insts.update(instances)
        return self.write(doc)

    def as_user(self, script: str, host: LabHost | None = None) -> None:
        (host or self.gw).run(script, user=USER)

    def rendered(self, inv: str, path: str, token: str = TOKEN) -> bytes:
        self.n += 1
        out = self.dir / f"rendered-{self.n}"
        r = self.cli("render", inv, "--out", str(out), "--with-secrets", env={"OCB_TOKEN": token})
        assert r.rc == 0, r.tail()
        return (out / "gw" / path.lstrip("/")).read_bytes()


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    hosts = lab.add_hosts("systemd", 2)
    try:
        for h in hosts:
            install_standin(h)
            h.run(f"install -d -m 0755 -o root -g root {VICTIM} && printf 'victim\\n' > {VICTIM_FILE} && "
                  f"chmod 0644 {VICTIM_FILE} && printf 'ROOT_ONLY={ROOT_SECRET}\\n' > {ROOT_FILE} && "
                  f"chmod 0600 {ROOT_FILE}")
        d = tmp_path_factory.mktemp("hostile")
        f = Fleet(lab, hosts[0], hosts[1], Cli(lab, d, {"OCB_TOKEN": TOKEN}), d)
        f.base = f.write(f.doc())
        r = f.cli("apply", f.base, "--yes", timeout=180)
        assert r.rc == 0, r.tail()
        assert kind(f.gw, CONFIG)[:2] == ("regular file", USER)
        yield f
    finally:
        for h in hosts:
            lab.remove_host(h)


@pytest.fixture()
def fl(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet for one attack; afterwards the attack is undone (as root) and the baseline applied again."""
    fleet.cleanups = []
    yield fleet
    for line in fleet.cleanups:
        fleet.gw.run(line)
    r = fleet.cli("apply", fleet.base, "--yes", timeout=120)
    assert r.rc == 0, f"could not put the host back on the baseline:\n{r.tail()}"


def changed_victims(host: LabHost, before: dict[str, Any]) -> list[str]:
    after = VICTIMS.snapshot(host)
    return [f"{p} changed:\n  before {before[p]}\n  after  {after[p]}" for p in before if before[p] != after[p]]


def unchanged(host: LabHost, before: dict[str, Any]) -> None:
    bad = changed_victims(host, before)
    assert not bad, "paths outside the user's files changed:\n" + "\n".join(bad)


def host_result(r: Run, host: str = "gw") -> dict[str, Any]:
    doc = r.json()
    res: dict[str, Any] = next(h for h in doc["hosts"] if h["host"] == host)
    assert doc["ok"] is (r.rc == 0), f"exit {r.rc} but ok={doc['ok']}:\n{r.tail()}"
    return res


def refused(f: Fleet, inv: str, path: str, found: str, v0: dict[str, Any], token: str = TOKEN,
            timeout: float = 60) -> None:
    """plan shows a `refuse` for `path` naming what was found and exits 1; apply refuses the host, exit 1,
    naming both; nothing on the host changed (files, units, running gateways), nothing outside the user's files
    either (`v0`). All three commands run before anything is judged, and every problem is reported."""
    env = {"OCB_TOKEN": token}
    before = host_state(f.gw, skip=[path], units=UNITS)
    p = f.cli("plan", inv, env=env, timeout=timeout)
    pj = f.cli("plan", inv, "--json", env=env, timeout=timeout)
    a = f.cli("apply", inv, "--yes", "--json", env=env, timeout=timeout)
    bad = changed_victims(f.gw, v0) + [f"a refused host was touched: {d}" for d in diff_state(
        before, host_state(f.gw, skip=[path], units=UNITS))]
    line = p.line_with("refuse", path, found)
    if p.rc != 1 or not line:
        bad.append(f"plan must exit 1 with a `refuse` line naming {path} and {found!r}:\n{p.tail()}")
    refusals = [c for h in pj.json()["hosts"] for c in h["changes"] if c["action"] == "refuse"]
    if pj.rc != 1 or not any(path in c["target"] or path in c["reason"] for c in refusals):
        bad.append(f"plan --json must exit 1 with an `action: refuse` naming {path}:\n{pj.tail(1500)}")
    res = host_result(a)
    msg = res["message"]
    if a.rc != 1 or res["status"] != "refused" or path not in msg or found not in msg.lower():
        bad.append(f"apply must refuse the host (exit 1) naming {path} and {found!r}; it said {res}")
    assert not bad, "\n".join(bad)
    print(f"\n  plan ({p.seconds:.1f} s): {line!s:.200}\n  apply ({a.seconds:.1f} s): exit {a.rc} "
          f"{res['status']}: {msg:.200}")


# ---- 1, 2: links in place of what the tool writes ------------------------------------------------------------

def test_symlinked_state_dir_of_a_new_instance_is_refused_and_the_victim_stays_root_and_empty(fl: Fleet) -> None:
    """Regression: `apply` used to exit 0 and turn /srv/victim into openclaw:openclaw 0700 full of state."""
    v0 = VICTIMS.snapshot(fl.gw)
    ops = f"{HOME}/.openclaw-ops"
    fl.as_user(f"ln -s {VICTIM} {ops}")
    fl.cleanups.append(f"rm -f {ops}")
    inv = fl.changed(ops={"port": 20789})
    refused(fl, inv, ops, LINK, v0)
    a = fl.cli("apply", inv, "--yes")  # the human view too: it used to say "Apply complete"
    assert a.rc == 1 and a.line_with("refused", ops, LINK) and "Apply complete" not in a.text, a.tail()
    unchanged(fl.gw, v0)
    assert kind(fl.gw, VICTIM)[:3] == ("directory", "root", "755")
    assert fl.gw.run(["ls", "-A", VICTIM]).stdout == ""
    assert not fl.gw.exists("/etc/systemd/system/openclaw-gateway-ops.service")


LINK_CASES = {  # name: (the attack, as the user; the path; root lines undoing it; rotate the secret?)
    "workspace": (f"mv {MAIN}/workspace {MAIN}/ws-away && ln -s {VICTIM} {MAIN}/workspace", f"{MAIN}/workspace",
                  f"rm -f {MAIN}/workspace && mv {MAIN}/ws-away {MAIN}/workspace", False),
    "config-to-passwd": (f"ln -sfn /etc/passwd {CONFIG}", CONFIG, f"rm -f {CONFIG}", False),
    "config-to-shadow": (f"ln -sfn /etc/shadow {CONFIG}", CONFIG, f"rm -f {CONFIG}", False),
    "config-dangling": (f"ln -sfn /etc/cron.d/ocb-{TAG} {CONFIG}", CONFIG, f"rm -f {CONFIG}", False),
    "env-to-root-file": (f"ln -sfn {ROOT_FILE} {ENV}", ENV, f"rm -f {ENV}", True),
    "env-dangling": (f"ln -sfn /root/ocb-{TAG}-new {ENV}", ENV, f"rm -f {ENV}", True),
}


@pytest.mark.parametrize("case", list(LINK_CASES))
def test_a_link_where_the_tool_writes_is_refused(fl: Fleet, case: str) -> None:
    attack, path, undo, rotate = LINK_CASES[case]
    v0 = VICTIMS.snapshot(fl.gw)
    fl.as_user(attack)
    fl.cleanups.append(undo)
    # the change makes the tool want to write that very path: a config value, or the secret in the env file
    inv = fl.base if rotate else fl.changed()
    refused(fl, inv, path, LINK, v0, token=f"rotated-{TAG}" if rotate else TOKEN)
    unchanged(fl.gw, v0)
    assert not fl.gw.exists(f"/etc/cron.d/ocb-{TAG}") and not fl.gw.exists(f"/root/ocb-{TAG}-new")


# ---- 3: the backup dir beside a user-side file ---------------------------------------------------------------

def outcome(fl: Fleet, a: Run, path: str, want: bytes, names: tuple[str, ...], before: bytes | None = None) -> str:
    """Either the apply really wrote `path` (a fresh regular file of the user, the rendered bytes), or it failed
    the host with a message naming one of `names` (and `path` still holds `before`). Returns what happened."""
    res = host_result(a)
    if a.rc == 0:
        assert res["status"] == "changed", res
        f, owner, _mode, links = kind(fl.gw, path)
        assert (f, owner, links) == ("regular file", USER, 1), f"apply said ok, but {path} is {f} of {owner}"
        assert fl.gw.read_file(path) == want, f"apply said ok, but {path} is not the rendered file"
        return "applied"
    assert a.rc == 1, a.tail()
    assert res["status"] in ("refused", "failed") and any(n in res["message"] for n in names), res
    if before is not None:
        assert fl.gw.read_file(path) == before, f"{path} changed, but apply failed: {res}"
    return f"{res['status']}: {res['message']}"


def test_symlinked_backup_dir_never_writes_through(fl: Fleet) -> None:
    v0 = VICTIMS.snapshot(fl.gw)
    prev = f"{MAIN}/.ocp-prev"
    fl.as_user(f"rm -rf {prev} && ln -s /etc/cron.d {prev}")
    fl.cleanups.append(f"rm -f {prev}")
    inv, old = fl.changed(), fl.gw.read_file(CONFIG)
    p = fl.cli("plan", inv)
    assert p.rc in (0, 1), p.tail()
    if p.rc == 1:
        assert p.line_with("refuse", prev, LINK), p.tail()
    a = fl.cli("apply", inv, "--yes", "--json")
    print(f"backup dir link: plan exit {p.rc};", outcome(fl, a, CONFIG, fl.rendered(inv, CONFIG), (prev, CONFIG), old))
    unchanged(fl.gw, v0)


# ---- 4: a hard link to a root file ---------------------------------------------------------------------------

def test_hard_link_to_a_root_file(fl: Fleet) -> None:
    v0 = VICTIMS.snapshot(fl.gw)
    hl = f"{MAIN}/ocb-hardlink"
    assert sysctl("fs.protected_hardlinks") == "1", "the machine is expected to run with fs.protected_hardlinks=1"
    r = fl.gw.run(["ln", "/etc/passwd", hl], user=USER, check=False)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, (r.returncode, r.stderr)
    old = sysctl("fs.protected_hardlinks", "0")
    try:  # only as long as it takes to make the link
        fl.as_user(f"ln /etc/passwd {hl} && mv -f {hl} {CONFIG}")
    finally:
        sysctl("fs.protected_hardlinks", old)
    fl.cleanups.append(f"rm -f {CONFIG} {hl}")
    assert kind(fl.gw, CONFIG)[1:] == ("root", "644", 2)
    # the directory is the user's: the file is the user's to replace, and the tool writes a fresh one as the user
    inv = fl.changed()
    p = fl.cli("plan", inv)
    assert p.rc == 0, p.tail()
    a = fl.cli("apply", inv, "--yes", "--json")
    assert a.rc == 0, a.tail()
    print(f"hard link to /etc/passwd: plan exit {p.rc};", outcome(fl, a, CONFIG, fl.rendered(inv, CONFIG), (CONFIG,)))
    unchanged(fl.gw, v0)
    assert kind(fl.gw, "/etc/passwd")[1:] == ("root", "644", 1)
    # a root file the user cannot even read, in place of an env file (whose secret is then rotated)
    env = f"{MAIN}/gateway.env"
    old = sysctl("fs.protected_hardlinks", "0")
    try:
        fl.as_user(f"ln /etc/shadow {hl} && mv -f {hl} {env}")
    finally:
        sysctl("fs.protected_hardlinks", old)
    fl.cleanups.append(f"rm -f {env}")
    doc = fl.doc()
    doc["hosts"]["gw"]["instances"]["main"]["secrets"] = {"OCB_X": {"env": "OCB_TOKEN"}}
    inv = fl.write(doc)
    p = fl.cli("plan", inv)
    assert p.rc in (0, 1), p.tail()
    a = fl.cli("apply", inv, "--yes", "--json")
    print(f"hard link to /etc/shadow: plan exit {p.rc};", outcome(fl, a, env, fl.rendered(inv, env), (env,)))
    unchanged(fl.gw, v0)


@pytest.mark.parametrize("which", ["gateway.env", "gateway.auth.env"])
def test_a_link_at_an_env_file_never_loads_a_root_file_into_the_gateway(fl: Fleet, which: str) -> None:
    """Regression: systemd read these files (EnvironmentFile=) as root, so a link to a root-only file (ROOT_FILE)
    put its lines in the gateway's environment at the next start; gateway-exec reads them as the user."""
    v0, unit, path = VICTIMS.snapshot(fl.gw), UNITS[0], f"{MAIN}/{which}"
    fl.as_user(f"mv {path} {path}.ocb-saved && ln -s {ROOT_FILE} {path}")
    fl.cleanups.append(f"rm -f {path} && mv {path}.ocb-saved {path} && systemctl restart {unit}")
    restart_and_wait(fl.gw, unit)  # what a crash the user causes, or a reboot, does
    assert not (leaked := user_processes_holding(fl.gw, ROOT_SECRET)), f"root's file reached the user: {leaked}"
    journal = fl.gw.run(["journalctl", "-u", unit, "-o", "cat", "--no-pager", "-n", "50"]).stdout
    assert f"gateway-exec: {path}: not a regular file this user can read" in journal, journal[-2000:]
    unchanged(fl.gw, v0)


# ---- 5, 6: a FIFO, a directory where the config file belongs ------------------------------------------------

def test_fifo_in_place_of_the_config_is_refused_in_bounded_time(fl: Fleet) -> None:
    v0 = VICTIMS.snapshot(fl.gw)
    fl.as_user(f"rm -f {CONFIG} && mkfifo -m 0600 {CONFIG}")
    # a reader blocked on the FIFO (a hung probe) is let go before the FIFO goes
    fl.cleanups.append(f"for i in 1 2 3; do timeout 2 python3 -c 'import os,sys; os.close(os.open(sys.argv[1], "
                       f"os.O_RDWR))' {CONFIG} || true; sleep 0.2; done; rm -f {CONFIG}")
    refused(fl, fl.changed(), CONFIG, FIFO, v0, timeout=60)
    # `status` reads the env files (as data): one that is a FIFO must not hang it either
    fl.as_user(f"rm -f {ENV} && mkfifo -m 0600 {ENV}")
    fl.cleanups.append(fl.cleanups[-1].replace(CONFIG, ENV))
    r = fl.cli("status", fl.base, timeout=60)
    assert r.rc in (0, 1), r.tail()
    unchanged(fl.gw, v0)


def test_directory_in_place_of_the_config_is_refused_and_left_empty(fl: Fleet) -> None:
    v0 = VICTIMS.snapshot(fl.gw)
    fl.as_user(f"rm -f {CONFIG} && mkdir -m 0700 {CONFIG}")
    fl.cleanups.append(f"rm -rf {CONFIG}")
    refused(fl, fl.changed(), CONFIG, DIRECTORY, v0)
    assert fl.gw.run(["ls", "-A", CONFIG]).stdout == "", "the tool created something inside the directory"
    unchanged(fl.gw, v0)


# ---- 7: the env file is data -------------------------------------------------------------------------------

def test_env_file_with_shell_code_is_never_run(fl: Fleet) -> None:
    """Regression: `status` used to source the env file in a root shell (`id > /root/pwned` ran as root)."""
    v0 = VICTIMS.snapshot(fl.gw)
    payload = (f"id > /root/pwned-{TAG}\nid > /tmp/pwned-{TAG}-id\nX=$(touch /tmp/pwned-{TAG}-subst)\n"
               f"Y=`touch /tmp/pwned-{TAG}-tick`\nZ=\"$(touch /tmp/pwned-{TAG}-dq)\"\n")
    fl.gw.run(f"touch /tmp/pwned-{TAG}-selftest /root/pwned-{TAG}")  # the detector sees both places
    assert pwned(fl.gw, TAG) == [f"/root/pwned-{TAG}", f"/tmp/pwned-{TAG}-selftest"]
    fl.gw.run(f"rm /tmp/pwned-{TAG}-selftest /root/pwned-{TAG}")
    fl.gw.run(["sh", "-c", 'cat >> "$1"', "-", ENV], user=USER, input=payload)
    for args in (("status", fl.base), ("status", fl.base, "--json"), ("plan", fl.base)):
        r = fl.cli(*args)
        assert r.rc in (0, 1), r.tail()
        assert pwned(fl.gw, TAG) == [], f"`provision {args[0]}` ran the env file:\n{r.tail()}"
        print(f"\n  {' '.join(args[:1] + args[2:])}: exit {r.rc}, {r.text.strip().splitlines()[-1][:160]!r}", end="")
    a = fl.cli("apply", fl.base, "--yes", "--json")
    assert a.rc == 0 and host_result(a)["status"] == "changed", a.tail()
    assert fl.gw.read_file(ENV) == fl.rendered(fl.base, ENV), "apply did not put the env file back"
    assert kind(fl.gw, ENV)[:3] == ("regular file", USER, "600")
    assert fl.cli("status", fl.base).rc == 0
    assert pwned(fl.gw, TAG) == [] and not fl.gw.exists(f"/root/pwned-{TAG}")
    unchanged(fl.gw, v0)


def test_env_file_with_a_1gb_line_is_handled_in_bounded_time(fl: Fleet) -> None:
    v0 = VICTIMS.snapshot(fl.gw)
    need = 4 << 20  # kB: the line, a backup of it, a temp copy
    assert free_kb(fl.gw, HOME) > need, f"less than {need >> 20} GB free for the 1 GB line"
    mark = f"/var/tmp/ocb-{TAG}.mark"
    fl.gw.run(["touch", mark])
    big = f"find / -xdev -type f -size +50M -newer {mark}"  # the 1 GB file and every copy of it
    fl.cleanups.append(f"{big} -delete; rm -f {mark}")
    fl.as_user(f"{{ printf 'BIG='; head -c 1G /dev/zero | tr '\\0' a; echo; }} >> {ENV}")
    took = {}
    for args in (("status", fl.base), ("plan", fl.base)):
        r = fl.cli(*args, timeout=120)
        took[args[0]] = f"exit {r.rc} after {r.seconds:.1f} s: {r.text.strip().splitlines()[-1][:200]!r}"
        assert r.rc in (0, 1) and len(r.text) < 64 << 20, r.tail()
    a = fl.cli("apply", fl.base, "--yes", "--json", timeout=180)
    took["apply"] = f"exit {a.rc} after {a.seconds:.1f} s"
    print("1 GB env line:", *took.items(), sep="\n  ")
    assert a.rc == 0 and host_result(a)["status"] == "changed", a.tail()
    assert fl.gw.read_file(ENV) == fl.rendered(fl.base, ENV), "apply did not put the env file back"
    unchanged(fl.gw, v0)
    copies = fl.gw.run(big).stdout.split()
    print("  copies of the 1 GB file left on the host (deleted now):", copies)
    assert all(c.startswith(HOME + "/") for c in copies), copies


# ---- 8: a path swapped while apply holds the lock ----------------------------------------------------------

def test_paths_swapped_during_apply_never_reach_root_files(fl: Fleet) -> None:
    v0 = VICTIMS.snapshot(fl.gw)
    ops2, swap, swapdir = f"{HOME}/.openclaw-ops2", f"{MAIN}/.ocb-swap", f"{HOME}/.ocb-swapdir"
    fl.as_user(f"mkdir -m 0755 {ops2} && ln -s {VICTIM} {swapdir} && ln -s {VICTIM_FILE} {swap}")
    fl.cleanups.append(f"rm -rf {ops2} {swapdir} {swap}; [ -L {CONFIG} ] && rm -f {CONFIG}; true")
    pairs = [(CONFIG, swap), (ops2, swapdir)]
    report = []
    # the loop starts once the lock is taken, or runs all through apply; the last round shows the links only
    # briefly, so that the re-check under the lock mostly passes and the writes themselves meet the swaps
    for n, (wait, hold, rest) in enumerate(((True, 0.003, 0.004), (False, 0.003, 0.004), (True, 0.0003, 0.003))):
        inv = fl.changed(f"round{n}", ops2={"port": 21789})
        want, want2 = fl.rendered(inv, CONFIG), fl.rendered(inv, f"{ops2}/openclaw.json")
        loop = SwapLoop(fl.gw, pairs, TAG, wait=wait, hold=hold, rest=rest)
        with loop.running():
            a = fl.cli("apply", inv, "--yes", "--json", timeout=120)
        loop.settle({swap: VICTIM_FILE, swapdir: VICTIM})
        assert loop.result.get("flips", 0) > 0, f"the swap loop never ran during apply: {loop.result}"
        unchanged(fl.gw, v0)
        res = host_result(a)
        if a.rc == 0:  # really written: the new config is a regular file of the user's (at either name)
            assert res["status"] == "changed", res
            holders = [p for p in (CONFIG, swap) if kind(fl.gw, p)[:2] == ("regular file", USER)
                       and fl.gw.read_file(p) == want]
            assert holders, f"apply reported success, but the new config is not on the host: {res}"
            assert kind(fl.gw, ops2)[:2] == ("directory", USER) and fl.gw.read_file(f"{ops2}/openclaw.json") == want2
        else:
            assert a.rc == 1 and res["status"] in ("refused", "failed") and res["message"], a.tail()
        report.append(f"{'at lock' if wait else 'whole apply'}: exit {a.rc} {res['status']} "
                      f"({res['message'][:160]!r}); {loop.result}")
    print("TOCTOU:", *report, sep="\n  ")


# ---- 9: the dedupe dir as a link --------------------------------------------------------------------------

def test_dedupe_verify_refuses_a_linked_claim_dir(fl: Fleet) -> None:
    claims = f"{HOME}/claims"
    v0, v2 = VICTIMS.snapshot(fl.gw), VICTIMS.snapshot(fl.gw2)
    fl.as_user(f"ln -s {VICTIM} {claims}")
    fl.cleanups.append(f"rm -f {claims}")
    fl.gw2.run(f"install -d -m 1777 {claims}")
    doc = fl.doc()
    doc["dedupe"] = {"dir": claims, "configure_gateway": False}
    doc["hosts"]["gw2"] = {"address": fl.gw2.address, "instances": {"main": {"port": 18789}}}
    try:
        r = fl.cli("dedupe", "verify", fl.write(doc))
    finally:
        fl.gw2.run(f"rm -rf {HOME}")
    unchanged(fl.gw, v0)
    unchanged(fl.gw2, v2)
    assert r.rc == 1, r.tail()
    line = r.line_with(claims, "link")
    assert line, f"verify does not name {claims} as a link:\n{r.tail()}"
    print("dedupe verify:", line.strip())


# ---- 10: the host lock -------------------------------------------------------------------------------------

def test_the_user_cannot_plant_the_lock_and_unlock_works(fl: Fleet) -> None:
    v0 = VICTIMS.snapshot(fl.gw)
    lock_dir = LOCK.rsplit("/", 1)[0]
    for attempt in (["touch", LOCK], ["ln", "-sfn", "/etc/passwd", LOCK], ["ln", "-sfn", VICTIM, f"{lock_dir}/busy"],
                    ["ln", "-s", VICTIM, f"{lock_dir}/ocb-{TAG}"], ["mkdir", "-p", f"{lock_dir}/prev/ocb-{TAG}"],
                    ["sh", "-c", f"exec 9< {lock_dir}/busy && flock -n 9"]):  # held, it would stall every run
        r = fl.gw.run(attempt, user=USER, check=False)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (attempt, r.returncode, r.stderr)
    assert not fl.gw.exists(LOCK)
    u = fl.cli("unlock", fl.base)
    assert u.rc == 0 and u.line_with("gw", "not locked"), u.tail()
    assert (p := fl.cli("plan", fl.base, "--detailed-exitcode")).rc == 0, p.tail()
    unchanged(fl.gw, v0)


# ---- 11: no unkeyed digest of a file that holds a secret -------------------------------------------------------

def test_no_output_holds_a_plain_sha256_of_an_env_file(fl: Fleet) -> None:
    rotated = f"rotated-{TAG}"
    env = {"OCB_TOKEN": rotated}
    out = fl.dir / "digest-render"
    assert fl.cli("render", fl.base, "--out", str(out), "--with-secrets", env=env).rc == 0
    digests = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("gateway.env")}
    for p in (ENV, f"{MAIN}/gateway.env"):  # what is on the host now: the plan's "before"
        digests["host:" + p] = hashlib.sha256(fl.gw.read_file(p)).hexdigest()
    assert len(digests) == 4, digests
    planfile = fl.dir / "digest.plan.json"
    runs = [fl.cli("plan", fl.base, env=env), fl.cli("plan", fl.base, "--json", env=env),
            fl.cli("plan", fl.base, "--out", str(planfile), env=env)]
    assert all(r.rc == 0 for r in runs), [r.tail() for r in runs]
    runs.append(fl.cli("apply", fl.base, "--yes", "--json", env=env))
    assert runs[-1].rc == 0, runs[-1].tail()
    texts = {f"`provision {' '.join(r.args)}`": r.text for r in runs} | {"plan file": planfile.read_text()}
    found = [f"{where} holds sha256 of {p}" for where, t in texts.items() for p, d in digests.items() if d in t]
    assert found == [], "\n".join(found)
    env_change = next(c for h in runs[1].json()["hosts"] for c in h["changes"] if c["target"] == ENV)
    assert "hmac-sha256:" in str(env_change["after"]), env_change  # keyed; drift is still detected
    assert all(rotated not in t and TOKEN not in t for t in texts.values())


# ---- across the module -------------------------------------------------------------------------------------

def test_no_output_ever_showed_bytes_only_root_can_read(fleet: Fleet) -> None:
    """Every plan, diff, message and JSON document of this module: no line of /etc/shadow, nothing of ROOT_FILE
    (the links above pointed at both; a root-side read of a user's path would have shown them)."""
    shadow = [ln for ln in fleet.gw.read_file("/etc/shadow").decode().splitlines() if len(ln) > 8]
    assert shadow and len(fleet.cli.outputs) > 50
    for n, out in enumerate(fleet.cli.outputs):
        shown = [x for x in [ROOT_SECRET, *shadow] if x in out]
        assert not shown, f"output #{n} shows root-only bytes {shown}:\n{out[-2000:]}"
