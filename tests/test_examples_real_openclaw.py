"""Every openclaw.json rendered from every example inventory is accepted by the real `openclaw config validate`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "inventories").glob("*.yaml"))


def _validate(install: OpenClawInstall, cfg: Path, work: Path) -> tuple[Path, int, str]:
    home = work / "home"
    home.mkdir(parents=True)
    env = install.env(home=home, state_dir=work / "state", config_path=cfg)
    r = install.run(["config", "validate", "--json"], env, timeout=180)
    return cfg, r.returncode, r.stdout + r.stderr


@pytest.mark.openclaw
def test_every_rendered_config_of_every_example_is_accepted_by_real_openclaw(
        openclaw_install: OpenClawInstall, tmp_path: Path) -> None:
    assert EXAMPLES, "no example inventories"
    configs: list[Path] = []
    provision = Provision(timeout=None)
    for inv in EXAMPLES:
        out = tmp_path / inv.stem
        r = provision("render", str(inv), "--out", str(out), "--placeholder-secrets")
        assert r.returncode == 0, f"{inv.name}: {r.stderr}"
        found = sorted(out.rglob("openclaw.json"))
        assert found, f"{inv.name} rendered no openclaw.json"
        configs += found
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda ic: _validate(openclaw_install, ic[1], tmp_path / f"w{ic[0]}"),
                                enumerate(configs)))
    bad = [(str(c.relative_to(tmp_path)), rc, out[-600:]) for c, rc, out in results if rc != 0]
    assert not bad, bad
    for _, _, out in results:
        assert json.loads(out[out.index("{"):])["valid"] is True
    assert len(results) == len(configs) >= 11
