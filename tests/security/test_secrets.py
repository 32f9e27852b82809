"""A canary secret is in no CLI output, saved plan, cache or controller file, in no process's argv (nor, but for
the gateway and provision itself, its environment), and on the host only in the 0600 env file and its backup."""

from __future__ import annotations

import base64
import json
import os
import posixpath
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisioner.remote.scripts.trust import BACKUP_DIR
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.security.support import VERSION, lab_ssh, operator_cli, tail, write_yaml
from tests.support.cli import Provision
from tests.support.lab_cli import STANDIN_PATH, install_standin

pytestmark = pytest.mark.lab


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

    def run(self, cli: Provision, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
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
    cli = operator_cli(lab, tmp_path, {"OCS_CANARY_TOKEN": canary})
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
    # the backup of a file in the service user's tree stays in that tree, beside the file (remote/scripts/trust.py)
    allowed = {env_path, posixpath.join(posixpath.dirname(env_path), BACKUP_DIR, posixpath.basename(env_path))}
    assert set(holders) <= allowed, f"secret found on the host outside the env file: {holders}"
    assert env_path in holders
    for p in holders:
        mode_owner = host.run(["stat", "-c", "%a %U", "--", p]).stdout.split()
        assert mode_owner[0] == "600", f"{p} holds a secret with mode {mode_owner}"
    assert holders[env_path] <= {canary, from_file}  # the rotated one went back with the failed apply
