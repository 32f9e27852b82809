"""Secrets in OpenClaw config, through the real CLI: literal credentials located and masked everywhere, SecretRefs
that the instance must feed, one poller per bot token fleet-wide; the credential fields come from the schema."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from provisioner.rules.secret_fields import ANY_KEY, derive, fields_for
from tests.support.cli import REPO, Provision

TOKEN = "424242:literal-bot-token-7c1e"  # a canary: it may be in the rendered openclaw.json, and nowhere else
HOST = """\
  {name}:
    connection: local
    root: hosts/{name}
    instances:
      main:
        port: 18789
        config:
          channels:
            telegram:
              enabled: true
              dmPolicy: pairing
              groupPolicy: allowlist
              botToken: {token}
        secrets: {secrets}
"""
HEAD = 'version: 1\nopenclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}\n' \
       "defaults:\n  service: {manager: none}\nhosts:\n"
REF = "{source: env, provider: default, id: TELEGRAM_BOT_TOKEN}"


def inventory(tmp_path: Path, *hosts: tuple[str, str, str]) -> Path:
    p = tmp_path / "inventory.yaml"
    p.write_text(HEAD + "".join(HOST.format(name=n, token=t, secrets=s) for n, t, s in hosts))
    return p


def line_col(path: Path, needle: str) -> str:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return f"{n}:{line.index(needle) + 1}"
    raise AssertionError(needle)


@pytest.fixture()
def provision(tmp_path: Path) -> Provision:
    return Provision(tmp_path, env={"TG_A": "tg-token-a", "TG_B": "tg-token-b"}, timeout=120)


def test_credential_fields_are_read_from_the_schema_not_from_a_list() -> None:
    shipped = json.loads((REPO / "schemas/openclaw/config.schema.2026.9.6.json").read_text())
    fields = derive(shipped)
    assert fields == fields_for("2026.9.6")
    for f in ("channels.telegram.botToken", "channels.telegram.accounts.*.botToken", "gateway.auth.token",
              "channels.slack.appToken", "models.providers.*.apiKey",
              # inside an embedded plugin schema, through its own $defs
              "plugins.entries.webhooks.config.routes.*.secret", "plugins.entries.imap.config.accounts.*.password"):
        assert tuple(f.split(".")) in fields, f
    assert ("channels", "telegram", "webhookUrl") not in fields and ("gateway", "port") not in fields
    # a version that adds a credential field is covered by its schema alone
    newer = copy.deepcopy(shipped)
    telegram = newer["properties"]["channels"]["properties"]["telegram"]
    telegram["properties"]["proxyPassword"] = copy.deepcopy(telegram["properties"]["botToken"])
    newer["properties"]["channels"]["properties"]["telegram"]["properties"]["proxyUser"] = {"type": "string"}
    assert derive(newer) - fields == {("channels", "telegram", "proxyPassword")}
    assert ("gateway", "remote", "edgeAuth", ANY_KEY) in fields  # a map whose values take SecretRefs


def test_a_literal_bot_token_is_a_warning_at_its_line_and_column_and_an_error_under_strict(
        tmp_path: Path, provision: Provision) -> None:
    inv = inventory(tmp_path, ("a", f'"{TOKEN}"', "{}"))
    at = line_col(inv, "botToken:")
    r = provision("validate", str(inv))
    assert r.returncode == 0, r.stderr
    assert (f"{inv}:{at}: warning: a/main: config channels.telegram.botToken is a literal secret" in r.stderr
            and "use {source: env, provider: default, id: NAME} and secrets: {NAME: ...}" in r.stderr), r.stderr
    r = provision("validate", str(inv), "--json")
    d = next(d for d in json.loads(r.stdout)["diagnostics"] if d["code"] == "secret-literal")
    assert (d["severity"], d["location"]["line"], d["location"]["column"]) == ("warning", *map(int, at.split(":")))
    for args in (("validate",), ("plan",), ("apply", "--yes")):
        r = provision(*args, str(inv), "--strict")
        assert r.returncode == 1 and f"{inv}:{at}: error: a/main: config channels.telegram.botToken" in r.stderr
    assert not (tmp_path / "hosts").exists()  # the strict apply touched nothing


def test_a_secretref_whose_variable_the_instance_does_not_set_is_an_error(tmp_path: Path,
                                                                          provision: Provision) -> None:
    inv = inventory(tmp_path, ("a", REF, "{OTHER: {env: TG_A}}"))
    r = provision("validate", str(inv))
    assert r.returncode == 1
    assert (f"{inv}:{line_col(inv, 'botToken:')}: error: a/main: config channels.telegram.botToken reads "
            "TELEGRAM_BOT_TOKEN from the gateway's environment, but the instance's secrets: and env: do not set "
            "TELEGRAM_BOT_TOKEN") in r.stderr, r.stderr
    assert provision("validate", str(inventory(tmp_path, ("a", REF, "{TELEGRAM_BOT_TOKEN: {env: TG_A}}")))
                     ).returncode == 0


def test_two_hosts_polling_one_telegram_token_is_an_error_naming_both(tmp_path: Path, provision: Provision) -> None:
    same = "{TELEGRAM_BOT_TOKEN: {env: TG_A}}"
    inv = inventory(tmp_path, ("a", REF, same), ("b", REF, same))
    r = provision("validate", str(inv))
    assert r.returncode == 1
    found = re.findall(r":(\d+):(\d+): error: a/main, b/main: telegram in long polling with one bot token "
                       r"\(controller env TG_A\) on 2 instances: .*use webhook mode \(webhookUrl\) behind the load "
                       r"balancer", r.stderr)
    lines = inv.read_text().splitlines()
    # one error at each host's botToken, the SecretRef both read the shared secret through
    assert [lines[int(n) - 1][int(c) - 1:] for n, c in found] == [f"botToken: {REF}"] * 2, r.stderr
    assert found[0] != found[1]
    # each its own token: valid; a literal token shared by two hosts: the same error, never showing the token
    assert provision("validate", str(inventory(tmp_path, ("a", REF, same), ("b", REF, same.replace("TG_A", "TG_B"))))
                     ).returncode == 0
    inv = inventory(tmp_path, ("a", f'"{TOKEN}"', "{}"), ("b", f'"{TOKEN}"', "{}"))
    r = provision("validate", str(inv), "--json")
    assert r.returncode == 1 and TOKEN not in r.stdout + r.stderr
    polls = [d for d in json.loads(r.stdout)["diagnostics"] if d["code"] == "one-poller"]
    assert len(polls) == 2 and all("a/main, b/main" in d["message"] and "the same literal" in d["message"]
                                   for d in polls)


def test_a_literal_credential_appears_in_no_output_only_in_the_rendered_config(tmp_path: Path,
                                                                            provision: Provision) -> None:
    inv = inventory(tmp_path, ("a", f'"{TOKEN}"', "{}"))
    planfile = tmp_path / "plan.json"
    runs = [("validate", str(inv)), ("validate", str(inv), "--json"), ("plan", str(inv)),
            ("plan", str(inv), "--json", "--out", str(planfile)), ("apply", str(inv), "--yes", "-v"),
            ("apply", str(inv), "--yes", "--json"), ("render", str(inv), "--out", str(tmp_path / "r")),
            ("render", str(inv), "--out", str(tmp_path / "r2"), "--json", "-v")]
    for args in runs:
        r = provision(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert '"botToken": "<redacted>"' in provision.outputs[4]  # the first plan's diff shows the key, masked
    on_host = tmp_path / "hosts/a/home/openclaw/.openclaw-main/openclaw.json"
    assert TOKEN in on_host.read_text()  # the real config holds it: what is masked is a real value
    inv.write_text(inv.read_text().replace(TOKEN, TOKEN + "-rotated"))
    r = provision("plan", str(inv), "--detailed-exitcode")
    assert r.returncode == 2
    assert '-      "botToken": "<redacted>",\n' in r.stdout
    assert '+      "botToken": "<redacted> (changed)",\n' in r.stdout
    assert not [o for o in [*provision.outputs, planfile.read_text()] if TOKEN in o]


def test_a_credential_put_in_env_is_a_warning_at_that_entry_and_masked_in_the_env_files_diff(
        tmp_path: Path, provision: Provision) -> None:
    inv = inventory(tmp_path, ("a", REF, "{}"))
    inv.write_text(inv.read_text() + f'        env: {{TELEGRAM_BOT_TOKEN: "{TOKEN}", NODE_ENV: production}}\n')
    r = provision("validate", str(inv))
    assert r.returncode == 0
    assert (f"{inv}:{line_col(inv, 'TELEGRAM_BOT_TOKEN: ')}: warning: a/main: env TELEGRAM_BOT_TOKEN holds the "
            "credential that config channels.telegram.botToken reads") in r.stderr, r.stderr
    r = provision("plan", str(inv))
    assert r.returncode == 0
    assert "+TELEGRAM_BOT_TOKEN=<redacted>\n" in r.stdout and '+NODE_ENV="production"\n' in r.stdout, r.stdout
    assert TOKEN not in r.stdout + r.stderr
