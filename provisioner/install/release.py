"""The controller's cache of pinned OpenClaw releases: fetched once from the npm registry, packed once per
version into a checksummed tarball that is pushed to hosts which cannot (or should not) reach the registry."""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from provisioner.core.diagnostics import ProvisionError


@dataclass(frozen=True)
class Artifact:
    version: str
    node_version: str
    path: Path
    sha256: str
    size: int

    @property
    def stamp(self) -> str:
        """What the host records in <prefix>/<version>/.ocp-release once the release is in place."""
        return f"openclaw={self.version} node={self.node_version} sha256={self.sha256}"


def cache_root() -> Path:
    return Path(os.environ.get("OCP_OPENCLAW_CACHE", "/var/cache/openclaw-provisioner"))


def fetch_release(version: str, node_version: str) -> Path:
    """Install the release into the controller's cache (npm registry), once; returns its directory."""
    script = resources.files("provisioner.install") / "fetch-release"
    with resources.as_file(script) as path:
        try:
            p = subprocess.run(["bash", str(path), version, "--node", node_version], capture_output=True, text=True,
                               timeout=1800, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProvisionError(f"could not fetch OpenClaw {version}: {exc}") from exc
    if p.returncode != 0:
        raise ProvisionError(f"could not fetch OpenClaw {version} (node {node_version}) from the npm registry:\n"
                             + p.stderr[-1500:])
    return Path(p.stdout.strip().splitlines()[-1])


def artifact(version: str, node_version: str) -> Artifact:
    """The release as one gzip tarball with its sha256, built once and reused by every run and host."""
    arch = platform.machine()
    out_dir = cache_root() / "artifacts"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"openclaw-{version}-node-{node_version}-{arch}.tar.gz"
    path = out_dir / name
    sums = path.with_name(name + ".sha256")
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs on one controller build it once
        if not (path.exists() and sums.exists()):
            tree = fetch_release(version, node_version)
            tmp = path.with_name(f".{name}.{os.getpid()}")
            # gzip -1: the tarball is built once, but unpacked on every host; fast both ways beats small
            cmd = f"tar -C {_sh(str(tree))} --exclude=./.installed -cf - . | gzip -1 > {_sh(str(tmp))}"
            p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, check=False)
            if p.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise ProvisionError(f"could not pack OpenClaw {version}: {p.stderr[-800:]}")
            digest = _sha256(tmp)
            os.replace(tmp, path)
            sums.write_text(f"{digest}  {name}\n")
        digest = sums.read_text().split()[0]
    return Artifact(version, node_version, path, digest, path.stat().st_size)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _sh(s: str) -> str:
    import shlex

    return shlex.quote(s)


def version_key(v: str) -> tuple[int, ...]:
    """Order releases: 2026.9.10 after 2026.9.6; a pre-release suffix sorts before its release."""
    main, _, pre = v.partition("-")
    nums = tuple(int(x) if x.isdigit() else 0 for x in main.split("."))
    return (*nums, 0 if pre else 1)
