"""docs/ci.md's GitHub Actions workflow, run as a script: each job's steps with the same commands and the same
exit-code handling as a runner (bash -eo pipefail, a step's `if:`, $GITHUB_OUTPUT), in a git repository of an
inventory, with `gh` and `pip` stood in for. The apply job works on local stand-in hosts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import REPO, cli_env

CANARY = "canary-3f9e1c-secret"
BASE = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}
defaults:
  instance: {config: {logging: {level: info}}}
hosts:
  gw-a:
    connection: local
    root: hosts/gw-a
    instances:
      main: {port: 18789}
  gw-b:
    connection: local
    root: hosts/gw-b
    instances:
      main: {port: 18789}
      rescue:
        port: 19789
        config: {gateway: {auth: {mode: token}}}
        secrets: {OPENCLAW_GATEWAY_TOKEN: {env: RESCUE_TOKEN}}
"""


def workflow() -> dict[str, Any]:
    text = (REPO / "docs/ci.md").read_text()
    block = re.search(r"## The workflow\n.*?```yaml\n(.*?)```", text, re.S)
    assert block, "docs/ci.md has no workflow"
    doc: dict[str, Any] = yaml.safe_load(block.group(1))
    return doc


@dataclass
class Job:
    steps: list[tuple[str, int | None]] = field(default_factory=list)  # (name, exit code; None: skipped)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(rc in (0, None) for _, rc in self.steps)


class Runner:
    """Runs a job of the workflow in `repo` the way a GitHub runner does, with `context` for its expressions."""

    def __init__(self, tmp: Path, repo: Path) -> None:
        self.tmp, self.repo = tmp, repo
        self.bin = tmp / "bin"
        self.bin.mkdir(exist_ok=True)
        self._tool("provision", f'exec {sys.executable} -m provisioner.cli "$@"')
        self._tool("pip", f'echo "$@" >> {tmp}/pip.log')  # the package is this checkout already
        # gh pr comment N --body-file F: the comment is kept for the test to read
        self._tool("gh", f'[ "$1 $2" = "pr comment" ] && echo "$3" > {tmp}/gh-pr && cp -- "$5" {tmp}/gh-comment.md')

    def _tool(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def run(self, name: str, context: dict[str, str]) -> Job:
        job = Job()
        failed = False
        for i, step in enumerate(workflow()["jobs"][name]["steps"]):
            title = step.get("name") or step.get("uses") or f"step {i}"
            if "uses" in step:  # checkout and setup-python: the test's repository and interpreter stand for them
                continue
            cond = step.get("if", "success()")
            if not self._true(cond, job, failed):
                job.steps.append((title, None))
                continue
            rc, out = self._step(step, job, context)
            job.steps.append((title, rc))
            job.logs[title] = out
            failed = failed or rc != 0
        return job

    def _true(self, cond: str, job: Job, failed: bool) -> bool:
        cond = cond.strip()
        if cond == "always()":
            return True
        if cond == "success()":
            return not failed
        m = re.fullmatch(r"steps\.(\w+)\.outputs\.(\w+) == '([^']*)'", cond)
        assert m, f"the test does not know this condition: {cond}"
        return not failed and job.outputs.get(m.group(1), {}).get(m.group(2)) == m.group(3)

    @staticmethod
    def _expand(text: str, context: dict[str, str]) -> str:
        def one(m: re.Match[str]) -> str:
            assert m.group(1) in context, f"no value for ${{{{ {m.group(1)} }}}}"
            return context[m.group(1)]
        return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", one, text)

    def _step(self, step: dict[str, Any], job: Job, context: dict[str, str]) -> tuple[int, str]:
        out_file = self.tmp / "github_output"
        out_file.write_text("")
        script = self.tmp / "step.sh"
        script.write_text(self._expand(step["run"], context))
        env = cli_env({"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(out_file),
                       "GITHUB_STEP_SUMMARY": str(self.tmp / "summary.md"), "NO_COLOR": "1"})
        env.pop("RESCUE_TOKEN", None)  # only what the step's env gives
        env.update({k: self._expand(str(v), context) for k, v in (step.get("env") or {}).items()})
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=self.repo,
                           env=env, capture_output=True, text=True, timeout=180)
        if "id" in step:
            job.outputs[step["id"]] = dict(line.split("=", 1) for line in out_file.read_text().splitlines())
        return r.returncode, r.stdout + r.stderr


def git(repo: Path, *args: str) -> str:
    r = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                       capture_output=True, text=True)
    return r.stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "inventory.yaml").write_text(BASE)
    git(repo, "add", "inventory.yaml")
    git(repo, "commit", "-qm", "deployed")
    return repo


def _pull_request(tmp_path: Path, repo: Path, text: str) -> Job:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", "pr")
    (repo / "inventory.yaml").write_text(text)
    git(repo, "commit", "-qam", "proposed", "--allow-empty")
    return Runner(tmp_path, repo).run("plan", {"github.event.pull_request.base.sha": base,
                                               "github.event.pull_request.number": "7", "github.token": "t"})


def test_a_pull_request_that_removes_an_instance_posts_the_plan(tmp_path: Path, repo: Path) -> None:
    job = _pull_request(tmp_path, repo, BASE[:BASE.index("      rescue:")].replace("level: info", "level: debug"))
    assert job.ok, job.logs
    assert job.outputs["plan"] == {"exit_code": "2"}
    assert (tmp_path / "gh-pr").read_text() == "7\n"
    comment = (tmp_path / "gh-comment.md").read_text()
    assert "**Plan: 2 to update, 1 to stop on 2 of 2 host(s).**" in comment
    assert ("`■ stop` service `openclaw-gateway-rescue.service`: instance rescue is no longer in the "
            "inventory") in comment
    assert '+    "level": "debug"' in comment
    assert (tmp_path / "summary.md").read_text() == comment
    assert CANARY not in comment


def test_a_pull_request_that_changes_nothing_posts_nothing(tmp_path: Path, repo: Path) -> None:
    job = _pull_request(tmp_path, repo, BASE)
    assert job.ok, job.logs
    assert job.outputs["plan"] == {"exit_code": "0"}
    assert job.steps[-1] == ("Post the plan", None)
    assert not (tmp_path / "gh-comment.md").exists()


def test_a_changed_secret_source_is_a_change_and_needs_no_secret(tmp_path: Path, repo: Path) -> None:
    job = _pull_request(tmp_path, repo, BASE.replace("{env: RESCUE_TOKEN}", "{env: RESCUE_TOKEN_V2}"))
    assert job.ok, job.logs
    comment = (tmp_path / "gh-comment.md").read_text()
    assert '+OPENCLAW_GATEWAY_TOKEN="<secret from env RESCUE_TOKEN_V2>"' in comment


def test_an_invalid_pull_request_fails_at_validate_with_annotations(tmp_path: Path, repo: Path) -> None:
    job = _pull_request(tmp_path, repo, BASE.replace("port: 19789", "port: 99999"))
    assert not job.ok
    assert [(n, rc) for n, rc in job.steps] == [("Install", 0), ("Validate", 1), ("Render the deployed revision", None),
                                                ("Plan the pull request offline", None), ("Post the plan", None)]
    assert "::error file=inventory.yaml,line=17,col=15,title=provision schema::" in job.logs["Validate"]


def test_on_merge_the_saved_plan_is_applied(tmp_path: Path, repo: Path) -> None:
    job = Runner(tmp_path, repo).run("apply", {"secrets.RESCUE_TOKEN": CANARY})
    assert job.ok, job.logs
    assert [n for n, _ in job.steps] == ["Install", "Plan against the hosts", "Apply exactly that plan",
                                         "Show the result"]
    assert '"type":"result"' in job.logs["Show the result"] and '"ok":true' in job.logs["Show the result"]
    env = repo / "hosts/gw-b/home/openclaw/.openclaw-rescue/gateway.env"
    assert CANARY in env.read_text()
    again = Runner(tmp_path, repo).run("apply", {"secrets.RESCUE_TOKEN": CANARY})  # a second merge: no changes
    assert again.ok and '"status":"unchanged"' in again.logs["Show the result"]
