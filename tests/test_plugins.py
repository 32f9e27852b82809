"""Pinned plugins without a lab: the inventory form, the config wiring, the plan (install only where missing, a
version change restarts only its instances), the probe's records and the gate's verdict on OpenClaw's inspect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import json5
import pytest

from provisioner.apply.plugin_gate import check_plugins, verdict
from provisioner.apply.results import HostResult, HostStatus
from provisioner.core.changes import Action, ChangeKind
from provisioner.core.desired import DesiredHost
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost, ObservedService
from provisioner.inventory.build import default_plugin_id
from provisioner.plan import plan_host, sha256
from provisioner.remote.scripts.probe import ProbeRequest, parse_probe
from provisioner.render.files import render_host
from provisioner.validate import validate_file

SLACK = "/opt/openclaw-plugins/openclaw+slack"


def _inv(tmp: Path, main_plugins: str) -> Path:
    p = tmp / "inventory.yaml"
    p.write_text(f"""\
version: 1
openclaw: {{version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}}
defaults:
  service: {{manager: systemd}}
hosts:
  a:
    address: 10.0.0.1
    instances:
      main:
        port: 18789
        config: {{plugins: {{entries: {{slack: {{config: {{a: 1}}}}}}}}}}
        plugins: {main_plugins}
      other: {{port: 19789}}
""")
    return p


def _desired(tmp: Path, plugins: str) -> DesiredHost:
    v = validate_file(str(_inv(tmp, plugins)))
    assert v.ok, [d.format() for d in v.diagnostics]
    assert v.inventory is not None
    return render_host(v.inventory, v.inventory.hosts[0])


def _config(dh: DesiredHost, inst: str) -> dict[str, Any]:
    f = next(f for f in dh.files if f.instance == inst and f.path.endswith("openclaw.json"))
    cfg: dict[str, Any] = json5.loads(f.content.decode())
    return cfg


def test_the_config_loads_each_plugin_by_its_pinned_path_only_where_it_is_used(tmp_path: Path) -> None:
    dh = _desired(tmp_path, '{"@openclaw/slack": {version: "2026.9.6", config: {b: 2}}}')
    cfg = _config(dh, "main")
    assert cfg["plugins"]["load"]["paths"] == [f"{SLACK}/2026.9.6/node_modules/@openclaw/slack"]
    # the inventory's own entry config is kept, the plugin's config merged over it
    assert cfg["plugins"]["entries"]["slack"] == {"enabled": True, "config": {"a": 1, "b": 2}}
    assert "plugins" not in _config(dh, "other")
    assert [(p.host, p.package, p.version, p.dir, p.instances) for p in dh.plugins] == \
        [("a", "@openclaw/slack", "2026.9.6", f"{SLACK}/2026.9.6", ("main",))]


PINNED_PATH = f"{SLACK}/2026.9.6/node_modules/@openclaw/slack"


@pytest.mark.parametrize(("config", "plugins"), [
    pytest.param("{}", {"load": {"paths": [PINNED_PATH]}, "entries": {"slack": {"enabled": True}}},
                 id="nothing-in-the-inventory"),
    pytest.param("{plugins: {load: {paths: [/srv/mine, 7]}, entries: {other: {enabled: false}}}}",
                 {"load": {"paths": ["/srv/mine", PINNED_PATH]},
                  "entries": {"other": {"enabled": False}, "slack": {"enabled": True}}},
                 id="the-inventory-s-paths-first-and-its-entries-kept"),
    pytest.param(f"{{plugins: {{load: {{paths: [{PINNED_PATH}]}}, entries: {{slack: {{enabled: false}}}}}}}}",
                 {"load": {"paths": [PINNED_PATH]}, "entries": {"slack": {"enabled": True}}},
                 id="the-pinned-path-once-and-the-plugin-enabled"),
])
def test_the_config_s_plugin_keys_around_what_the_inventory_gives(tmp_path: Path, config: str,
                                                                   plugins: dict[str, Any]) -> None:
    """README "Plugins": load paths after any the inventory gives (a path that is not a string dropped), one
    enabled entry per plugin beside the inventory's own, the pinned path named once."""
    inv = tmp_path / "inventory.yaml"
    inv.write_text(f"""\
version: 1
openclaw: {{version: "2026.9.6"}}
defaults:
  service: {{manager: none}}
hosts:
  a:
    address: 10.0.0.1
    instances:
      main: {{port: 18789, config: {config}, plugins: {{"@openclaw/slack": "2026.9.6"}}}}
""")
    v = validate_file(str(inv), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    before = json.dumps(v.inventory.hosts[0].instances[0].config, sort_keys=True)
    dh = render_host(v.inventory, v.inventory.hosts[0])
    assert _config(dh, "main")["plugins"] == plugins
    # render writes into its own copy: the inventory's config is what it was (a second render starts afresh)
    assert json.dumps(v.inventory.hosts[0].instances[0].config, sort_keys=True) == before


def test_plugin_ids_default_to_the_official_naming() -> None:
    assert default_plugin_id("@openclaw/slack") == "slack"
    assert default_plugin_id("@openclaw/brave-plugin") == "brave"
    assert default_plugin_id("openclaw-foo") == "foo"


@pytest.mark.parametrize("bad", ['{"@openclaw/slack": "^2026.9.6"}', '{"@openclaw/slack": latest}',
                                 '{"Not A Package": "1.0.0"}'])
def test_a_version_range_or_a_bad_name_is_a_schema_error(tmp_path: Path, bad: str) -> None:
    v = validate_file(str(_inv(tmp_path, bad)))
    assert not v.ok and any(d.code == "schema" for d in v.diagnostics)


def _observed(dh: DesiredHost, plugins: dict[str, str]) -> ObservedHost:
    files = {f.path: ObservedFile(f.path, True, sha256(f.content), f.mode, f.owner, f.group, content=f.content,
                                  found="regular file", kind=EntryKind.FILE) for f in dh.files}
    dirs = {d.path: ObservedFile(d.path, True, None, d.mode, d.owner, d.group, found="directory",
                                 kind=EntryKind.DIRECTORY) for d in dh.dirs}
    services = {s.unit: ObservedService(s.unit, "loaded", "active", "enabled") for s in dh.services}
    return ObservedHost("a", files=files, dirs=dirs, services=services, plugins=plugins)


def test_plan_installs_only_a_missing_plugin_and_a_version_change_restarts_only_its_instance(tmp_path: Path) -> None:
    old = _desired(tmp_path, '{"@openclaw/slack": "2026.9.6"}')
    have = {f"{SLACK}/2026.9.6": "@openclaw/slack@2026.9.6 sha256=" + "0" * 64}
    assert not [c for c in plan_host(old, _observed(old, have)).changes if c.action is not Action.NOOP]
    missing = [c for c in plan_host(old, _observed(old, {})).changes if c.action is not Action.NOOP]
    assert [(c.kind, c.target, c.action) for c in missing] == [(ChangeKind.PLUGIN, f"{SLACK}/2026.9.6", Action.CREATE)]
    new = _desired(tmp_path, '{"@openclaw/slack": "2026.9.5"}')
    changes = [c for c in plan_host(new, _observed(old, have)).changes if c.action is not Action.NOOP]
    assert {(c.kind, c.target, c.action) for c in changes} == {
        (ChangeKind.PLUGIN, f"{SLACK}/2026.9.5", Action.CREATE),
        (ChangeKind.FILE, "/home/openclaw/.openclaw-main/openclaw.json", Action.UPDATE),
        (ChangeKind.SERVICE, "openclaw-gateway-main.service", Action.RESTART)}


def test_the_probe_reads_plugin_stamps_by_index_only() -> None:
    req = ProbeRequest(plugin_dirs=(f"{SLACK}/2026.9.6", f"{SLACK}/2026.9.5"), systemd=False)
    out = "G 1 @openclaw/slack@2026.9.5 sha256=ab\nG 7 forged\nG x y\nEND\n"
    assert parse_probe("a", req, out).plugins == {f"{SLACK}/2026.9.5": "@openclaw/slack@2026.9.5 sha256=ab"}


PINNED = f"{SLACK}/2026.9.6/node_modules/@openclaw/slack"


def _inspect(**plugin: Any) -> str:
    return "[plugins] noise\n" + json.dumps({"plugin": {"id": "slack", **plugin}, "diagnostics": []})


def test_the_gate_verdict_on_what_openclaw_inspect_reports() -> None:
    # the two reports measured on 2026.9.6: a plugin that loads, and one whose module throws
    assert verdict(_inspect(status="loaded", imported=True, rootDir=PINNED), PINNED) is None
    why = verdict(_inspect(status="error", imported=True, rootDir=PINNED, error="Error: boom", failurePhase="load"),
                  PINNED)
    assert why == "status error in load: Error: boom"
    assert "not from the pinned" in (verdict(_inspect(status="loaded", imported=True, rootDir="/x"), PINNED) or "")
    assert "no report" in (verdict("Error: unknown plugin\n", PINNED) or "")


def test_a_plugin_that_does_not_load_fails_the_gate_naming_it(tmp_path: Path) -> None:
    dh = _desired(tmp_path, '{"@openclaw/slack": "2026.9.6"}')
    services = [s for s in dh.services]
    result = HostResult("a", HostStatus.CHANGED)
    result.health = {"main": "ready", "other": "ready"}
    asked: list[tuple[str, list[str]]] = []

    def inspect(plugin_id: str, names: Any) -> dict[str, str]:
        asked.append((plugin_id, list(names)))
        return {"main": _inspect(status="error", imported=True, rootDir=PINNED, error="Error: boom")}

    failure = check_plugins(dh, services, result, lambda h, m: None, inspect)
    assert failure == "main: plugin slack (@openclaw/slack 2026.9.6) did not load: status error: Error: boom"
    assert asked == [("slack", ["main"])] and result.failing["main"] == ["plugin:slack"]
    # an instance that did not restart is not asked
    assert check_plugins(dh, [s for s in services if s.instance == "other"], result, lambda h, m: None,
                         inspect) is None
