"""Issue 8 on the lab, through the real `provision` CLI: SSH host-key trust, secrets that never leak, and hostile
names and paths that are either refused by `validate` with a location or reach the host as literal data and never
run.

The hosts are lab hosts (real sshd; systemd hosts booted by systemd-nspawn). The gateway is the stand-in
(tests/support/standin-openclaw); where a test must see exactly what a gateway process was given (argv, working
directory, environment) the inventory's `openclaw.command` is a small recording wrapper that then becomes the
stand-in. Every payload in a hostile value creates a file named `pwned-<TAG>-<word>` if it ever runs; the tests
look for such a file on the hosts and on the controller.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5
import pytest
import yaml

from provisioner.remote.trust import BACKUP_DIR
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import REPO, cli_argv, cli_env
from tests.support.lab_cli import STANDIN_PATH, install_standin

pytestmark = pytest.mark.lab

VERSION = "2026.9.6"
TAG = uuid.uuid4().hex[:8]  # this run's payload markers; other runs (and other engineers' tests) use other names
RECORDS = "/var/tmp/ocs-wrap"  # where the recording wrapper writes, on a host
WRAP_PATH = "/usr/local/bin/ocs-recording-wrapper"
SECRET_SOURCE = ("OCS_SECRET_SOURCE", f"env-secret-{TAG}")  # controller env var a `secrets: {X: {env: ...}}` reads
DIAG = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<level>error|warning): (?P<msg>.*)$")


def marker(word: str) -> str:
    """The file a payload creates if it is ever executed."""
    return f"pwned-{TAG}-{word}"


# ---- running the CLI ------------------------------------------------------------------------------------------

class Cli:
    """The real CLI as an operator runs it, from the lab's client namespace; every output is kept for scanning.
    Its cache goes to <cwd>/cache (XDG_CACHE_HOME), so what it writes there can be inspected."""

    def __init__(self, lab: Lab, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.lab = lab
        self.cwd = cwd
        self.env = {"NO_COLOR": "1", "XDG_CACHE_HOME": str(cwd / "cache"), **(env or {})}
        self.outputs: list[str] = []

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.lab.client_argv(cli_argv(*args)), cwd=self.cwd,
                                env=cli_env({**self.env, **(env or {})}), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc: subprocess.Popen[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
        out, err = proc.communicate(timeout=timeout)
        self.outputs += [out, err]
        assert "Traceback (most recent call last)" not in err, err[-3000:]
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def __call__(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.finish(self.start(*args, env=env))


def both(r: subprocess.CompletedProcess[str]) -> str:
    return r.stdout + r.stderr


def tail(r: subprocess.CompletedProcess[str], n: int = 2500) -> str:
    return f"exit {r.returncode}\n--- stdout:\n{r.stdout[-n:]}\n--- stderr:\n{r.stderr[-n:]}"


def write_yaml(path: Path, doc: Mapping[str, Any]) -> str:
    path.write_text(yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=1 << 20), encoding="utf-8")
    return str(path)


def lab_ssh(host: LabHost, **over: Any) -> dict[str, Any]:
    return {"user": "root", "port": host.port, "identity_file": str(host.key_path),
            "known_hosts": str(host.known_hosts_path), "host_key_policy": "strict", **over}


def located_errors(r: subprocess.CompletedProcess[str], inventory: str) -> list[tuple[int, int, str]]:
    """(line, column, message) of every error; each must be `INVENTORY:LINE:COL: error: ...`."""
    found = []
    for line in both(r).splitlines():
        m = DIAG.match(line)
        if m is None:
            assert ": error:" not in line and not line.startswith("error:"), f"unlocated error: {line!r}"
            continue
        if m["level"] == "error":
            assert m["path"] == inventory, f"error located outside the inventory: {line!r}"
            found.append((int(m["line"]), int(m["col"]), m["msg"]))
    return found


# ---- the gateway behind a recording wrapper -------------------------------------------------------------------

WRAPPER = f"""#!/bin/sh
# Records what this OpenClaw invocation was given (argv, working directory, environment), then becomes the
# stand-in gateway. POSIX sh, not Python: it runs once per gateway start and per `gateway status`.
key=$(printf '%s' "${{OPENCLAW_PROFILE:-}}" | sha1sum | cut -c1-16)
mode=x
for a in "$@"; do
  case $a in --port) mode=gateway ;; status) [ $mode = x ] && mode=status ;; --version) mode=version ;; esac
done
rec={RECORDS}/$key.$mode
printf '%s\\0' "$0" "$@" > "$rec.argv.$$"
pwd -P > "$rec.cwd.$$"
env -0 > "$rec.env.$$"
for f in argv cwd env; do mv -f "$rec.$f.$$" "$rec.$f"; done
while [ $# -gt 0 ]; do
  case $1 in --profile|--version|gateway) break ;; esac
  shift
done
exec python3 {STANDIN_PATH} "$@"
"""


def record_key(profile: str, mode: str = "gateway") -> str:
    return hashlib.sha1(profile.encode()).hexdigest()[:16] + "." + mode


def prepare_host(host: LabHost, wrapper_paths: Iterable[str] = (WRAP_PATH,)) -> None:
    install_standin(host)
    for p in wrapper_paths:
        host.write_file(p, WRAPPER, mode=0o755)
    host.run(["install", "-d", "-m", "1777", RECORDS])


HOST_FACTS = r"""
import glob, json, os, pwd, sys
req = json.load(sys.stdin)
out = {"stat": {}, "records": {}}
for p in req["paths"]:
    try:
        st = os.lstat(p)
    except OSError:
        out["stat"][p] = None
        continue
    kind = "link" if os.path.islink(p) else "dir" if os.path.isdir(p) else "file" if os.path.isfile(p) else "other"
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    out["stat"][p] = [kind, st.st_mode & 0o7777, owner]
for f in glob.glob(req["records"] + "/*.argv"):
    base = f[:-5]
    try:
        argv = open(f, "rb").read().decode().split("\0")[:-1]
        cwd = open(base + ".cwd", "rb").read().decode()[:-1]
        env = dict(e.split("=", 1) for e in open(base + ".env", "rb").read().decode().split("\0") if "=" in e)
    except OSError:
        continue
    cut = next((i for i, a in enumerate(argv[1:]) if a in ("--profile", "--version", "gateway")), len(argv) - 1)
    out["records"][os.path.basename(base)] = {"argv0": argv[0], "extra": argv[1:1 + cut], "rest": argv[1 + cut:],
                                              "cwd": cwd, "env": env}
print(json.dumps(out))
"""


def host_facts(host: LabHost, paths: Iterable[str]) -> dict[str, Any]:
    """stat of exact paths (sent as JSON on stdin: no shell ever sees them) and every wrapper record."""
    r = host.run(["python3", "-c", HOST_FACTS], input=json.dumps({"paths": sorted(set(paths)), "records": RECORDS}))
    facts: dict[str, Any] = json.loads(r.stdout)
    return facts


def clear_records(host: LabHost) -> None:
    host.run(["sh", "-c", f"rm -f {RECORDS}/*"])


# ---- did anything run? ----------------------------------------------------------------------------------------

def executed_on_host(host: LabHost) -> list[str]:
    """Files a payload would have created, anywhere on the host (its own tmpfs /tmp and /run included), and any
    /tmp/pwned-* at all (the host is this test's own)."""
    script = ('find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name "$1" -print0; '
              "for f in /tmp/pwned*; do [ -e \"$f\" ] && printf '%s\\0' \"$f\"; done; true")
    found = host.run(["sh", "-c", script, "-", f"pwned-{TAG}-*"]).stdout.split("\0")
    pattern = re.compile(rf"^pwned-{TAG}-[a-z0-9]+$")
    return sorted({p for p in found if p and (pattern.match(os.path.basename(p)) or p.startswith("/tmp/pwned"))})


def executed_on_controller(*roots: Path) -> list[str]:
    """The same on the controller: where a local shell could have run a payload (the CLI's cwd, /tmp, ~, the repo)."""
    pattern = re.compile(rf"^pwned-{TAG}-[a-z0-9]+$")
    hits = []
    for root in (*roots, Path("/tmp")):
        for dirpath, dirnames, files in os.walk(root):
            hits += [os.path.join(dirpath, n) for n in [*dirnames, *files] if pattern.match(n)]
    for top in (Path.home(), REPO):
        hits += [str(top / n) for n in os.listdir(top) if pattern.match(n)]
    return sorted(hits)


# ---- secrets: where could a canary show? ----------------------------------------------------------------------

def needles(secrets: Iterable[str]) -> dict[bytes, str]:
    """Each secret, and each of the three ways it can sit base64-encoded inside a longer text, -> the secret."""
    out: dict[bytes, str] = {}
    for s in secrets:
        raw = s.encode()
        out[raw] = s
        for shift in range(3):
            enc = base64.b64encode(b"\0" * shift + raw)
            # the first group mixes in the bytes before the secret, the last one those after it
            out[enc[4 if shift else 0: len(enc) - (4 if (shift + len(raw)) % 3 else 0)]] = s
    return out


def leaks(data: bytes, wanted: Mapping[bytes, str]) -> set[str]:
    flat = data.replace(b"\n", b"").replace(b"\r", b"")  # base64 is often wrapped
    return {s for n, s in wanted.items() if n in data or n in flat}


def files_holding(roots: Iterable[Path], wanted: Mapping[bytes, str], *, skip: Iterable[Path] = (),
                  newer_than: float = 0.0) -> dict[str, set[str]]:
    skipped = {str(p) for p in skip}
    out: dict[str, set[str]] = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = os.path.join(dirpath, name)
                if p in skipped:
                    continue
                try:
                    st = os.lstat(p)
                    if st.st_mode & 0o170000 != 0o100000 or st.st_mtime < newer_than or st.st_size > 64 << 20:
                        continue
                    with open(p, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                found = leaks(data, wanted)
                if found:
                    out[p] = found
    return out


# On a host: which processes' argv or environment hold a secret. The secrets come in on stdin (never in an argv
# or a file); each process's argv is read first, so that a hit is attributed to the process that had it.
HOST_PS = r"""pat=$(cat)
for d in /proc/[0-9]*; do
  c=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
  for w in cmdline environ; do
    printf '%s\n' "$pat" | grep -qaF -f - "$d/$w" 2>/dev/null && printf '%s\t%s\n' "$d/$w" "$c"
  done
done
echo SAMPLED"""


@dataclass
class ProcessWatch:
    """While a CLI command runs: every process's argv and environment on the controller, and on the host, sampled
    over and over. Allowed to hold a secret: the provision process's own environment (the secret's source, an env
    var given to it) and, on the host, the environment of the gateway (argv naming `gateway_argv`)."""

    host: LabHost
    wanted: Mapping[bytes, str]
    gateway_argv: bytes
    hits: list[str] = field(default_factory=list)
    controller_samples: int = 0
    host_samples: int = 0
    allowed_sightings: int = 0  # the secret seen where it may be: proves the sampling can see one at all

    def run(self, cli: Cli, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = cli.start(*args, env=env)
        stop = threading.Event()
        threads = [threading.Thread(target=self._controller, args=(proc.pid, stop), daemon=True),
                   threading.Thread(target=self._host, args=(stop,), daemon=True)]
        for t in threads:
            t.start()
        try:
            return cli.finish(proc)
        finally:
            stop.set()
            for t in threads:
                t.join(60)

    def _controller(self, provision_pid: int, stop: threading.Event) -> None:
        me = os.getpid()
        my_pidns = os.readlink("/proc/self/ns/pid")
        while not stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == me:
                    continue
                try:
                    argv = Path(f"/proc/{entry}/cmdline").read_bytes()
                    env = Path(f"/proc/{entry}/environ").read_bytes()
                    # a lab host's processes share this kernel: there its gateway holds the secret, as on the host
                    on_a_host = os.readlink(f"/proc/{entry}/ns/pid") != my_pidns
                except OSError:
                    continue
                for s in leaks(argv, self.wanted):
                    self.hit(f"controller pid {entry} argv {argv[:200]!r} holds secret {s[:16]}...")
                if int(entry) == provision_pid or (on_a_host and self.gateway_argv in argv):
                    self.allowed_sightings += bool(leaks(env, self.wanted))
                    continue
                for s in leaks(env, self.wanted):
                    self.hit(f"controller pid {entry} ({argv[:200]!r}): environment holds secret {s[:16]}...")
            self.controller_samples += 1
            time.sleep(0.02)

    def hit(self, what: str) -> None:
        if what not in self.hits:
            self.hits.append(what)

    def _host(self, stop: threading.Event) -> None:
        patterns = "\n".join(n.decode() for n in self.wanted) + "\n"
        while not stop.is_set():
            r = self.host.run(["sh", "-c", HOST_PS], input=patterns, check=False, timeout=60)
            if not r.stdout.endswith("SAMPLED\n"):
                continue
            for line in r.stdout.splitlines()[:-1]:
                where, _, argv = line.partition("\t")
                if where.endswith("/cmdline") or self.gateway_argv.decode() not in argv:
                    self.hit(f"host {where} holds a secret (process: {argv[:200]!r})")
                else:
                    self.allowed_sightings += 1
            self.host_samples += 1


# ---- SSH trust --------------------------------------------------------------------------------------------------

HOST_NAME = "edge-gw-7"  # distinctive, so "the message names the host" means something


def key_line(pubkey: str) -> str:
    return " ".join(pubkey.split()[:2])


def openssh_fingerprint(pubkey: str, tmp: Path) -> str:
    """The SHA256 fingerprint as OpenSSH itself prints it (ssh-keygen -l), not as the tool computes it."""
    f = tmp / f"key-{uuid.uuid4().hex}.pub"
    f.write_text(key_line(pubkey) + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(f)], capture_output=True, text=True,
                         check=True).stdout
    fp = out.split()[1]
    assert fp.startswith("SHA256:"), out
    return fp


def another_ed25519_key() -> str:
    blob = b"\0\0\0\x0bssh-ed25519" + b"\0\0\0\x20" + os.urandom(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def trust_inventory(host: LabHost, known_hosts: Path, policy: str | None) -> dict[str, Any]:
    ssh = lab_ssh(host, known_hosts=str(known_hosts), connect_timeout=5)
    del ssh["host_key_policy"]
    if policy is not None:
        ssh["host_key_policy"] = policy
    return {"version": 1, "openclaw": {"version": VERSION, "command": [STANDIN_PATH]},
            "defaults": {"ssh": ssh, "service": {"manager": "none"}},
            "hosts": {HOST_NAME: {"address": host.address, "instances": {"main": {"port": 18789}}}}}


def line_with(text: str, *needles_: str) -> str | None:
    return next((line for line in text.splitlines() if all(n in line for n in needles_)), None)


def untouched(host: LabHost) -> bool:
    return not host.exists("/var/lib/openclaw-provisioner") and not host.exists("/home/openclaw")


@pytest.fixture()
def cli(lab: Lab, tmp_path: Path) -> Cli:
    return Cli(lab, tmp_path)


def test_an_unknown_host_key_is_refused_by_default_and_known_hosts_is_left_alone(
        make_host: Callable[..., LabHost], cli: Cli, tmp_path: Path) -> None:
    host = make_host("ssh")
    offered = openssh_fingerprint(host.host_public_key, tmp_path)
    kh = tmp_path / "known_hosts"
    kh.write_text(f"unrelated.example {another_ed25519_key()}\n")
    kh.chmod(0o600)
    before = (kh.read_bytes(), kh.stat().st_mtime_ns)
    absent = tmp_path / "never-created" / "known_hosts"
    cases = [(kh, None, ("plan", "plan-detailed", "plan-json", "apply")), (kh, "strict", ("plan",)),
             (absent, None, ("plan",))]
    for n, (known, policy, runs) in enumerate(cases):
        inv = write_yaml(tmp_path / f"unknown-{n}.yaml", trust_inventory(host, known, policy))
        for how in runs:
            args = {"plan": ("plan", inv), "plan-detailed": ("plan", inv, "--detailed-exitcode"),
                    "plan-json": ("plan", inv, "--json"), "apply": ("apply", inv, "--yes")}[how]
            r = cli(*args)
            assert r.returncode == 1, f"{how} with policy {policy}: {tail(r)}"  # SPEC: 1 error, never 0 or 2
            said = line_with(both(r), offered)
            assert said is not None, f"{how}: the offered fingerprint {offered} is not shown:\n{tail(r)}"
            assert HOST_NAME in said and host.address in said and "known_hosts" in said, said
            if how == "plan-json":
                doc = json.loads(r.stdout)
                assert doc["summary"]["hosts_failed"] == 1 and offered in doc["hosts"][0]["error"]
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == before
    assert not absent.exists() and not absent.parent.exists()
    assert untouched(host)


def test_a_changed_host_key_is_refused_showing_both_fingerprints(
        make_host: Callable[..., LabHost], cli: Cli, tmp_path: Path) -> None:
    host = make_host("ssh")
    planted = another_ed25519_key()
    expected, offered = openssh_fingerprint(planted, tmp_path), openssh_fingerprint(host.host_public_key, tmp_path)
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{host.address} {planted}\n")
    before = (kh.read_bytes(), kh.stat().st_mtime_ns)
    for policy in (None, "accept-new"):  # accept-new takes unknown keys only: a changed one is refused as well
        inv = write_yaml(tmp_path / f"changed-{policy}.yaml", trust_inventory(host, kh, policy))
        for args in (("plan", inv), ("apply", inv, "--yes")):
            r = cli(*args)
            assert r.returncode == 1, f"{args[0]} with policy {policy}: {tail(r)}"
            said = line_with(both(r), expected, offered)
            assert said is not None, f"both fingerprints ({expected}, {offered}) must be shown:\n{tail(r)}"
            assert HOST_NAME in said and host.address in said, said
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == before
    assert untouched(host)


def test_accept_new_records_the_key_once_then_refuses_a_different_one(
        make_host: Callable[..., LabHost], cli: Cli, tmp_path: Path) -> None:
    host = make_host("ssh")
    # the known_hosts path itself is hostile: the tool reads and writes it as a path, never through a shell
    kh = tmp_path / f"known hosts 'q' \"d\" $(touch {marker('kh1')}) `touch {marker('kh2')}`; ü" / "known_hosts"
    inv = write_yaml(tmp_path / "accept-new.yaml", trust_inventory(host, kh, "accept-new"))
    r = cli("plan", inv)
    assert r.returncode == 0, tail(r)
    assert kh.read_text().splitlines() == [f"{host.address} {key_line(host.host_public_key)}"]
    assert kh.stat().st_mode & 0o777 == 0o600
    recorded = (kh.read_bytes(), kh.stat().st_mtime_ns)
    r = cli("plan", inv)
    assert r.returncode == 0, tail(r)
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == recorded  # known now: nothing appended
    strict = write_yaml(tmp_path / "strict.yaml", trust_inventory(host, kh, "strict"))
    assert cli("plan", strict).returncode == 0  # the recorded key is what strict checking trusts

    # the host gets a new key (sshd reads its host key for every connection)
    host.run("rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && "
             "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key")
    new_key = key_line(host.read_file("/etc/ssh/ssh_host_ed25519_key.pub").decode())
    old_fp, new_fp = (openssh_fingerprint(host.host_public_key, tmp_path), openssh_fingerprint(new_key, tmp_path))
    assert old_fp != new_fp
    for args in (("plan", inv), ("apply", inv, "--yes")):
        r = cli(*args)
        assert r.returncode == 1, f"{args[0]}: {tail(r)}"
        said = line_with(both(r), old_fp, new_fp)
        assert said is not None and HOST_NAME in said, f"both fingerprints must be shown:\n{tail(r)}"
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == recorded
    assert untouched(host)
    assert executed_on_controller(tmp_path) == []


# ---- secrets ------------------------------------------------------------------------------------------------------

def test_a_canary_secret_is_only_in_the_0600_env_file(make_host: Callable[..., LabHost], lab: Lab,
                                                      tmp_path: Path) -> None:
    started = time.time() - 1
    host = make_host("systemd")
    install_standin(host)
    canary, rotated, from_file = (f"ocs-canary-{uuid.uuid4().hex}", f"ocs-rotated-{uuid.uuid4().hex}",
                                  f"ocs-filesecret-{uuid.uuid4().hex}")
    wanted = needles([canary, rotated, from_file])
    secret_file = tmp_path / "secret-from-file"
    secret_file.write_text(from_file + "\n")
    secret_file.chmod(0o600)
    cli = Cli(lab, tmp_path, {"OCS_CANARY_TOKEN": canary})
    doc: dict[str, Any] = {
        "version": 1, "openclaw": {"version": VERSION, "command": [STANDIN_PATH]},
        "defaults": {"ssh": lab_ssh(host), "service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"health": {"timeout": 30}}},
        "hosts": {"gw": {"address": host.address, "instances": {
            "main": {"port": 18789},
            "rescue": {"port": 19789, "config": {"gateway": {"auth": {"mode": "token"}}},
                       "secrets": {"OPENCLAW_GATEWAY_TOKEN": {"env": "OCS_CANARY_TOKEN"},
                                   "OCS_FILE_SECRET": {"file": str(secret_file)}}}}}},
    }
    inv = write_yaml(tmp_path / "inventory.yaml", doc)
    planfile = tmp_path / "saved.plan.json"
    watch = ProcessWatch(host, wanted, STANDIN_PATH.encode())

    assert cli("validate", inv).returncode == 0
    r = cli("plan", inv, "--detailed-exitcode")
    assert r.returncode == 2 and "OPENCLAW_GATEWAY_TOKEN" in r.stdout, tail(r)  # the key shows, masked
    assert cli("plan", inv, "--out", str(planfile), "--json", "-v").returncode == 0 and planfile.exists()
    r = watch.run(cli, "apply", str(planfile), "-v")
    assert r.returncode == 0, tail(r)
    first_samples = (watch.controller_samples, watch.host_samples)
    assert cli("status", inv).returncode == 0

    env_path = "/home/openclaw/.openclaw-rescue/gateway.env"
    env_text = host.read_file(env_path).decode()
    assert f'OPENCLAW_GATEWAY_TOKEN="{canary}"' in env_text and f'OCS_FILE_SECRET="{from_file}"' in env_text
    pid = host.run(["systemctl", "show", "-p", "MainPID", "--value", "openclaw-gateway-rescue.service"]).stdout.strip()
    assert canary.encode() in host.read_file(f"/proc/{pid}/environ")  # the gateway got it (not a vacuous test)

    # an apply that fails: the health gate never passes (and the secret is rotated on the way); rolled back
    failing = json.loads(json.dumps(doc))
    rescue = failing["hosts"]["gw"]["instances"]["rescue"]
    rescue["env"] = {"STANDIN_READY": "no"}
    rescue["health"] = {"timeout": 3}
    inv2 = write_yaml(tmp_path / "inventory-failing.yaml", failing)
    r = cli("plan", inv2, env={"OCS_CANARY_TOKEN": rotated})
    assert r.returncode == 0 and "<redacted>" in r.stdout, tail(r)  # the rotation shows, masked
    r = watch.run(cli, "apply", inv2, "--yes", "-v", "--json", env={"OCS_CANARY_TOKEN": rotated})
    assert r.returncode == 1, tail(r)
    assert json.loads(r.stdout)  # the failure is reported in the JSON document too

    # 1. nothing the CLI printed, saved or cached holds a secret (raw or base64)
    for n, out in enumerate(cli.outputs):
        assert not leaks(out.encode(), wanted), f"CLI output #{n} holds a secret:\n{out[-3000:]}"
    assert not leaks(planfile.read_bytes(), wanted)
    cache = tmp_path / "cache"
    assert any(p.is_file() for p in cache.rglob("*")), "the CLI cached nothing: is XDG_CACHE_HOME honoured?"
    home_cache = Path.home() / ".cache" / "openclaw-provisioner"
    on_controller = files_holding([tmp_path], wanted, skip=[secret_file])
    on_controller.update(files_holding([home_cache, Path("/tmp")], wanted, skip=[secret_file], newer_than=started))
    assert on_controller == {}, f"files on the controller hold a secret: {on_controller}"

    # 2. no process ever had one in its argv (nor, but for the gateway and provision itself, its environment)
    assert watch.hits == [], "\n".join(watch.hits[:20])
    assert first_samples[0] >= 2 and first_samples[1] >= 2, first_samples  # the sampling overlapped the apply
    assert watch.host_samples >= 2 + first_samples[1], (watch.controller_samples, watch.host_samples)
    assert watch.allowed_sightings > 0, "the samplers never saw a secret even where it belongs (the gateway)"

    # 3. on the host: the env file (0600) and its backup (0600) hold the secret, nothing else does
    upper = host.dir / "upper"
    holders = {"/" + os.path.relpath(p, upper): s for p, s in files_holding([upper], wanted).items()}
    tmpfs = host.run(["sh", "-c", "grep -rlaF -D skip -f - /tmp /run /dev/shm /srv/shared 2>/dev/null; true"],
                     input="\n".join(n.decode() for n in wanted)).stdout.split("\n")
    holders.update({p: {"?"} for p in tmpfs if p})
    # the backup of a file in the service user's tree stays in that tree, beside the file (remote/trust.py)
    allowed = {env_path, posixpath.join(posixpath.dirname(env_path), BACKUP_DIR, posixpath.basename(env_path))}
    assert set(holders) <= allowed, f"secret found on the host outside the env file: {holders}"
    assert env_path in holders
    for p in holders:
        mode_owner = host.run(["stat", "-c", "%a %U", "--", p]).stdout.split()
        assert mode_owner[0] == "600", f"{p} holds a secret with mode {mode_owner}"
    assert holders[env_path] <= {canary, from_file}  # the rotated one went back with the failed apply


# ---- hostile values --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hostile:
    name: str
    value: str


def hostile_values() -> list[Hostile]:
    m = marker
    base = [
        Hostile("space", "sp ace"),
        Hostile("single-quote", "it's"),
        Hostile("double-quote", 'say "hi"'),
        Hostile("semicolon", f"a;touch {m('semi')};b"),
        Hostile("command-substitution", f"$(touch {m('subst')})"),
        Hostile("backticks", f"`touch {m('tick')}`"),
        Hostile("unicode", "ünïcødé ☃ 日本 🦀"),
        Hostile("and-or", f"x && touch {m('andor')} || touch {m('andor')}"),
        Hostile("pipe", f"x|touch {m('pipe')} #"),
        Hostile("single-quote-breakout", f"'; touch {m('sqb')}; '"),
        Hostile("double-quote-breakout", '"; touch ' + m("dqb") + '; "'),
        Hostile("expansions", "%n %i %% ${HOME} $HOME $$ ~"),
        Hostile("backslashes", "back\\slash \\n \\x41 \\$(touch " + m("bs") + ")"),
        Hostile("leading-space", " lead"),
        Hostile("glob", "*?[ab]{c,d}"),
        Hostile("hash", "#not=a comment"),
        Hostile("option-like", "-rf"),
        Hostile("trailing-space", "trail "),
        Hostile("trailing-backslash", "end\\"),
    ]
    combined = Hostile("combined", (f"it's \"q\" ;touch {m('c1')}; $(touch {m('c2')}) `touch {m('c3')}` && | "
                                    "ünï☃日本🦀 %n %% ${HOME} $$ \\x41 \\ *?[a]{b,c} #h=v ~ -rf"))
    return [*base, combined,
            Hostile("absolute-payload", f"$(touch /tmp/{m('abs')})"),
            Hostile("newline", f"x\ntouch {m('nl')}\n#"),
            Hostile("tab", f"x\ttouch {m('tab')}")]


Pair = tuple[str, int]  # (field, index of the hostile value)


def y(s: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(s, ensure_ascii=False)


@dataclass
class Doc:
    """YAML written line by line; remembers which (field, value) pair each line holds."""

    lines: list[str] = field(default_factory=list)
    where: dict[int, Pair] = field(default_factory=dict)

    def add(self, indent: int, text: str, pair: Pair | None = None) -> None:
        self.lines.append(" " * indent + text)
        if pair is not None:
            self.where[len(self.lines)] = pair

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class Layout:
    """Where each field puts a hostile value. Directory fields (state_dir, workspace, service.home) only get
    values without '/': a '/' makes a nested path, and the tool creates the missing parents of a state dir as
    root with mode 0700, which the gateway cannot enter (a separate finding, not what is tested here)."""

    ctl: Path  # controller-side files (secret files, identity files, known_hosts) live under here
    values: list[Hostile]

    @staticmethod
    def state_dir(v: str) -> str:
        return "~/" + v

    @staticmethod
    def workspace(v: str) -> str:
        return "~/" + v + "/" + v

    @staticmethod
    def config_path(v: str) -> str:
        return "/srv/ocs-cfg/" + v

    @staticmethod
    def env_file(v: str) -> str:
        return "/srv/ocs-env/" + v

    @staticmethod
    def home(v: str) -> str:
        return "/home/" + v

    def secret_file(self, v: str) -> Path:
        return self.ctl / "secret" / v

    def identity_file(self, v: str) -> Path:
        return self.ctl / "id" / v

    def known_hosts(self, v: str) -> Path:
        return self.ctl / "kh" / v

    @staticmethod
    def secret_value(k: int) -> str:
        return f"file-secret-{TAG}-{k}"

    def create_controller_files(self, host: LabHost) -> None:
        for k, h in enumerate(self.values):
            for path, data, mode in ((self.secret_file(h.value), self.secret_value(k) + "\n", 0o600),
                                     (self.identity_file(h.value), host.key_path.read_text(), 0o600),
                                     (self.known_hosts(h.value), host.known_hosts_line, 0o644)):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(data)
                path.chmod(mode)


DIR_FIELDS = ("state_dir", "workspace", "service.home")
# (field, value) pairs that systemd itself reads differently from how the unit file writes them; each is tried on
# its own in test_paths_systemd_reads_differently_are_refused_or_still_work instead of in the big apply
SYSTEMD_EDGES = [("state_dir", "trail "), ("state_dir", "end\\"), ("state_dir", "*?[ab]"), ("env_file", "trail "),
                 ("env_file", "end\\"), ("env_file", "*?[ab]"), ("env_file", "back\\slash")]


def unit_setting_edge(path: str) -> bool:
    """A path WorkingDirectory= or EnvironmentFile= would not read as written: systemd strips trailing whitespace
    and joins a line ending in a backslash with the next one."""
    return path != path.rstrip() or path.endswith("\\")


def env_file_edge(path: str) -> bool:
    """EnvironmentFile= also takes its path as a wildcard pattern (glob(3): `*`, `?`, `[`, and `\\` escapes)."""
    return unit_setting_edge(path) or any(c in path for c in "*?[\\")


def instance_fields(lay: Layout, v: str, *, health: bool) -> list[tuple[str, dict[str, Any]]]:
    """(field, the instance keys that put `v` there) for every instance-level field."""
    items: list[tuple[str, dict[str, Any]]] = [
        ("state_dir", {"state_dir": lay.state_dir(v)}),
        ("workspace", {"workspace": lay.workspace(v)}),
        ("config_path", {"config_path": lay.config_path(v)}),
        ("env_file", {"env_file": lay.env_file(v)}),
        ("env", {"env": {"OCS_HOSTILE": v}}),
        ("config", {"config": {"messages": {"responsePrefix": v}, "agents": {"defaults": {"params": {v: v}}}}}),
        ("secret-file", {"secrets": {"OCS_SECRET_FILE": {"file": str(lay.secret_file(v))}}}),
    ]
    if health:
        items.append(("health.path", {"health": {"path": "/" + v, "timeout": 30}}))
    return [(f, frag) for f, frag in items if not (f in DIR_FIELDS and "/" in v)]


def matrix_doc(lay: Layout, inc: Callable[[Pair], bool]) -> Doc:
    """Every field that ends up in a path, a unit file or a shell script on a host (or in a path on the
    controller), with every hostile value, each pair on its own line."""
    d = Doc()
    d.add(0, "version: 1")
    d.add(0, "openclaw:")
    d.add(2, f"version: {y(VERSION)}")
    d.add(2, "command:")
    d.add(4, f"- {y(WRAP_PATH)}")
    for k, h in enumerate(lay.values):
        if inc(("command-arg", k)):
            d.add(4, f"- {y(h.value)}", ("command-arg", k))
    d.add(0, "defaults:")
    d.add(2, "service: {manager: systemd, user: openclaw}")
    d.add(0, "hosts:")
    d.add(2, "gw:")
    d.add(4, 'address: "192.0.2.10"')
    d.add(4, "instances:")
    for k, h in enumerate(lay.values):
        d.add(6, f"c{k:02d}:")
        d.add(8, f"port: {20000 + 150 * k}")
        for fld, frag in instance_fields(lay, h.value, health=True):
            if inc((fld, k)):
                for key, val in frag.items():
                    d.add(8, f"{key}: {json.dumps(val, ensure_ascii=False)}", (fld, k))
    for k, h in enumerate(lay.values):
        if inc(("instance-name", k)):
            d.add(6, f"{y(h.value)}: {{port: {26000 + 150 * k}}}", ("instance-name", k))
        if inc(("profile", k)):
            d.add(6, f"p{k:02d}: {{port: {30000 + 150 * k}, profile: {y(h.value)}}}", ("profile", k))
        if inc(("unit", k)):
            d.add(6, f"u{k:02d}: {{port: {34000 + 150 * k}, unit: {y(h.value + '.service')}}}", ("unit", k))
        if inc(("env-name", k)):
            d.add(6, f"n{k:02d}: {{port: {38000 + 150 * k}, env: {{{y(h.value)}: x}}}}", ("env-name", k))
        if inc(("secret-name", k)):
            d.add(6, f"s{k:02d}: {{port: {42000 + 150 * k}, secrets: {{{y(h.value)}: {{env: {SECRET_SOURCE[0]}}}}}}}",
                  ("secret-name", k))
    for k, h in enumerate(lay.values):
        v = h.value
        d.add(2, f"k{k:02d}:")
        if inc(("address", k)):
            d.add(4, f"address: {y(v)}", ("address", k))
        else:
            d.add(4, f'address: "192.0.2.{11 + k}"')
        svc = [(f, t) for f, t in (("service.home", f"home: {y(lay.home(v))}"), ("service.user", f"user: {y(v)}"),
                                   ("service.group", f"group: {y(v)}"))
               if inc((f, k)) and not (f in DIR_FIELDS and "/" in v)]
        if svc:
            d.add(4, "service:")
            for f, t in svc:
                d.add(6, t, (f, k))
        ssh = [(f, t) for f, t in (("ssh.identity_file", f"identity_file: {y(str(lay.identity_file(v)))}"),
                                   ("ssh.known_hosts", f"known_hosts: {y(str(lay.known_hosts(v)))}")) if inc((f, k))]
        if ssh:
            d.add(4, "ssh:")
            for f, t in ssh:
                d.add(6, t, (f, k))
        d.add(4, "instances: {main: {port: 18789}}")
        if inc(("host-name", k)):
            d.add(2, f"{y(v)}:", ("host-name", k))
            d.add(4, f'address: "198.51.100.{11 + k}"')
            d.add(4, "instances: {main: {port: 18789}}")
    return d


def classify(cli: Cli, tmp_path: Path, build: Callable[[Callable[[Pair], bool]], Doc]
             ) -> tuple[dict[Pair, list[str]], set[Pair]]:
    """Validate, drop the pairs an error points at, validate again, until the rest is valid. Every error must be
    located (file:line:col) on the line of one hostile value."""
    rejected: dict[Pair, list[str]] = {}
    for attempt in range(6):
        doc = build(lambda p: p not in rejected)
        path = tmp_path / f"matrix-{attempt}.yaml"
        path.write_text(doc.text(), encoding="utf-8")
        r = cli("validate", str(path))
        errors = located_errors(r, str(path))
        if not errors:
            assert r.returncode == 0, tail(r)
            return rejected, set(doc.where.values())
        assert r.returncode == 1, tail(r)
        for line, col, msg in errors:
            assert line in doc.where, (f"error not at a hostile value: {path}:{line}:{col}: {msg}\n"
                                       f"  that line: {doc.lines[line - 1] if line <= len(doc.lines) else '?'}")
            rejected.setdefault(doc.where[line], []).append(msg)
    raise AssertionError("validate kept finding new errors")


def apply_doc(host: LabHost, lay: Layout, ok: Callable[[Pair], bool], ci: int) -> tuple[dict[str, Any], list[str]]:
    """One host, one instance per hostile value holding every field that value was accepted in; and what was left
    out for test_paths_systemd_reads_differently_are_refused_or_still_work."""
    moved: list[str] = []
    vals = lay.values
    combined = vals[ci].value
    ssh = lab_ssh(host)
    if ok(("ssh.identity_file", ci)):
        ssh["identity_file"] = str(lay.identity_file(combined))
    if ok(("ssh.known_hosts", ci)):
        ssh["known_hosts"] = str(lay.known_hosts(combined))
    service: dict[str, Any] = {"manager": "systemd", "user": "openclaw"}
    if ok(("service.home", ci)):
        service["home"] = lay.home(combined)
    instances: dict[str, Any] = {"main": {"port": 18789}}
    for k, h in enumerate(vals):
        inst: dict[str, Any] = {"port": 20000 + 150 * k}
        for fld, frag in instance_fields(lay, h.value, health=False):
            if ok((fld, k)):
                inst.update(frag)
        # what systemd reads differently is tried in test_paths_systemd_reads_differently_...: keep it out of here
        if unit_setting_edge(inst.get("state_dir", "")):
            moved.append(f"state_dir {inst.pop('state_dir')!r}")
        state_dir = expand(inst.get("state_dir", f"~/.openclaw-c{k:02d}"), service.get("home", "/home/openclaw"))
        env_file = inst.get("env_file", f"{state_dir}/gateway.env")
        if env_file_edge(env_file):
            moved.append(f"env file {env_file!r}")
            inst["env_file"] = f"/srv/ocs-env/plain-c{k:02d}"
        instances[f"c{k:02d}"] = inst
        if ok(("instance-name", k)):
            instances[h.value] = {"port": 26000 + 150 * k}
        if ok(("profile", k)):
            instances[f"p{k:02d}"] = {"port": 30000 + 150 * k, "profile": h.value}
        if ok(("unit", k)):
            instances[f"u{k:02d}"] = {"port": 34000 + 150 * k, "unit": h.value + ".service"}
        if ok(("env-name", k)):
            instances[f"n{k:02d}"] = {"port": 38000 + 150 * k, "env": {h.value: "x"}}
        if ok(("secret-name", k)):
            instances[f"s{k:02d}"] = {"port": 42000 + 150 * k, "secrets": {h.value: {"env": SECRET_SOURCE[0]}}}
    args = [h.value for k, h in enumerate(vals) if ok(("command-arg", k))]
    return {"version": 1, "openclaw": {"version": VERSION, "command": [WRAP_PATH, *args]},
            "defaults": {"ssh": ssh, "service": service, "instance": {"health": {"timeout": 60}}},
            "hosts": {"gw": {"address": host.address, "instances": instances}}}, moved


@dataclass
class Expect:
    """What one gateway instance must have been given on the host."""

    profile: str
    unit: str
    state_dir: str
    workspace: str
    config_path: str
    env_file: str
    env: dict[str, str]
    config_value: str | None


def expand(path: str, home: str) -> str:
    return home + path[1:] if path.startswith("~/") else path


def expectations(doc: dict[str, Any]) -> list[Expect]:
    home = doc["defaults"]["service"].get("home", "/home/openclaw")
    out = []
    for name, inst in doc["hosts"]["gw"]["instances"].items():
        profile = inst.get("profile", name)
        sd = expand(inst.get("state_dir", f"~/.openclaw-{profile}"), home)
        env = {"OPENCLAW_STATE_DIR": sd, "HOME": home, **inst.get("env", {})}
        for var, ref in inst.get("secrets", {}).items():
            env[var] = Path(ref["file"]).read_text().rstrip("\r\n") if "file" in ref else SECRET_SOURCE[1]
        cfg = inst.get("config_path", f"{sd}/openclaw.json")
        env["OPENCLAW_CONFIG_PATH"] = cfg
        out.append(Expect(profile, inst.get("unit", f"openclaw-gateway-{profile}.service"), sd,
                          expand(inst.get("workspace", f"{sd}/workspace"), home), cfg,
                          inst.get("env_file", f"{sd}/gateway.env"), env,
                          inst["config"]["messages"]["responsePrefix"] if "config" in inst else None))
    return out


def check_delivered(host: LabHost, exp: list[Expect], args: list[str]) -> list[str]:
    """Each path exists under its exact name, each value arrived byte for byte, where the gateway reads it."""
    paths = [p for e in exp for p in (e.state_dir, e.workspace, e.config_path, e.env_file,
                                      f"/etc/systemd/system/{e.unit}")]
    facts = host_facts(host, paths)
    missing = [p for p in paths if facts["stat"][p] is None]
    assert missing == [], f"not on the host under their exact names: {missing}"
    problems: list[str] = []
    for e in exp:
        for p, kind, mode in ((e.state_dir, "dir", 0o700), (e.workspace, "dir", 0o700), (e.config_path, "file", 0o600),
                              (e.env_file, "file", 0o600)):
            st = facts["stat"][p]
            if st != [kind, mode, "openclaw"]:
                problems.append(f"{e.profile}: {p!r} is {st}, wanted {[kind, mode, 'openclaw']}")
        rec = facts["records"].get(record_key(e.profile))
        if rec is None:
            problems.append(f"{e.profile}: the gateway never started")
            continue
        if rec["extra"] != args:
            problems.append(f"{e.profile}: argv {rec['extra']!r} != {args!r}")
        if rec["cwd"] != e.state_dir:
            problems.append(f"{e.profile}: working directory {rec['cwd']!r} != {e.state_dir!r}")
        for var, want in e.env.items():
            if rec["env"].get(var) != want:
                problems.append(f"{e.profile}: ${var} = {rec['env'].get(var)!r}, wanted {want!r}")
        if e.config_value is not None:
            cfg = json5.loads(host.read_file(e.config_path).decode("utf-8"))
            if cfg["messages"]["responsePrefix"] != e.config_value or cfg["agents"]["defaults"]["params"] != {
                    e.config_value: e.config_value} or cfg["agents"]["defaults"]["workspace"] != e.workspace:
                problems.append(f"{e.profile}: config values differ: {cfg['messages']} {cfg['agents']}")
    return problems


def test_hostile_names_and_paths_are_refused_with_a_location_or_delivered_literally_and_never_run(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path) -> None:
    """Every hostile value in every field that ends up in a path, a unit file or a shell script: `validate` either
    refuses it with an error located on its own line, or it is applied to a host, where each path exists under its
    exact name and each value reaches the gateway (argv, working directory, environment, config) and `gateway
    status` byte for byte; a second plan is empty; and no payload ran, on the host or on the controller."""
    host = make_host("systemd")
    prepare_host(host)
    cli = Cli(lab, tmp_path, dict([SECRET_SOURCE]))
    values = hostile_values()
    ci = next(k for k, h in enumerate(values) if h.name == "combined")
    lay = Layout(tmp_path / "ctl", values)
    lay.create_controller_files(host)

    # 1. validate decides: every refusal is located on the hostile value's own line
    rejected, accepted = classify(cli, tmp_path, lambda inc: matrix_doc(lay, inc))
    assert rejected, "nothing hostile was refused (newlines and tabs at least should be)"
    assert len(accepted) >= 40, f"too few hostile values accepted to prove anything: {sorted(accepted)}"

    # 2. what was accepted goes onto a host
    doc, moved = apply_doc(host, lay, lambda p: p in accepted, ci)
    inv = write_yaml(tmp_path / "hostile.yaml", doc)
    r = cli("validate", inv)
    assert r.returncode == 0, tail(r)
    r = cli("apply", inv, "--yes")
    assert r.returncode == 0, tail(r)
    args = doc["openclaw"]["command"][1:]
    exp = expectations(doc)
    # from here on every check runs and reports, so that one wrong value does not hide the others
    problems = check_delivered(host, exp, args)
    r = cli("plan", inv, "--detailed-exitcode")  # the probe reads every hostile path back: nothing left to do
    if r.returncode != 0:
        problems.append(f"a second plan is not empty (a path read back wrongly?):\n{tail(r, 1500)}")

    # the files are byte for byte what `render` makes of the inventory
    out = tmp_path / "rendered"
    assert cli("render", inv, "--out", str(out)).returncode == 0
    for e in exp:
        for p in (e.config_path, f"/etc/systemd/system/{e.unit}"):
            if host.read_file(p) != (out / "gw" / p.lstrip("/")).read_bytes():
                problems.append(f"{p!r} on the host differs from what `render` wrote")

    # `status` runs `openclaw gateway status` as each instance, with its env file sourced by sh
    clear_records(host)
    r = cli("status", inv, "--json")
    if r.returncode != 0 or json.loads(r.stdout)["healthy"] is not True:
        problems.append(f"status is not healthy:\n{tail(r, 1500)}")
    records = host_facts(host, [])["records"]
    for e in exp:
        rec = records.get(record_key(e.profile, "status"))
        if rec is None or rec["extra"] != args:
            problems.append(f"{e.profile}: `gateway status` did not run with the hostile arguments: {rec}")
            continue
        for var, want in e.env.items():
            if rec["env"].get(var) != want:
                problems.append(f"{e.profile} (status): ${var} = {rec['env'].get(var)!r}, wanted {want!r}")

    # health paths are only asked over HTTP: `status` with the hostile ones the schema lets through
    with_health = json.loads(json.dumps(doc))
    asked = []
    for k in range(len(values)):
        if ("health.path", k) in accepted:
            with_health["hosts"]["gw"]["instances"][f"c{k:02d}"]["health"] = {"path": "/" + values[k].value}
            asked.append(f"c{k:02d}")
    r = cli("status", write_yaml(tmp_path / "health.yaml", with_health), "--json", "--no-openclaw-status")
    ready = {i["instance"]: i["readyz"] for i in json.loads(r.stdout)["instances"]}
    if not all(ready[name] == "404" for name in asked):
        problems.append(f"hostile health paths were not asked as written: {ready}")

    # the release prefix (openclaw.install) is probed by `plan`
    prefix = "/opt/ocs " + values[ci].value
    with_install = json.loads(json.dumps(doc))
    with_install["openclaw"]["install"] = {"source": "push", "prefix": prefix}
    inv3 = write_yaml(tmp_path / "install.yaml", with_install)
    r = cli("validate", inv3)
    if r.returncode == 0:
        r = cli("plan", inv3, "--json")
        targets = [c["target"] for h in json.loads(r.stdout)["hosts"] for c in h["changes"]] if r.stdout else []
        if r.returncode != 0 or f"{prefix}/{VERSION}" not in targets:
            problems.append(f"plan with install.prefix {prefix!r}: {targets}\n{tail(r, 800)}")
    else:
        assert located_errors(r, inv3), tail(r)

    counts: dict[str, list[str]] = {}
    for fld, k in sorted(accepted | set(rejected)):
        counts.setdefault(fld, []).append(("+" if (fld, k) in accepted else "-") + values[k].name)
    print("\nhostile values per field (+ accepted, - refused with a location):")
    for fld, names in counts.items():
        print(f"  {fld}: {' '.join(names)}")
    print("  left to test_paths_systemd_reads_differently_...: " + "; ".join(moved))

    # 3. nothing ran, anywhere
    assert executed_on_host(host) == []
    assert executed_on_controller(tmp_path) == []
    assert problems == [], "accepted hostile values that did not arrive as written:\n" + "\n".join(problems)


# ---- values systemd reads differently ------------------------------------------------------------------------

def single_host_doc(host: LabHost, instances: dict[str, Any], command: list[str] | None = None,
                    health_timeout: float = 30, **extra: Any) -> dict[str, Any]:
    return {"version": 1, "openclaw": {"version": VERSION, "command": command or [WRAP_PATH]},
            "defaults": {"ssh": lab_ssh(host), "service": {"manager": "systemd", "user": "openclaw"},
                         "instance": {"health": {"timeout": health_timeout}}},
            **extra, "hosts": {"gw": {"address": host.address, "instances": instances}}}


def edge_instance(fld: str, v: str) -> dict[str, Any]:
    where = {"state_dir": Layout.state_dir(v)} if fld == "state_dir" else {"env_file": Layout.env_file(v)}
    return {**where, "env": {"OCS_HOSTILE": "delivered"}}


def edge_doc(inc: Callable[[Pair], bool]) -> Doc:
    d = Doc()
    for line in ("version: 1", f"openclaw: {{version: {y(VERSION)}, command: [{y(WRAP_PATH)}]}}", "hosts:", "  gw:",
                 '    address: "192.0.2.10"', "    instances:"):
        d.add(0, line)
    for i, (fld, v) in enumerate(SYSTEMD_EDGES):
        d.add(6, f"e{i}:")
        d.add(8, f"port: {20000 + 150 * i}")
        if inc((fld, i)):
            for key, val in edge_instance(fld, v).items():
                d.add(8, f"{key}: {json.dumps(val, ensure_ascii=False)}", (fld, i))
    return d


def test_paths_systemd_reads_differently_are_refused_or_still_work(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path) -> None:
    """systemd strips a setting's trailing whitespace, joins a line ending in a backslash with the next one, and
    reads EnvironmentFile= as a wildcard pattern; WorkingDirectory= and EnvironmentFile= take the path unquoted.
    A state dir or env file path that systemd would read differently must be refused by validate, or reach the
    gateway intact (an env file that silently does not load leaves the gateway without its secrets)."""
    host = make_host("systemd")
    prepare_host(host)
    cli = Cli(lab, tmp_path)
    rejected, accepted = classify(cli, tmp_path, edge_doc)
    # what keeps a gateway from starting (a working directory that is not there, a line joined with the next one)
    # would fail the whole apply and hide the rest: those get applies of their own, one per field
    def breaks(p: Pair) -> bool:
        v = SYSTEMD_EDGES[p[1]][1]
        return v.endswith("\\") or (p[0] == "state_dir" and unit_setting_edge(v))

    alone = [sorted(p for p in accepted if breaks(p) and p[0] == fld) for fld in ("state_dir", "env_file")]
    batches = [*alone, sorted(p for p in accepted if not breaks(p))]
    problems = []
    for n, batch in enumerate(b for b in batches if b):
        clear_records(host)
        insts = {f"e{i}": {"port": 20000 + 150 * i, **edge_instance(fld, SYSTEMD_EDGES[i][1])} for fld, i in batch}
        # a gateway that cannot start costs the whole health timeout: short for the cases that may break the unit
        inv = write_yaml(tmp_path / f"edge-{n}.yaml",
                         single_host_doc(host, insts, health_timeout=5 if batch in alone else 30))
        r = cli("apply", inv, "--yes")
        if r.returncode != 0:
            what = ", ".join(f"{fld} {insts[f'e{i}'][fld]!r}" for fld, i in batch)
            problems.append(f"{what}: accepted by validate, but apply failed:\n{tail(r, 700)}")
            continue
        records = host_facts(host, [])["records"]
        for fld, i in batch:
            inst = insts[f"e{i}"]
            rec = records.get(record_key(f"e{i}"))
            want = {"cwd": expand(inst.get("state_dir", f"~/.openclaw-e{i}"), "/home/openclaw"),
                    "OCS_HOSTILE": "delivered"}
            got = rec and {"cwd": rec["cwd"], "OCS_HOSTILE": rec["env"].get("OCS_HOSTILE")}
            if got != want:
                unit = host.read_file(f"/etc/systemd/system/openclaw-gateway-e{i}.service").decode()
                settings = [ln for ln in unit.splitlines() if ln.startswith(("EnvironmentFile=", "WorkingDirectory="))]
                problems.append(f"{fld} {inst[fld]!r}: accepted and applied, but the gateway got {got}, wanted {want} "
                                f"(the unit says {settings})")
    print(f"\nsystemd edge paths: refused {sorted(rejected)}, accepted {sorted(accepted)}")
    assert problems == [], "\n".join(problems)
    assert executed_on_host(host) == []


def test_executable_paths_systemd_takes_differently_are_refused_or_still_work(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path) -> None:
    """The first word of ExecStart= is the program: systemd refuses quotes and backslashes in it and expands no
    `$$` there. A command path with such characters must be refused by validate, or run as written."""
    host = make_host("systemd")
    exes = {"quotes-and-backslash": "/opt/it's \"q\" back\\slash/ocs-wrap",
            "dollar": f"/opt/$(touch /tmp/{marker('exe')}) $HOME/ocs-wrap"}
    prepare_host(host, exes.values())
    cli = Cli(lab, tmp_path)
    problems = []
    for name, exe in exes.items():
        clear_records(host)
        inv = write_yaml(tmp_path / f"{name}.yaml", single_host_doc(host, {"main": {"port": 18789}}, [exe],
                                                                        health_timeout=5))
        r = cli("validate", inv)
        if r.returncode != 0:
            assert located_errors(r, inv), tail(r)
            continue
        r = cli("apply", inv, "--yes")
        rec = host_facts(host, [])["records"].get(record_key("main"))
        if r.returncode != 0 or rec is None or rec["argv0"] != exe:
            problems.append(f"{name}: command {exe!r} accepted by validate, but apply exited {r.returncode} and the "
                            f"gateway ran as {rec and rec['argv0']!r}:\n{tail(r, 600)}")
    assert problems == [], "\n".join(problems)
    assert executed_on_host(host) == []


# ---- the dedupe directory and its mount ----------------------------------------------------------------------

def test_dedupe_verify_treats_the_directory_name_as_data(make_host: Callable[..., LabHost], lab: Lab,
                                                         tmp_path: Path) -> None:
    host = make_host("systemd")
    prepare_host(host)
    cli = Cli(lab, tmp_path)
    d = f"/srv/ocs-claims $(touch /tmp/{marker('dd1')}) `touch /tmp/{marker('dd2')}` 'q' \"d\" ü"
    inv = write_yaml(tmp_path / "dedupe.yaml", single_host_doc(
        host, {"main": {"port": 18789}}, dedupe={"dir": d, "configure_gateway": False}))
    r = cli("validate", inv)
    if r.returncode != 0:
        assert located_errors(r, inv), tail(r)
        return
    r = cli("apply", inv, "--yes")
    assert r.returncode == 0, tail(r)
    host.run(["install", "-d", "-m", "0777", "--", d])  # the operator's (or the mount's) job; verify checks it
    r = cli("dedupe", "verify", inv)
    assert f"{d} exists on every host" in both(r), tail(r)
    assert executed_on_host(host) == [], f"`dedupe verify` ran what the directory name holds:\n{tail(r, 1500)}"


def test_an_sshfs_identity_file_stays_one_mount_option(make_host: Callable[..., LabHost], lab: Lab,
                                                       tmp_path: Path) -> None:
    """Mount options are comma-separated and sshfs runs its `ssh_command` option: a path must not add options.
    The mount's source is hostile too (What= takes it as one word)."""
    host = make_host("systemd")
    prepare_host(host)
    cli = Cli(lab, tmp_path)
    identity = f"/root/.ssh/id ed25519,ssh_command=sh -c >/tmp/{marker('mnt')}"
    source = f"{host.address}:/export/sp ace 'q' \"d\" $(touch /tmp/{marker('src')}) `touch /tmp/{marker('src2')}`"
    inv = write_yaml(tmp_path / "mount.yaml", single_host_doc(
        host, {"main": {"port": 18789}}, dedupe={"dir": "/srv/ocs-claims", "configure_gateway": False, "mount": {
            "type": "sshfs", "source": source, "identity_file": identity}}))
    r = cli("validate", inv)
    if r.returncode != 0:
        assert located_errors(r, inv), tail(r)
        return
    out = tmp_path / "rendered"
    assert cli("render", inv, "--out", str(out)).returncode == 0
    unit = next((out / "gw" / "etc/systemd/system").glob("*.mount")).read_text()
    assert f"What={source}" in unit.splitlines(), unit
    options_line = next(line for line in unit.splitlines() if line.startswith("Options="))
    options = [o.replace("\\,", ",") for o in re.split(r"(?<!\\),", options_line.removeprefix("Options="))]
    cli("apply", inv, "--yes")  # the mount cannot succeed (nothing serves that path); what matters is what ran
    ran = executed_on_host(host)
    assert f"IdentityFile={identity}" in options and not any(o.startswith("ssh_command=") for o in options), (
        f"the identity file path became mount options: {options_line}; ran on the host: {ran}")
    assert ran == []
