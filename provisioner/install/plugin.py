"""The controller's cache of pinned npm plugins: each package version fetched once from the npm registry, with its
runtime dependencies, and packed into a checksummed tarball that hosts lacking it are sent.

The fetch is OpenClaw's own recipe for plugin packages (docs/plugins/dependency-resolution.md): a fresh npm
project, `npm install --omit=dev --omit=peer --legacy-peer-deps --ignore-scripts`, so no package script runs
on the controller and `openclaw` (a peer) is the gateway's own. npm checks each package's registry integrity.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from provisioner.core.diagnostics import ProvisionError
from provisioner.install.release import _sh, _sha256, cache_root
from provisioner.render.plugins import slug

NPM_FLAGS = ("--omit=dev", "--omit=peer", "--legacy-peer-deps", "--ignore-scripts", "--no-audit", "--no-fund",
             "--no-package-lock", "--loglevel=error")
_memo: dict[tuple[str, str], PluginArtifact] = {}
_memo_lock = threading.Lock()


@dataclass(frozen=True)
class PluginArtifact:
    package: str
    version: str
    id: str  # the id in the package's openclaw.plugin.json
    path: Path
    sha256: str
    size: int

    @property
    def stamp(self) -> str:
        """What the host records in the plugin's directory once it is in place (plan compares the first word)."""
        return f"{self.package}@{self.version} sha256={self.sha256}"


def npm() -> str:
    """npm on the controller: its PATH's, else the one of an OpenClaw release in the cache (fetch-release)."""
    found = shutil.which("npm") or next(iter(sorted(glob.glob(str(cache_root() / "openclaw-*/node*/bin/npm")),
                                                    reverse=True)), None)
    if not found:
        raise ProvisionError("fetching plugins needs npm on the controller: none on PATH, nor in "
                             f"{cache_root()}/openclaw-*/ (a release fetched by `provision apply` brings one)")
    return found


def plugin_artifact(package: str, version: str) -> PluginArtifact:
    """The plugin as one gzip tarball of its npm project, with its sha256, built once per controller."""
    with _memo_lock:
        if (package, version) not in _memo:
            _memo[(package, version)] = _build(package, version)
        return _memo[(package, version)]


def _build(package: str, version: str) -> PluginArtifact:
    out_dir = cache_root() / "artifacts" / "plugins"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{slug(package)}-{version}.tar.gz"
    path = out_dir / name
    meta = path.with_name(name + ".json")
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs on one controller fetch it once
        if not (path.exists() and meta.exists()):
            with tempfile.TemporaryDirectory(prefix=".fetch-", dir=out_dir) as proj:
                plugin_id = _fetch(package, version, Path(proj))
                tmp = path.with_name(f".{name}.{os.getpid()}")
                cmd = f"tar -C {_sh(proj)} -cf - node_modules | gzip -1 > {_sh(str(tmp))}"
                p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                                   check=False)
                if p.returncode != 0:
                    tmp.unlink(missing_ok=True)
                    raise ProvisionError(f"could not pack plugin {package}@{version}: {p.stderr[-800:]}")
                os.replace(tmp, path)
                meta.write_text(json.dumps({"id": plugin_id, "sha256": _sha256(path)}))
        data = json.loads(meta.read_text())
    return PluginArtifact(package, version, data["id"], path, data["sha256"], path.stat().st_size)


def _fetch(package: str, version: str, proj: Path) -> str:
    """npm-install the exact version into `proj`; the plugin id its manifest declares."""
    (proj / "package.json").write_text(json.dumps({"name": "ocp-plugin-fetch", "private": True}))
    env = {**os.environ, "PATH": f"{os.path.dirname(npm())}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    try:
        p = subprocess.run([npm(), "install", *NPM_FLAGS, f"{package}@{version}"], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"could not fetch plugin {package}@{version}: {exc}") from exc
    if p.returncode != 0:
        raise ProvisionError(f"could not fetch plugin {package}@{version} from the npm registry:\n{p.stderr[-1500:]}")
    root = proj / "node_modules" / package
    try:
        manifest = json.loads((root / "openclaw.plugin.json").read_text())
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"{package}@{version} is no OpenClaw plugin: its openclaw.plugin.json cannot be read "
                             f"({exc})") from exc
    plugin_id = manifest.get("id")
    if not isinstance(plugin_id, str) or not plugin_id:
        raise ProvisionError(f"{package}@{version}: openclaw.plugin.json declares no plugin id")
    return plugin_id
