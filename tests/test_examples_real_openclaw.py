"""Every openclaw.json rendered from every example inventory is accepted by the real `openclaw config validate`, and
passes the real `openclaw secrets audit --check` with its own env file's variables (the gateway's environment)."""

from __future__ import annotations

import json
import re
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


def _env_file(path: Path) -> dict[str, str]:
    """The rendered env file's variables (values as the renderer quotes them: double quotes, backslash escapes)."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', line)
        if m:
            out[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2))
    return out


def _audit(install: OpenClawInstall, cfg: Path, work: Path) -> tuple[Path, int, str]:
    home = work / "home"
    home.mkdir(parents=True)
    extra = _env_file(cfg.parent / "gateway.env")
    env = install.env(home=home, state_dir=work / "state", config_path=cfg, OPENCLAW_CONFIG_READONLY="1", **extra)
    r = install.run(["secrets", "audit", "--check", "--json"], env, timeout=180)
    return cfg, r.returncode, r.stdout + r.stderr


@pytest.mark.openclaw
def test_every_rendered_config_of_every_example_is_accepted_by_real_openclaw(
        openclaw_install: OpenClawInstall, tmp_path: Path) -> None:
    assert EXAMPLES, "no example inventories"
    configs: list[Path] = []
    provision = Provision(timeout=None)
    for inv in EXAMPLES:
        out = tmp_path / inv.stem
        r = provision("render", str(inv), "--out", str(out))
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
    assert len(results) == len(configs) >= 13


@pytest.mark.openclaw
def test_every_example_passes_strict_validate_and_the_real_secrets_audit(openclaw_install: OpenClawInstall,
                                                                        tmp_path: Path) -> None:
    """No example holds a literal credential, every SecretRef resolves from its own env file: the real
    `secrets audit --check` exits 0 (1 on plaintext, 2 on an unresolved ref, both measured)."""
    provision = Provision(timeout=None)
    configs: list[Path] = []
    for inv in EXAMPLES:
        r = provision("validate", str(inv), "--strict")
        assert r.returncode == 0 and "secret-" not in r.stderr, f"{inv.name}: {r.stderr}"
        out = tmp_path / inv.stem
        assert provision("render", str(inv), "--out", str(out), "--placeholder-secrets").returncode == 0
        configs += sorted(out.rglob("openclaw.json"))
    refs = [c for c in configs if '"source": "env"' in c.read_text()]
    assert refs, "no example feeds a SecretRef from secrets:"
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda ic: _audit(openclaw_install, ic[1], tmp_path / f"a{ic[0]}"),
                                enumerate(configs)))
    bad = [(str(c.relative_to(tmp_path)), rc, out[-600:]) for c, rc, out in results if rc != 0]
    assert not bad, bad
    for _, _, out in results:
        doc, _ = json.JSONDecoder().raw_decode(out, out.index("{"))  # stderr may follow (node's slow-op notes)
        assert doc["status"] == "clean" and doc["summary"]["plaintextCount"] == 0
    # the same audit on a config with the token written in: OpenClaw itself fails it (the check can fail)
    literal = refs[0].parent / "literal.json"
    literal.write_text(re.sub(r'"botToken": \{[^}]*\}', '"botToken": "123:abc"', refs[0].read_text()))
    assert _audit(openclaw_install, literal, tmp_path / "literal")[1] == 1
