"""CI without the hosts and without production secrets (issue 14): `render --out` of the deployed revision, then
`plan --offline` of the proposed one, through the CLI. Removals are seen (the render manifest), a secret is
compared by where it comes from, and the rendered tree holds no secret value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Provision

CANARY = "canary-5d81e2-secret"

DEPLOYED = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}
defaults:
  instance: {config: {logging: {level: info}}}
hosts:
  gw-a:
    address: 10.0.0.11
    instances:
      main: {port: 18789}
  gw-b:
    address: 10.0.0.12
    instances:
      main: {port: 18789}
      rescue:
        port: 19789
        config: {gateway: {auth: {mode: token}}}
        secrets: {OPENCLAW_GATEWAY_TOKEN: {env: RESCUE_TOKEN}}
"""
WITHOUT_RESCUE = DEPLOYED[:DEPLOYED.index("      rescue:")]
WITHOUT_GW_B = DEPLOYED[:DEPLOYED.index("  gw-b:")]


@pytest.fixture()
def provision(tmp_path: Path) -> Provision:
    # CI holds no production secret: RESCUE_TOKEN is unset for every run
    return Provision(tmp_path, env={"RESCUE_TOKEN": None}, timeout=120, forbid_traceback=True)


def _rendered(provision: Provision, tmp_path: Path, text: str = DEPLOYED, out: str = "r") -> Path:
    deployed = tmp_path / "deployed.yaml"
    deployed.write_text(text)
    r = provision("render", str(deployed), "--out", str(tmp_path / out))
    assert r.returncode == 0, r.stderr
    return tmp_path / out


def _plan(provision: Provision, tmp_path: Path, text: str, *extra: str) -> tuple[int, str]:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(text)
    r = provision("plan", str(proposed), "--offline", str(tmp_path / "r"), "--detailed-exitcode", *extra)
    return r.returncode, r.stdout


def test_an_unchanged_inventory_plans_no_changes_with_no_secret_set(provision: Provision, tmp_path: Path) -> None:
    _rendered(provision, tmp_path)
    assert _plan(provision, tmp_path, DEPLOYED) == (0, "host gw-a: no changes\nhost gw-b: no changes\n"
                                                       "Plan: no changes on 0 of 2 host(s).\n")


def test_a_changed_config_is_exit_2(provision: Provision, tmp_path: Path) -> None:
    _rendered(provision, tmp_path)
    rc, out = _plan(provision, tmp_path, DEPLOYED.replace("level: info", "level: debug"))
    assert rc == 2
    assert '-    "level": "info"\n' in out and '+    "level": "debug"\n' in out


def test_a_changed_secret_source_is_exit_2_and_shows_both_sources(provision: Provision, tmp_path: Path) -> None:
    _rendered(provision, tmp_path)
    rc, out = _plan(provision, tmp_path, DEPLOYED.replace("env: RESCUE_TOKEN", "file: /run/secrets/rescue"))
    assert rc == 2
    assert '-OPENCLAW_GATEWAY_TOKEN="<secret from env RESCUE_TOKEN>"' in out
    assert '+OPENCLAW_GATEWAY_TOKEN="<secret from file /run/secrets/rescue>"' in out
    no_secret = DEPLOYED.replace("        secrets: {OPENCLAW_GATEWAY_TOKEN: {env: RESCUE_TOKEN}}\n", "")
    rc, out = _plan(provision, tmp_path, no_secret)
    assert rc == 2 and '-OPENCLAW_GATEWAY_TOKEN="<secret from env RESCUE_TOKEN>"' in out  # a secret removed


def test_the_rendered_tree_holds_no_secret_value(provision: Provision, tmp_path: Path) -> None:
    deployed = tmp_path / "deployed.yaml"
    deployed.write_text(DEPLOYED)
    r = provision("render", str(deployed), "--out", str(tmp_path / "r"), env={"RESCUE_TOKEN": CANARY})
    assert r.returncode == 0, r.stderr
    files = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert len(files) == 12  # 3 instances x (config, env, unit), gateway-exec on each of 2 hosts, the manifest
    assert not [p for p in files if CANARY in p.read_text()]
    env = tmp_path / "r/gw-b/home/openclaw/.openclaw-rescue/gateway.env"
    assert 'OPENCLAW_GATEWAY_TOKEN="<secret from env RESCUE_TOKEN>"' in env.read_text()


def test_a_removed_instance_is_seen_offline_with_its_unit_named(provision: Provision, tmp_path: Path) -> None:
    _rendered(provision, tmp_path)
    rc, out = _plan(provision, tmp_path, WITHOUT_RESCUE)
    assert rc == 2, out
    assert ("■ stop        service openclaw-gateway-rescue.service  (instance rescue is no longer in the "
            "inventory") in out
    assert out.endswith("Plan: 1 to stop on 1 of 2 host(s).\n")
    rc, out = _plan(provision, tmp_path, WITHOUT_RESCUE, "--json")
    changes = [(c["host"], c["action"], c["target"]) for h in json.loads(out)["hosts"] for c in h["changes"]]
    assert changes == [("gw-b", "stop", "openclaw-gateway-rescue.service")]


def test_a_removed_host_is_seen_offline_unless_limited_away(provision: Provision, tmp_path: Path) -> None:
    _rendered(provision, tmp_path)
    rc, out = _plan(provision, tmp_path, WITHOUT_GW_B)
    assert rc == 2
    assert "host gw-b: 2 changes" in out and "host gw-b is no longer in the inventory" in out
    assert "openclaw-gateway-main.service" in out and "openclaw-gateway-rescue.service" in out
    assert _plan(provision, tmp_path, WITHOUT_GW_B, "--limit", "gw-a")[0] == 0


def test_render_replaces_an_earlier_render_whole(provision: Provision, tmp_path: Path) -> None:
    r = _rendered(provision, tmp_path)
    unit = r / "gw-b/etc/systemd/system/openclaw-gateway-rescue.service"
    assert unit.is_file()
    _rendered(provision, tmp_path, WITHOUT_RESCUE)
    assert not unit.exists() and not (r / "gw-b/home/openclaw/.openclaw-rescue").exists()
    assert (r / "gw-b/etc/systemd/system/openclaw-gateway-main.service").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployed.yaml", "r"]  # no temp or old tree left


def test_render_refuses_a_non_empty_directory_that_is_not_a_render(provision: Provision, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/keep.txt").write_text("mine")
    deployed = tmp_path / "deployed.yaml"
    deployed.write_text(DEPLOYED)
    r = provision("render", str(deployed), "--out", str(tmp_path / "notes"))
    assert r.returncode == 1 and "not an earlier render" in r.stderr
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    assert provision("render", str(deployed), "--out", str(tmp_path / "empty")).returncode == 0


def test_an_offline_plan_is_not_saved_for_apply(provision: Provision, tmp_path: Path) -> None:
    _rendered(provision, tmp_path)
    rc, _ = _plan(provision, tmp_path, DEPLOYED, "--out", str(tmp_path / "plan.json"))
    assert rc == 1 and not (tmp_path / "plan.json").exists()
