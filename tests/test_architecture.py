"""The shape of the code, checked: no import cycles, small modules, and one folder that builds every host script.

- The import graph of `provisioner` (imports inside functions counted) has no cycle.
- No module of `provisioner/` is over 350 lines, no test module over 500.
- A script header (`set -eu`) is written in one place, and every script the tool can send to a host is built
  by `provisioner/remote/scripts/`: each builder there is called here with the values an apply of the example
  fleets would use, and every script, and every user-side sub-script inside it, parses under `sh -n`.
"""

from __future__ import annotations

import ast
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.apply.facts import probe_request, user_side
from provisioner.core.desired import DesiredHost, DesiredToken
from provisioner.inventory.model import Inventory
from provisioner.remote.connect import whole
from provisioner.remote.scripts import (
    backups,
    dedupe,
    gateway_env,
    locks,
    openclaw_cli,
    plugins,
    probe,
    release,
    state_restore,
    systemd,
    tokens,
    user_units,
    writes,
)
from provisioner.render.files import render_inventory
from provisioner.validate import validate_file
from tests.support.cli import REPO

PACKAGE = REPO / "provisioner"
MAX_MODULE, MAX_TEST_MODULE = 350, 500


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the provisioner modules it imports, at any depth of its code (functions included)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40 and sum(len(v) for v in graph.values()) > 100  # the walk really saw the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_modules_are_small() -> None:
    big = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE}
    assert not big, f"modules over {MAX_MODULE} lines: {big}"
    big = {str(p.relative_to(REPO)): n for p in (REPO / "tests").rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_TEST_MODULE}
    assert not big, f"test modules over {MAX_TEST_MODULE} lines: {big}"


def test_a_script_header_is_written_in_one_place() -> None:
    found = [f"{p.relative_to(REPO)}:{i}" for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".pyc"
             for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if "set -eu" in line]
    assert found == ["provisioner/remote/scripts/shell.py:13"], found


# ---- every host script parses -------------------------------------------------------------------------------

def _fleet() -> tuple[Inventory, dict[str, DesiredHost]]:
    v = validate_file(str(REPO / "inventories" / "ha.yaml"))
    assert v.inventory is not None
    return v.inventory, render_inventory(v.inventory)


def all_scripts() -> dict[str, str]:
    """Every script builder of provisioner/remote/scripts, called as an apply, status, unlock or dedupe verify
    of the HA example fleet (mounts, two instances, user-side files, a release) would call it."""
    inv, desired = _fleet()
    dh = next(iter(desired.values()))
    host = inv.hosts[0]
    req = probe_request(dh, version_command=("/opt/openclaw/bin/openclaw",), listeners=True)
    side = user_side(dh)
    paths = [f.path for f in dh.files]
    units = [s.unit for s in dh.services]
    batch = writes.WriteBatch(files=dh.files, dirs=dh.dirs, create_user="openclaw", user_home="/home/openclaw",
                              run_id="r1", pending_units=units)
    who = dedupe.Who(host.service.user, host.service.group)
    d = "/var/lib/openclaw/inbound-claim"
    holder = "ctl pid=1 run=r at=0 ctl=x"
    state = "/home/openclaw/.openclaw-main"
    return {
        "probe": probe.probe_script(req),
        "contents": probe.contents_script(paths, "", side["user"], side["user_paths"]),
        "write": writes.write_script(batch),
        "restore": writes.restore_script(paths, pending=units, **side),
        "lock": locks.lock_script(holder),
        "lock_then": locks.lock_then(holder, probe.probe_script(req)),
        "unlock": locks.unlock_script(holder, settled=units),
        "read_lock": locks.read_lock_script(),
        "clear_lock": locks.clear_lock_script(holder),
        "fence_then_write": locks.fence_script(holder) + writes.write_script(batch),
        "systemctl": systemd.systemctl_script(True, units[:1], units[1:], ["old.service"],
                                              ["/etc/systemd/system/old.service"], [d]),
        "unit_states": systemd.unit_states_script(units),
        "stability_bundle": systemd.stability_bundle_script("openclaw", "openclaw", "/home/openclaw/.openclaw-main", 7),
        "incoming_dir": release.incoming_dir_script(),
        "install": release.install_script("/opt/openclaw", "2026.9.6", "/var/lib/x/in.tgz", "0" * 64, "s", "r1"),
        "plugin_install": plugins.plugin_install_script("/opt/openclaw-plugins/openclaw+slack/2026.9.6",
                                                        "/var/lib/x/in.tgz", "0" * 64, "@openclaw/slack@2026.9.6 s",
                                                        "r1"),
        "switch_current": release.switch_current_script("/opt/openclaw", "2026.9.6"),
        "prune": release.prune_script("/opt/openclaw", ["2026.9.4"]),
        "prune_incoming": release.prune_incoming_script("/var/lib/x/in.tgz"),
        "registry_install": release.registry_install_script("/opt/openclaw", "2026.9.6", "24.21.0", "r1",
                                                            "http://10.0.0.1:4873/"),
        "user_systemctl": user_units.user_systemctl_script("openclaw", "openclaw", True, units[:1], units[1:],
                                                           ["old.service"],
                                                           ["/home/openclaw/.config/systemd/user/old.service"]),
        "user_unit_states": user_units.user_unit_states_script("openclaw", "openclaw", units,
                                                               "/home/openclaw/.config/systemd/user"),
        "per_instance": openclaw_cli.per_instance_script(host.instances, inv.openclaw.run_command,
                                                         ["gateway", "status", "--json"]),
        "config_schema": openclaw_cli.config_schema_script(inv.openclaw.run_command, "openclaw", "openclaw"),
        "dedupe_facts": dedupe.facts_script(d, who),
        "dedupe_write": dedupe.write_script(f"{d}/.n", "nonce", who),
        "dedupe_read": dedupe.read_script(f"{d}/.n", who),
        "dedupe_race": dedupe.race_script(f"{d}/.r", "gw-a", 0, who),
        "dedupe_remove": dedupe.remove_script(f"{d}/.r", who=who),
        "dedupe_wait_gone": dedupe.wait_gone_script(f"{d}/.r", 1.0, who),
        "readonly": gateway_env.readonly_script([(units[0], 18789), ("", 20789)]),
        "ensure_tokens": tokens.ensure_tokens_script([DesiredToken("gw-a", "main", f"{state}/gateway.auth.env",
                                                                   "openclaw", "openclaw")]),
        "backup_create": backups.create_script([(i, f"/home/openclaw/.openclaw-provisioner/backups/{i.profile}.r1")
                                                for i in host.instances], ("/opt/openclaw/current/bin/openclaw",)),
        "backup_read": backups.read_archive_script("openclaw", "openclaw", "/home/openclaw/x/a.tar.gz"),
        "backup_remove": backups.remove_dirs_script([("openclaw", "openclaw", "/home/openclaw/x")]),
        "backup_prune": backups.prune_script(host.instances, 3),
        "restore_state": state_restore.restore_state_script(
            [(host.instances[0], "/var/lib/x/a.tar.gz", state, f"{state}.ocp-failed-x", "/home/openclaw/x/stage")],
            ("/opt/openclaw/2026.9.5/bin/openclaw",), keep=["openclaw.json"]),
        "hand_over": state_restore.hand_over_script("/var/lib/x/in/a.tgz", "/var/lib/x/b.tgz", "openclaw"),
        "show_token": tokens.show_token_script("openclaw", "openclaw", [f"{state}/gateway.auth.env",
                                                                        f"{state}/gateway.env"], "gw-a/main"),
    }


def test_every_script_builder_is_covered() -> None:
    """A new builder in the script layer must be added to all_scripts(), so that it is parsed too."""
    builders = {f"{m.__name__.rsplit('.', 1)[1]}.{name}"
                for m in (backups, dedupe, gateway_env, locks, openclaw_cli, plugins, probe, release, state_restore,
                          systemd, tokens, user_units, writes)
                for name, fn in inspect.getmembers(m, inspect.isfunction)
                if fn.__module__ == m.__name__ and (name.endswith("_script") or name == "lock_then")}
    source = inspect.getsource(all_scripts)
    missing = sorted(b for b in builders if b not in source)
    assert not missing and len(builders) >= 20, missing


_USER_PART = re.compile(r"<<'(__OCP_USER_[0-9a-f]+__)'[^\n]*\n(.*?)\n\1\n", re.S)


@pytest.mark.parametrize("name", sorted(all_scripts()))
def test_every_host_script_parses(name: str) -> None:
    sh = shutil.which("dash") or "/bin/sh"
    script = whole(all_scripts()[name])
    parts = [("whole", script)] + [(f"as-user #{i}", m.group(2)) for i, m in enumerate(_USER_PART.finditer(script))]
    for what, text in parts:
        r = subprocess.run([sh, "-n"], input=text, text=True, capture_output=True, timeout=30)
        assert r.returncode == 0, f"{name} ({what}) does not parse: {r.stderr}"
    if "ocp_as " in script:
        assert len(parts) > 1  # the sub-scripts were found, and so were checked


def test_a_plan_does_not_import_what_only_a_failing_check_needs() -> None:
    # jsonschema alone costs ~40 ms a run; the inventory and config checks import it when they validate, and a
    # plan with a warm validation cache never does
    code = ("import sys, provisioner.cli.plan, provisioner.cli.apply, provisioner.rules.secrets; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
