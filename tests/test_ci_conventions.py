"""CI conventions (issue 14): validate as GitHub annotations and SARIF, plan as a pull-request comment, the
pre-commit hook, and the inventory schema as editors use it (a $id, a modeline in every example)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.support.cli import REPO, Provision, cli_env

GOOD = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}
defaults:
  service: {manager: none}
hosts:
  a:
    connection: local
    root: hosts/a
    instances:
      main: {port: 18789, config: {logging: {level: info}}}
      rescue: {port: 19789, secrets: {OPENCLAW_GATEWAY_TOKEN: {env: RESCUE_TOKEN}}}
"""
BAD = GOOD.replace("port: 19789", "port: 99999")


@pytest.fixture()
def provision(tmp_path: Path) -> Provision:
    return Provision(tmp_path, env={"RESCUE_TOKEN": "tok-1f0a7b"}, timeout=120, forbid_traceback=True)


def test_validate_format_github_annotates_the_line(provision: Provision, tmp_path: Path) -> None:
    bad = tmp_path / "odd,name:1.yaml"  # ',' and ':' in a property are escaped
    bad.write_text(BAD)
    r = provision("validate", bad.name, "--format", "github")
    assert r.returncode == 1
    assert r.stdout == ("::error file=odd%2Cname%3A1.yaml,line=11,col=22,title=provision schema::"
                        "hosts.a.instances.rescue.port: 99999 is greater than the maximum of 65535\n")
    assert "invalid; 1 error" in r.stderr
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    r = provision("validate", str(good), "--format", "github")
    assert r.returncode == 0 and r.stdout == ""


def test_validate_format_sarif_is_a_sarif_log(provision: Provision, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD.replace("main: {port: 18789", "main: {port: 19700"))  # and a warning: ports close
    r = provision("validate", "bad.yaml", "--format", "sarif")
    assert r.returncode == 1
    log = json.loads(r.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "openclaw-provisioner"
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {res["ruleId"] for res in run["results"]}
    (res,) = run["results"]
    assert res["level"] == "error" and res["ruleId"] == "schema"
    assert res["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "bad.yaml"},
                                                       "region": {"startLine": 11, "startColumn": 22}}


def test_plan_format_markdown_masks_secrets_and_folds_long_diffs(provision: Provision, tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(GOOD)
    r = provision("plan", str(inv), "--format", "markdown", "--detailed-exitcode")
    assert r.returncode == 2, r.stderr
    md = r.stdout
    assert md.startswith("### provision plan\n\n**Plan: 8 to create on 1 of 1 host(s).**\n")
    assert "tok-1f0a7b" not in md and "OPENCLAW_GATEWAY_TOKEN=<redacted>" in md
    # the configs' diffs are long: folded; the env files' are short: inline
    assert md.count("<details><summary>diff (") == 2 and md.count("</details>") == 2
    assert md.count("```diff\n") == 4 and md.count("\n```\n") == 4
    assert provision("apply", str(inv), "--yes").returncode == 0
    r = provision("plan", str(inv), "--format", "markdown", env={"RESCUE_TOKEN": "tok-rotated-77"})
    assert "tok-1f0a7b" not in r.stdout and "tok-rotated-77" not in r.stdout
    assert "OPENCLAW_GATEWAY_TOKEN=<redacted> (changed)" in r.stdout


def test_json_and_another_format_together_are_a_usage_error(provision: Provision, tmp_path: Path) -> None:
    r = provision("plan", "x.yaml", "--json", "--format", "markdown")
    assert r.returncode == 1 and "usage: provision plan" in r.stderr


def test_the_pre_commit_hook_validates_each_inventory(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "provision-validate" and hook["language"] == "python"
    matches = re.compile(hook["files"]).search
    assert matches("inventory.yaml") and matches("inventories/prod.yml") and matches("x/inventory-eu.yaml")
    assert not matches("playbooks/default.yaml") and not matches("inventories/sub/x.yaml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "provision").write_text(f'#!/bin/sh\nexec {sys.executable} -m provisioner.cli "$@"\n')
    (bin_dir / "provision").chmod(0o755)
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    env = cli_env({"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RESCUE_TOKEN": "t"})

    def hook_run(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*shlex.split(hook["entry"]), *files], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)

    r = hook_run("bad.yaml", "good.yaml")
    assert r.returncode == 1 and "bad.yaml:11:22: error:" in r.stderr and "good.yaml: valid" in r.stdout
    assert hook_run("good.yaml").returncode == 0


def test_every_example_names_the_schema_editors_check_it_against() -> None:
    schema = json.loads((REPO / "schemas/inventory.schema.json").read_text())
    assert schema["$id"].endswith("/inventory.schema.json")
    validator = Draft202012Validator(schema)
    examples = sorted((REPO / "inventories").glob("*.yaml")) + [REPO / "provisioner/examples/local-demo.yaml"]
    assert len(examples) >= 4
    for path in examples:
        first = path.read_text().splitlines()[0]
        m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert m, f"{path}: no schema modeline"
        if path.parent.name == "inventories":
            assert (path.parent / m.group(1)).resolve() == REPO / "schemas/inventory.schema.json"
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path


@pytest.mark.parametrize(("line", "want"), [
    ("provision pl", {"plan"}),
    ("provision ", {"validate", "render", "plan", "apply", "dedupe", "status", "unlock", "demo", "completion"}),
    ("provision plan inv.yaml --fo", {"--format", "--forks"}),
    ("provision plan inv.yaml --form", {"--format"}),
    ("provision plan inv.yaml --format m", {"markdown"}),
    ("provision validate inv.yaml --format ", {"text", "json", "github", "sarif"}),
    ("provision apply inv.yaml --json-", {"--json-events"}),
    ("provision dedupe v", {"verify"}),
    ("provision --json plan x --detailed", {"--detailed-exitcode"}),
    ("provision completion ", {"bash", "zsh"}),
])
def test_the_completion_script_completes_commands_flags_and_choices(provision: Provision, line: str,
                                                                     want: set[str]) -> None:
    script = provision("completion", "bash").stdout
    words = line.split(" ")
    probe = (f"{script}\nCOMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
             "_provision; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    got = {w for w in r.stdout.splitlines() if w}
    assert want <= got
    if not line.endswith(" ") or "--format" in line:  # a prefix, or a flag's value: nothing else offered
        assert got == want


def test_the_zsh_script_loads_bashcompinit(provision: Provision) -> None:
    r = provision("completion", "zsh")
    assert r.returncode == 0 and r.stdout.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert "complete -o filenames -F _provision provision" in r.stdout
