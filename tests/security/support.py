"""What the security tests share: the CLI as an operator runs it, inventories, the recording wrapper around the
stand-in gateway and what it recorded, and the search for anything a hostile payload made if it ever ran."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import REPO, Provision
from tests.support.lab_cli import STANDIN_PATH, install_standin

VERSION = "2026.9.6"
TAG = uuid.uuid4().hex[:8]  # this run's payload markers; other runs (and other engineers' tests) use other names
RECORDS = "/var/tmp/ocs-wrap"  # where the recording wrapper writes, on a host
WRAP_PATH = "/usr/local/bin/ocs-recording-wrapper"
DIAG = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<level>error|warning): (?P<msg>.*)$")


def marker(word: str) -> str:
    """The file a payload creates if it is ever executed."""
    return f"pwned-{TAG}-{word}"


# ---- running the CLI ------------------------------------------------------------------------------------------

def operator_cli(lab: Lab, cwd: Path, env: Mapping[str, str] | None = None) -> Provision:
    """The real CLI as an operator runs it, from the lab's client namespace; every output is kept for scanning, and
    a traceback fails the test. Its cache goes to <cwd>/cache (XDG_CACHE_HOME), so what it writes there can be
    inspected."""
    return Provision(cwd, lab=lab, env={"XDG_CACHE_HOME": str(cwd / "cache"), **(env or {})}, timeout=240,
                     forbid_traceback=True)


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


def single_host_doc(host: LabHost, instances: dict[str, Any], command: list[str] | None = None,
                    health_timeout: float = 30, **extra: Any) -> dict[str, Any]:
    return {"version": 1, "openclaw": {"version": VERSION, "command": command or [WRAP_PATH]},
            "defaults": {"ssh": lab_ssh(host), "service": {"manager": "systemd", "user": "openclaw"},
                         "instance": {"health": {"timeout": health_timeout}}},
            **extra, "hosts": {"gw": {"address": host.address, "instances": instances}}}
