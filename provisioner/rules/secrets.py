"""Secrets in OpenClaw config: a SecretRef must be fed by the instance, and a credential should not be a literal.

- `{source: env, provider: ..., id: X}` (or a `"${X}"` string) in a credential field reads X from the gateway's
  environment, which is the instance's env file: an X that neither `secrets:` nor `env:` sets is an error (the
  gateway would fail to resolve it; `openclaw secrets audit --check` exits 2).
- A literal string in a field whose schema accepts a SecretRef is a warning (`--strict`: an error). It would
  be stored in openclaw.json, which OpenClaw's own `secrets audit --check` fails on. Its value is never printed.

Which fields hold credentials comes from the real schema of the inventory's OpenClaw version (secret_fields).
"""

from __future__ import annotations

from collections.abc import Iterator

from provisioner.core.diagnostics import Diagnostic
from provisioner.inventory.model import TOKEN_VAR, Instance
from provisioner.rules.context import Ctx
from provisioner.rules.openclaw_issues import _dotted
from provisioner.rules.secret_fields import ConfigPath, Pattern, env_reads, fields_for, is_literal, values_in_fields

LITERAL_CODE = "secret-literal"
FIX = "use {source: env, provider: default, id: NAME} and secrets: {NAME: ...}"


def _fields(c: Ctx) -> frozenset[Pattern]:
    return fields_for(c.inv.openclaw.version)


def credential_values(c: Ctx, inst: Instance) -> list[tuple[ConfigPath, object]]:
    return values_in_fields(inst.config, _fields(c))


def rule_secret_refs(c: Ctx) -> Iterator[Diagnostic]:
    """An env SecretRef whose variable the instance does not set."""
    seen: set[str] = set()
    for h in c.inv.hosts:
        for i in h.instances:
            for path, value in credential_values(c, i):
                for name in env_reads(value):
                    if name in i.secrets or name in i.env or (name == TOKEN_VAR and i.token_file):
                        continue  # (the gateway token the tool makes on the host is in its environment too)
                    span = c.field(i, "config", *(str(p) for p in path))
                    if f"{span}{name}{i.address}" in seen:
                        continue
                    seen.add(f"{span}{name}{i.address}")
                    yield c.error("secret-ref-missing", f"{i.address}: config {_dotted(path)} reads {name} from the "
                                  f"gateway's environment, but the instance's secrets: and env: do not set {name}: "
                                  f"the gateway cannot resolve it; add secrets: {{{name}: {{env: ...}}}} (or "
                                  "{file: ...})", span)


def rule_secret_literals(c: Ctx) -> Iterator[Diagnostic]:
    """A literal string where the schema accepts a SecretRef: a secret in openclaw.json (never shown here)."""
    seen: set[str] = set()
    for h in c.inv.hosts:
        for i in h.instances:
            for path, value in credential_values(c, i):
                for name in env_reads(value):
                    if name in i.env and name not in i.secrets:  # a credential in env:, shown in every plan
                        span = c.field(i, "env", name)
                        if str(span) not in seen:
                            seen.add(str(span))
                            yield c.warning(LITERAL_CODE, f"{i.address}: env {name} holds the credential that config "
                                            f"{_dotted(path)} reads; env: values are written in the inventory and "
                                            f"shown in plans: move it to secrets: {{{name}: {{env: ...}}}}", span)
                if not is_literal(value):
                    continue
                span = c.field(i, "config", *(str(p) for p in path))
                if str(span) in seen:  # one shared default: said once
                    continue
                seen.add(str(span))
                yield c.warning(LITERAL_CODE, f"{i.address}: config {_dotted(path)} is a literal secret (OpenClaw "
                                f"{c.inv.openclaw.version} accepts a SecretRef there; `openclaw secrets audit "
                                f"--check` fails on plaintext in openclaw.json): {FIX}", span)
