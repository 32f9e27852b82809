"""The read-only Debian 12 base rootfs every lab host overlays: built once with debootstrap, then cached."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from .config import LabConfig

SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2", "sudo", "procps",
            "sshfs", "fuse3", "ca-certificates")
STAMP = ".ocp-lab-base-ok"
# Bump when the fix-ups change: a cached base with an older stamp is rebuilt.
RECIPE_VERSION = "1"


class BaseError(RuntimeError):
    """The base rootfs could not be built."""


def stamp_text() -> str:
    extra = os.environ.get("OCP_LAB_EXTRA_PKGS", "")
    return f"recipe={RECIPE_VERSION} suite={SUITE} packages={','.join(PACKAGES)} extra={extra}\n"


def is_ready(base: Path) -> bool:
    try:
        return (base / STAMP).read_text() == stamp_text()
    except OSError:
        return False


def apt_mirror() -> str:
    """apt's own Debian mirror, so the build goes wherever this machine's apt is allowed to go."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        # first stanza whose Suites has the plain suite (not -security): take its first URI
        for stanza in re.split(r"\n\s*\n", deb822.read_text()):
            fields: dict[str, str] = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if m:
                return m.group(1)
    return "http://deb.debian.org/debian"


def ensure_base(cfg: LabConfig, *, force: bool = False, log: TextIO = sys.stderr) -> Path:
    """Return the ready base rootfs, building it first if it is missing, stale or `force` is set."""
    base = cfg.base_dir
    if not force and is_ready(base):
        return base
    if os.geteuid() != 0:
        raise BaseError("building the lab base rootfs needs root")
    if shutil.which("debootstrap") is None:
        raise BaseError("debootstrap is missing: run scripts/lab-deps")
    base.parent.mkdir(parents=True, exist_ok=True)
    # two concurrent first runs must not debootstrap into the same directory
    with open(base.parent / (base.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and is_ready(base):
            return base
        _build(cfg, base, log)
    return base


def _build(cfg: LabConfig, base: Path, log: TextIO) -> None:
    mirror = cfg.mirror or apt_mirror()
    extra = [p for p in os.environ.get("OCP_LAB_EXTRA_PKGS", "").split(",") if p]
    # build next to the final place and rename at the end: a killed build never looks complete
    tmp = base.with_name(base.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    t0 = time.monotonic()
    print(f"lab: building base rootfs {base} from {mirror} (debootstrap, ~1 min)", file=log, flush=True)
    proc = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join([*PACKAGES, *extra])}", SUITE, str(tmp),
         mirror],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        raise BaseError(f"debootstrap failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    _fix_up(tmp)
    if base.exists():
        shutil.rmtree(base)
    tmp.rename(base)
    (base / STAMP).write_text(stamp_text())
    print(f"lab: base rootfs ready in {time.monotonic() - t0:.0f} s", file=log, flush=True)


def _fix_up(root: Path) -> None:
    """Make the rootfs safe to clone N times and usable by tests."""
    # openssh-server's postinst generated host keys: every clone would present the SAME key
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # likewise machine-id (systemd/journald key on it) and hostname; hosts get their own
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    # bind-mount targets: minbase ships no /etc/hosts
    for f in ("etc/hosts", "etc/ssh/ssh_known_hosts"):
        (root / f).touch()
    for d in ("srv/shared", "root/.ssh"):
        (root / d).mkdir(parents=True, exist_ok=True)
    subprocess.run(["chroot", str(root), "sh", "-c", "id lab >/dev/null 2>&1 || useradd -m -u 1000 -s /bin/bash lab"],
                   check=True)
    sudoers = root / "etc/sudoers.d/lab"
    sudoers.write_text("lab ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    # minbase has no locales; don't accept the client's LANG/LC_* (setlocale warnings on every command)
    cfg = root / "etc/ssh/sshd_config"
    cfg.write_text(re.sub(r"(?m)^AcceptEnv", "#AcceptEnv", cfg.read_text()))
    (root / "etc/default/locale").write_text("LANG=C.UTF-8\n")
    subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True)
