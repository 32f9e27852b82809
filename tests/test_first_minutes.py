"""The first ten minutes of a new user (issue 14): the demo, its printed follow-up, and the errors met early."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Provision


@pytest.fixture()
def provision(tmp_path: Path) -> Provision:
    # a new user's shell: no DEMO_RESCUE_TOKEN, nothing exported
    return Provision(tmp_path, env={"DEMO_RESCUE_TOKEN": None}, timeout=120, forbid_traceback=True)


def test_demo_twice_in_a_row_succeeds_and_its_follow_up_works_as_printed(provision: Provision,
                                                                          tmp_path: Path) -> None:
    first = provision("demo")
    assert first.returncode == 0, first.stdout + first.stderr
    second = provision("demo")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "reusing openclaw-demo/inventory.yaml (the example)" in second.stderr
    assert "(no changes: the demo hosts already match the inventory, from an earlier run)" in second.stdout
    follow_up = second.stdout.rstrip().splitlines()[-1].strip()
    assert follow_up == "provision plan openclaw-demo/inventory.yaml"
    r = provision(*follow_up.split()[1:], "--detailed-exitcode")
    assert r.returncode == 0, r.stderr
    token = tmp_path / "openclaw-demo/rescue.token"
    assert token.stat().st_mode & 0o777 == 0o600
    env = tmp_path / "openclaw-demo/hosts/demo-a/home/openclaw/.openclaw-rescue/gateway.env"
    assert token.read_text().strip() in env.read_text()


def test_demo_says_when_it_reuses_an_edited_inventory(provision: Provision, tmp_path: Path) -> None:
    assert provision("demo").returncode == 0
    inv = tmp_path / "openclaw-demo/inventory.yaml"
    inv.write_text(inv.read_text().replace("level: info", "level: debug"))
    r = provision("demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reusing openclaw-demo/inventory.yaml: it differs from the example (your edits), and the apply below " \
           "applies them" in r.stderr
    assert "=== exit code 2" in r.stdout  # the edit is planned, then applied
    assert '"level": "debug"' in (tmp_path / "openclaw-demo/hosts/demo-b/home/openclaw/.openclaw-main/openclaw.json"
                                  ).read_text()
