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


INV = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}
defaults:
  service: {manager: none}
hosts:
  a:
    connection: local
    root: hosts/a
    instances:
      main: {port: 18789, secrets: {OPENCLAW_GATEWAY_TOKEN: {file: SOURCE}}}
"""


@pytest.mark.parametrize(("source", "cause"), [
    ("missing.token", "but the file missing.token does not exist"),
    ("adir", "but adir is a directory, not a file"),
    ("empty.token", "but the file empty.token is empty"),
])
def test_a_secret_file_error_names_its_real_cause(provision: Provision, tmp_path: Path, source: str,
                                                  cause: str) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "empty.token").write_text("\n")
    inv = tmp_path / "inv.yaml"
    inv.write_text(INV.replace("SOURCE", source))
    r = provision("plan", str(inv))
    assert r.returncode == 1
    assert f"{inv}:10:37: error: a/main: secret OPENCLAW_GATEWAY_TOKEN comes from file {source}, {cause}\n" in r.stderr
    assert "environment" not in r.stderr


def test_an_env_secret_that_is_not_set_says_so(provision: Provision, tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(INV.replace("{file: SOURCE}", "{env: NOT_SET_TOKEN}"))
    r = provision("plan", str(inv), env={"NOT_SET_TOKEN": None})
    assert r.returncode == 1
    assert "comes from env NOT_SET_TOKEN, but environment variable NOT_SET_TOKEN is not set" in r.stderr


@pytest.mark.parametrize("text", ["---\n", "# nothing but a comment\n---\n"])
def test_a_file_with_no_document_is_a_clear_error(provision: Provision, tmp_path: Path, text: str) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(text)
    r = provision("validate", str(inv))
    assert r.returncode == 1
    assert r.stdout == f"{inv}: invalid; 1 error, 0 warnings\n"
    assert f"{inv}:1:1: error: the file holds no YAML document" in r.stderr


def test_status_on_the_demo_says_what_it_can_know(provision: Provision, tmp_path: Path) -> None:
    assert provision("demo").returncode == 0
    r = provision("status", "openclaw-demo/inventory.yaml")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[1:4]]
    assert [(row[0], row[1], row[3], row[-1]) for row in rows] == [
        ("demo-a", "main", "unmanaged", "unknown"), ("demo-a", "rescue", "unmanaged", "unknown"),
        ("demo-b", "main", "unmanaged", "unknown")]
    assert r.stdout.splitlines()[-1].startswith("3 instance(s); 3 not asked: manager: none on a stand-in host")


def test_playbook_errors_are_located_worded_and_in_line_order(provision: Provision, tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(INV.replace(", secrets: {OPENCLAW_GATEWAY_TOKEN: {file: SOURCE}}", ""))
    pb = tmp_path / "pb.yaml"
    pb.write_text("serial: [1, x]\nmax_fail: -1\nhealth_gate: {enabled: maybe}\npause: a\nbogus: 1\n")
    r = provision("apply", str(inv), "--yes", "--playbook", str(pb))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{pb}:1:13: error: serial.1: 'x' is not a percentage from 1% to 100%",
        f"{pb}:2:11: error: max_fail: must be at least 0, got -1 (a count or a percentage such as \"50%\")",
        f"{pb}:3:24: error: health_gate.enabled: expected true or false, got \"maybe\"",
        f"{pb}:4:8: error: pause: expected number, got \"a\"",
        f"{pb}:5:1: error: (top level): unknown key 'bogus'",
        f"error: invalid playbook {pb}",
    ]
    assert not (tmp_path / "hosts").exists()


def test_a_bad_host_name_is_explained_in_words_not_a_regex(provision: Provision, tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(INV.replace("  a:\n", "  a_b!:\n"))
    r = provision("validate", str(inv))
    assert r.returncode == 1
    assert (f"{inv}:6:3: error: invalid name 'a_b!' in hosts: is not valid: Names of hosts and groups: letters, "
            "digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters.") in r.stderr
    assert "^[" not in r.stderr
