"""Render, exactly: every file, directory, unit and release a host gets, with its bytes, owner, mode and flags.
Found by mutation testing (`scripts/mutation render`): the fast tests looked at a few lines of each file, so a
changed mode, owner, quoting rule, unit setting or the order of the mount unit went unnoticed.

README, "Inventory": per instance the OpenClaw config, the env file (mode 0600, the only place secrets go, from
the controller's environment or a file) and the unit `openclaw-gateway-<profile>.service` (a systemd-user unit in
`~<service user>/.config/systemd/user/`; none with `manager: none`); "Installing OpenClaw itself": units run the
pinned release under the install prefix. The shared claim directory's mount unit comes first.

Each case under tests/cases/render/ is an inventory and, next to it, the exact render of every host
(`<case>.expected`), which this test compares byte for byte."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from provisioner.core.desired import DesiredHost, FileKind
from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan
from provisioner.dedupe.mountunit import render_mount_unit
from provisioner.inventory.model import DedupeMount, DedupeSettings, SecretRef
from provisioner.render import files
from provisioner.render.files import SecretMissing, controller_secrets, render_inventory
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


# --- where secret values come from ---------------------------------------------------------------------------

SECRET_INV = """\
version: 1
openclaw: {version: "2026.9.6"}
defaults:
  service: {manager: none}
hosts:
  a:
    address: 192.0.2.1
    instances:
      main: {port: 18789, secrets: {OPENCLAW_GATEWAY_TOKEN: SOURCE}}
"""


def _env_file(tmp_path: Path, source: str, environ: dict[str, str]) -> bytes:
    inv = tmp_path / "inv.yaml"
    inv.write_text(SECRET_INV.replace("SOURCE", source))
    v = validate_file(str(inv), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    (host,) = render_inventory(v.inventory, controller_secrets(environ)).values()
    return next(f.content for f in host.files if f.kind is FileKind.ENV)


@pytest.mark.parametrize(("source", "value"), [
    ("{env: TOK}", '"from-env"'),
    ("{file: tok.crlf}", '"from \\"file\\""'),  # the final newline (\r\n too) is not part of the value
    ("{file: ~/tok.home}", '"from home"'),  # ~ is the controller user's home
    ("{file: tok.space}", '"ends in a space "'),  # only the final newline goes, not other white space
    ("{file: tok.x}", '"ends in X"'),
])
def test_a_secret_s_value_comes_from_the_controller_s_environment_or_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home/tok.home").write_text("from home\n\n")
    (tmp_path / "tok.crlf").write_bytes(b'from "file"\r\n')
    (tmp_path / "tok.space").write_text("ends in a space \n")
    (tmp_path / "tok.x").write_text("ends in X\n")
    assert _env_file(tmp_path, source, {"TOK": "from-env"}).endswith(f"OPENCLAW_GATEWAY_TOKEN={value}\n".encode())


@pytest.mark.parametrize(("source", "why"), [
    ("{env: UNSET}", "comes from env UNSET, but environment variable UNSET is not set in the controller's "
                     "environment"),
    ("{file: missing}", "comes from file missing, but the file missing does not exist"),
    ("{file: adir}", "comes from file adir, but adir is a directory, not a file"),
    ("{file: empty}", "comes from file empty, but the file empty is empty"),
    ("{file: latin1}", "comes from file latin1, but the file latin1 is not UTF-8 text"),
    ("{file: loop}", "comes from file loop, but the file loop cannot be read: Too many levels of symbolic links"),
])
def test_a_secret_that_cannot_be_had_names_its_instance_its_source_and_the_real_cause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, why: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(SecretMissing) as exc:
        _env_file(tmp_path, source, {})
    assert str(exc.value) == f"a/main: secret OPENCLAW_GATEWAY_TOKEN {why}"
    assert (exc.value.instance.address, exc.value.name) == ("a/main", "OPENCLAW_GATEWAY_TOKEN")


def test_by_default_secrets_come_from_the_controller_s_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCP_TEST_TOKEN", "from-os-environ")
    assert controller_secrets()(SecretRef(env="OCP_TEST_TOKEN")) == "from-os-environ"


@pytest.mark.parametrize(("error", "why"), [
    (PermissionError(13, "Permission denied"), f"the file /k cannot be read by uid {os.getuid()} (permission denied)"),
    (OSError(5, "Input/output error"), "the file /k cannot be read: Input/output error"),
    (OSError("no errno"), "the file /k cannot be read: no errno"),
])
def test_a_secret_file_that_cannot_be_read_says_why(monkeypatch: pytest.MonkeyPatch, error: OSError, why: str) -> None:
    """Causes root cannot provoke on a real file here (root reads a 0000 file), raised by open itself."""
    def refuse(*a: object, **kw: object) -> None:
        raise error

    monkeypatch.setattr(files, "open", refuse, raising=False)
    with pytest.raises(files.SecretUnavailable) as exc:
        controller_secrets({})(SecretRef(file="/k"))
    assert str(exc.value) == why


# --- the claim directory's mount unit ------------------------------------------------------------------------

def test_a_bind_mount_unit_is_local_and_every_value_keeps_its_percent_signs() -> None:
    dd = DedupeSettings("/srv/claim%d", mount=DedupeMount("bind", "/data/50%/claim", ("ro", "ro")))
    assert render_mount_unit(dd).decode() == (
        "# Managed by openclaw-provisioner: the shared inbound-dedupe claim directory of the HA gateways.\n"
        "[Unit]\nDescription=OpenClaw inbound-dedupe claim directory (bind)\n\n"
        "[Mount]\nWhat=/data/50%%/claim\nWhere=/srv/claim%%d\nType=none\nOptions=ro,bind\nDirectoryMode=0755\n\n"
        "[Install]\nWantedBy=local-fs.target\n")


def test_a_finding_without_a_place_in_the_inventory_is_said_to_be_about_the_inventory() -> None:
    d = Diagnostic(Severity.WARNING, "no hosts", None)
    assert d.format() == "<inventory>: warning: no hosts"
    assert Diagnostic(Severity.ERROR, "bad", SourceSpan("i.yaml", 3, 7)).format() == "i.yaml:3:7: error: bad"


def test_compiled_templates_are_kept_in_the_controller_s_own_cache(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept under the controller's cache dir, 0700; a cache that cannot be made only costs the compile time."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "deep" / "cache"))
    assert files._jinja_cache().directory == str(tmp_path / "deep/cache/openclaw-provisioner/jinja")
    assert (tmp_path / "deep/cache/openclaw-provisioner/jinja").stat().st_mode & 0o777 == 0o700
    assert files._jinja_cache() is not None  # made before: used again
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")
    assert files._jinja_cache() is None
