"""Render, exactly: every file, directory, unit and release a host gets, with its bytes, owner, mode and flags.
Found by mutation testing (`scripts/mutation render`): the fast tests looked at a few lines of each file, so a
changed mode, owner, quoting rule, unit setting or the order of the mount unit went unnoticed.

README, "What it writes": per instance the OpenClaw config (0600, the service user's), its env file (0600, the
only place a secret value goes) and a systemd unit (system unit root's 0644, a systemd-user unit in the user's
home, written as the user; none with `manager: none`); the shared claim directory's mount unit first; a pinned
release under the install prefix. Each case under tests/cases/render/ is an inventory and, next to it, the exact
render of every host (`<case>.expected`), which this test compares byte for byte."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from provisioner.core.desired import DesiredHost
from provisioner.inventory.model import SecretRef
from provisioner.render.files import render_inventory
from provisioner.rules.secret_fields import fields_for
from provisioner.validate import validate_file

VERSION = "2026.9.6"  # every case pins it
CASES = sorted((Path(__file__).parent / "cases" / "render").glob("*.yaml"))


def _secret(ref: SecretRef) -> str:
    """A stand-in controller: each secret's value names its source, so the expected text shows which went where."""
    return f"value-of-{ref.env or ref.file}"


def _fields(fields: frozenset[tuple[str, ...]], host: DesiredHost) -> str:
    """The credential fields a config's diff masks: those of the pinned version's schema (all of them, not a list
    of hundreds here), or none."""
    if not fields:
        return "none"
    assert fields == fields_for(VERSION), host.name
    return f"those of {VERSION}"


def dump(host: DesiredHost) -> str:
    """Everything render decided for a host, as text: one block per file (its bytes verbatim), then dirs,
    services, tokens and the release."""
    out = [f"host {host.name} user={host.service_user} home={host.service_home}"]
    for f in host.files:
        out.append(f"--- file {f.path} instance={f.instance} {f.mode:04o} {f.owner}:{f.group} kind={f.kind.value}"
                   f" as_user={f.as_user} secret_values={list(f.secret_values)} reveal_keys={list(f.reveal_keys)}"
                   f" mask_fields={_fields(f.mask_fields, host)}")
        out.append(f.content.decode())
    for d in host.dirs:
        out.append(f"--- dir {d.path} instance={d.instance} {d.mode:04o} {d.owner}:{d.group}"
                   f" ensure_only={d.ensure_only} as_user={d.as_user}")
    for s in host.services:
        out.append(f"--- service {s!r}")
    for t in host.tokens:
        out.append(f"--- token {t!r}")
    out.append(f"--- release {host.release!r}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_every_host_renders_to_its_expected_bytes(case: Path) -> None:
    v = validate_file(str(case), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    got = "".join(dump(h) for h in render_inventory(v.inventory, _secret).values())
    expected = case.with_suffix(".expected").read_text()
    assert got == expected, "render differs from " + case.with_suffix(".expected").name + ":\n" + "".join(
        difflib.unified_diff(expected.splitlines(True), got.splitlines(True), "expected", "rendered"))
