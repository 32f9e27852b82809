"""Starting one host: its upper dir (keys, sshd config), its namespaces, and sshd or systemd as its PID 1."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .config import SHARED_MOUNT, LabConfig
from .hosts import Kind
from .netns import NETNS_DIR

SSHD_DROPIN = """\
# written by tests/lab
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 200:30:400
MaxSessions 100
"""
# NB: no "Subsystem" line: Debian's sshd_config already defines sftp and a second one is a fatal error.


@dataclass(frozen=True)
class HostSpec:
    """What to start: everything `start` needs, nothing it has to look up."""

    name: str
    kind: Kind
    address: str
    dir: Path
    shared: bool
    bind_ro: dict[str, str]
    bridge_ns: str = ""  # the namespace whose bridge eth0 plugs into; "" for the control namespace


def prepare_upper(cfg: LabConfig, spec: HostSpec) -> str:
    """Write the host's identity into its (not yet mounted) upper dir; return its public host key."""
    up = spec.dir / "upper"
    for d in ("etc/ssh/sshd_config.d", "root/.ssh", "home/lab/.ssh", "srv/shared"):
        (up / d).mkdir(parents=True, exist_ok=True)
    (spec.dir / "work").mkdir(exist_ok=True)
    (spec.dir / "root").mkdir(exist_ok=True)
    key = spec.dir / "ssh_host_ed25519_key"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", spec.name, "-f", str(key)],
                       check=True)
    for src in (key, key.with_suffix(".pub")):
        shutil.copy(src, up / "etc/ssh" / src.name)
    (up / "etc/ssh/ssh_host_ed25519_key").chmod(0o600)
    (up / "etc/ssh/sshd_config.d/00-ocp-lab.conf").write_text(SSHD_DROPIN)
    (up / "etc/machine-id").write_text(os.urandom(16).hex() + "\n")
    (up / "etc/hostname").write_text(spec.name + "\n")
    authorized = cfg.client_key.with_suffix(".pub").read_text() + cfg.peer_key.with_suffix(".pub").read_text()
    for home in ("root", "home/lab"):
        (up / home / ".ssh/authorized_keys").write_text(authorized)
        (up / home / ".ssh").chmod(0o700)
    # root's own key: lets a host log into another (the sshfs exporter) without the test client's key
    shutil.copy(cfg.peer_key, up / "root/.ssh/id_ed25519")
    (up / "root/.ssh/id_ed25519").chmod(0o600)
    for dirpath, _dirs, files in os.walk(up / "home/lab"):
        for p in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
            os.chown(p, 1000, 1000)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def _binds(cfg: LabConfig, spec: HostSpec) -> list[tuple[str, str, bool]]:
    """(source, target inside, read_only) for every bind mount of the host."""
    binds = [(str(cfg.etc_hosts), "/etc/hosts", True),
             (str(cfg.hosts_known_hosts), "/etc/ssh/ssh_known_hosts", True)]
    if spec.shared:
        binds.append((str(cfg.shared_dir), SHARED_MOUNT, False))
    binds += [(src, dst, True) for src, dst in spec.bind_ro.items()]
    return binds


def _plain_init(cfg: LabConfig, spec: HostSpec) -> str:
    """Script run as PID 1 of the host's new namespaces: builds its root, then becomes sshd."""
    q = shlex.quote
    r = spec.dir / "root"
    lines = [
        "#!/bin/sh",
        f"# {spec.name}: PID 1 of its own mount/UTS/IPC/PID namespaces until it execs sshd",
        "set -e",
        # copies of /run/netns/* would keep other hosts' namespaces alive as long as this host lives
        "umount -l /run/netns 2>/dev/null || true",
        f"R={q(str(r))}",
        f"mount -t overlay ocp-{spec.name} -o lowerdir={cfg.base_dir},upperdir={spec.dir}/upper,"
        f"workdir={spec.dir}/work \"$R\"",
        'mount -t proc proc "$R/proc"',
        # a sysfs of our own shows this host's network devices, not the lab machine's
        'mount -t sysfs sysfs "$R/sys" || mount --rbind /sys "$R/sys"',
        'mount --rbind /dev "$R/dev"',  # /dev/fuse included: sshfs works
        'mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"',
        'mount --bind "$R/dev/pts/ptmx" "$R/dev/ptmx"',
        'mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"',
        'mount -t tmpfs -o mode=755 tmpfs "$R/run"',
        'mkdir -p "$R/run/sshd" "$R/run/lock"',
    ]
    for src, dst, ro in _binds(cfg, spec):
        target = f'"$R"{q(dst)}'
        make = f"mkdir -p {target}" if os.path.isdir(src) else f"mkdir -p \"$(dirname {target})\"; touch {target}"
        lines += [f"[ -e {target} ] || {{ {make}; }}",
                  f"mount --bind {'-o ro ' if ro else ''}{q(src)} {target}"]
    lines += [f"hostname {q(spec.name)}", "cd /", 'exec chroot "$R" /usr/sbin/sshd -D -e', ""]
    return "\n".join(lines)


def _nspawn_boot(cfg: LabConfig, spec: HostSpec) -> str:
    """Script run in a private mount namespace: mounts the root, then execs systemd-nspawn --boot."""
    q = shlex.quote
    args = ["systemd-nspawn", "-q", "-D", str(spec.dir / "root"), "-M", spec.name, "--boot",
            # no D-Bus/systemd on the lab machine: don't ask it for a scope or to register the machine
            "--register=no", "--keep-unit",
            # join the namespace we were started in (set up by the launcher); /run/netns is unmounted below
            "--network-namespace-path=/proc/self/ns/net",
            "--link-journal=no", "--console=read-only", "--bind=/dev/fuse"]
    args += [f"--bind{'-ro' if ro else ''}={src}:{dst}" for src, dst, ro in _binds(cfg, spec)]
    return "\n".join([
        "#!/bin/sh",
        f"# {spec.name}: private mount namespace of its systemd-nspawn",
        "set -e",
        "umount -l /run/netns 2>/dev/null || true",
        # nspawn keeps lock/propagation dirs in /run/systemd and refuses to clean them on a disk-backed /run
        "mkdir -p /run/systemd && mount -t tmpfs ocp-nspawn-run /run/systemd",
        # mounted in this private namespace only: the overlay vanishes with the host, whatever kills it
        f"mount -t overlay ocp-{spec.name} -o lowerdir={cfg.base_dir},upperdir={spec.dir}/upper,"
        f"workdir={spec.dir}/work {q(str(spec.dir / 'root'))}",
        "exec " + shlex.join(args), ""])


def _launcher(cfg: LabConfig, spec: HostSpec, inner: list[str]) -> str:
    """Entry script: own cgroup, the host's network namespace, then `inner`."""
    cgroups = " ".join(shlex.quote(str(c)) for c in procs.host_cgroups(cfg.cgroup_name, spec.name))
    return "\n".join([
        "#!/bin/sh",
        f"# {spec.name}: started by tests/lab; its processes are recorded in pids.json and in the cgroups below",
        "set -e",
        f"for cg in {cgroups}; do mkdir -p \"$cg\"; echo $$ > \"$cg/cgroup.procs\"; done",
        f"exec nsenter --net={NETNS_DIR / spec.name} " + shlex.join(inner), ""])


def start(cfg: LabConfig, spec: HostSpec) -> subprocess.Popen[bytes]:
    """Start the host in the background (own session: a Ctrl-C in the terminal reaches only the harness)."""
    if spec.kind == "ssh":
        (spec.dir / "init.sh").write_text(_plain_init(cfg, spec))
        inner = ["unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child",
                 "--propagation", "private", "sh", str(spec.dir / "init.sh")]
    else:
        (spec.dir / "boot.sh").write_text(_nspawn_boot(cfg, spec))
        inner = ["unshare", "--mount", "--propagation", "private", "sh", str(spec.dir / "boot.sh")]
    (spec.dir / "start.sh").write_text(_launcher(cfg, spec, inner))
    log = open(spec.dir / "console.log", "ab")  # noqa: SIM115 -- handed to the child
    try:
        return subprocess.Popen(["sh", str(spec.dir / "start.sh")], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()

