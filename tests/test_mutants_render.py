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

from provisioner.core.desired import DesiredHost, DesiredRelease, FileKind
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


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_everything_a_host_s_render_gives_names_that_host(case: Path) -> None:
    """Each file, directory, unit, token and plugin is the host's own (the dump above does not print it)."""
    v = validate_file(str(case), check_configs=False)
    assert v.inventory is not None
    for name, host in render_inventory(v.inventory, _secret).items():
        parts = [*host.files, *host.dirs, *host.services, *host.tokens, *host.plugins]
        assert {p.host for p in parts} == {name}, name


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


# --- values systemd would read as specifiers, quotes or escapes ------------------------------------------------

QUOTING_INV = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/X/openclaw]}
defaults:
  service: {manager: systemd, user: oc, home: '/srv/50%/a"b\\c'}
hosts:
  a:
    address: 192.0.2.1
    instances:
      main:
        port: 18789
        state_dir: '/srv/state 100%/"q"'
        config:
          messages: {ackReaction: "👀"}
          channels:
            defaults: {groupPolicy: open}
            modelByChannel: {slack: {model: x}}
            slack: {botToken: t}
            telegram: {enabled: false}
            discord: {enabled: true}
"""


def test_paths_keep_their_percent_signs_quotes_and_backslashes_in_the_unit(tmp_path: Path) -> None:
    """README "Inventory": values systemd would expand (`%` specifiers), unquote or unescape reach the gateway as
    written. A home may hold a backslash (a state dir may not: `validate` refuses it for WorkingDirectory=), and
    an argument without a character systemd reads is left bare, whatever letters it has."""
    inv = tmp_path / "inv.yaml"
    inv.write_text(QUOTING_INV)
    v = validate_file(str(inv), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    (host,) = render_inventory(v.inventory, _secret).values()
    unit = next(f for f in host.files if f.kind is FileKind.UNIT).content.decode().splitlines()
    state = '/srv/state 100%%/\\"q\\"'
    assert [line for line in unit if line.startswith(("WorkingDirectory=", "Environment=\"", "ExecStart="))] == [
        'WorkingDirectory=/srv/state 100%%/"q"',
        'Environment="HOME=/srv/50%%/a\\"b\\\\c"',
        'Environment="OPENCLAW_PROFILE=main"',
        f'Environment="OPENCLAW_STATE_DIR={state}"',
        f'Environment="OPENCLAW_CONFIG_PATH={state}/openclaw.json"',
        'Environment="OPENCLAW_GATEWAY_PORT=18789"',
        'Environment="OPENCLAW_SYSTEMD_UNIT=openclaw-gateway-main.service"',
        f'ExecStart=/bin/sh /usr/local/libexec/openclaw-provisioner/gateway-exec "{state}/gateway.auth.env" '
        f'"{state}/gateway.env" -- /opt/X/openclaw --profile main gateway --port 18789',
    ]
    # the config is UTF-8 text as written, not \u escapes
    config = next(f for f in host.files if f.kind is FileKind.CONFIG).content.decode()
    assert '  "messages": {\n    "ackReaction": "👀"\n  }\n' in config
    # the health gate waits for the channels the config turns on: not the settings for all channels
    # (`defaults`, `modelByChannel`), not one set `enabled: false`
    (svc,) = host.services
    assert svc.channels == ("discord", "slack")


DEDUPE_INV = """\
version: 1
openclaw: {version: "2026.9.6"}
defaults:
  service: {manager: systemd, user: oc}
dedupe:
  dir: /srv/claim
MOUNT
hosts:
  sys:
    address: 192.0.2.1
    instances: {main: {port: 18789}, other: {port: 19789, dedupe: false}}
  nodedupe:
    address: 192.0.2.2
    instances: {main: {port: 18789, dedupe: false}}
  user:
    address: 192.0.2.3
    service: {manager: systemd-user}
    instances: {main: {port: 18789}}
  none:
    address: 192.0.2.4
    service: {manager: none}
    instances: {main: {port: 18789}}
"""


@pytest.mark.parametrize(("mount", "units"), [
    ("  mount: {type: bind, source: /data/claim}", {"sys": ["srv-claim.mount"], "nodedupe": [], "user": [],
                                                    "none": []}),
    ("", {"sys": [], "nodedupe": [], "user": [], "none": []}),  # the directory is there already: not mounted
])
def test_the_claim_directory_is_mounted_by_system_units_where_an_instance_uses_it(
        tmp_path: Path, mount: str, units: dict[str, list[str]]) -> None:
    """README "Inbound dedupe": the tool mounts the shared directory (`dedupe.mount`) on the hosts whose gateways
    use it, with a system mount unit; a systemd-user host or `manager: none` gets none."""
    inv = tmp_path / "inv.yaml"
    inv.write_text(DEDUPE_INV.replace("MOUNT", mount))
    v = validate_file(str(inv), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    got = {n: [s.unit for s in h.services if s.unit.endswith(".mount")]
           for n, h in render_inventory(v.inventory, _secret).items()}
    assert got == units


TREE_INV = """\
version: 1
openclaw: {version: "2026.9.6"}
defaults:
  service: {manager: none, user: oc, home: /home/oc}
hosts:
  a:
    address: 192.0.2.1
    instances:
      main:
        port: 18789
        state_dir: /srv/state
        config_path: ~/conf/openclaw.json
        env_file: /etc/oc/gateway.env
        workspace: /srv/ws
        documents: {X: doc.md}
"""


# a home and a state dir whose names the paths beside them start with: `/home/oc` is not inside `/home/ocX`,
# nor `/srv/st` inside `/srv/st ` (a trailing space is part of a name)
BESIDE_INV = TREE_INV.replace("home: /home/oc}", "home: /home/ocX}").replace("state_dir: /srv/state", \
    "state_dir: '/srv/st '").replace("config_path: ~/conf", "config_path: /home/oc/conf").replace(
    "env_file: /etc/oc", "env_file: /srv/st/x").replace("workspace: /srv/ws", "workspace: /srv/wsX")


@pytest.mark.parametrize(("text", "dirs", "files"), [
    pytest.param(TREE_INV, [
        ("/etc/oc", "root", "root", False),
        ("/home/oc/conf", "oc", "oc", True),  # made by root's rule for a config's parent, but in the user's home
        ("/srv/state", "oc", "oc", False),
        ("/srv/ws", "oc", "oc", False),
    ], [
        ("/home/oc/conf/openclaw.json", "oc", True),
        ("/etc/oc/gateway.env", "oc", False),
        ("/srv/ws/X", "oc", True),  # a workspace outside the home is still the user's tree
    ], id="home-and-outside"),
    pytest.param(BESIDE_INV, [
        ("/home/oc/conf", "root", "root", False),
        ("/srv/st ", "oc", "oc", False),
        ("/srv/st/x", "root", "root", False),
        ("/srv/wsX", "oc", "oc", False),
    ], [
        ("/home/oc/conf/openclaw.json", "oc", False),
        ("/srv/st/x/gateway.env", "oc", False),
        ("/srv/wsX/X", "oc", True),
    ], id="beside-the-user-s-trees"),
])
def test_what_lies_in_the_service_user_s_tree_is_the_user_s(tmp_path: Path, text: str, dirs: list[tuple],
                                                            files: list[tuple]) -> None:
    """README "Who is trusted": a target whose parent is in the user's home or in a directory the tool gives the
    user is written as that user, and a parent the tool makes there is the user's too; one outside stays root's."""
    inv = tmp_path / "inv.yaml"
    inv.write_text(text)
    (tmp_path / "doc.md").write_text("x\n")
    v = validate_file(str(inv), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    (host,) = render_inventory(v.inventory, _secret).values()
    assert [(d.path, d.owner, d.group, d.as_user) for d in host.dirs] == dirs
    assert [(f.path, f.owner, f.as_user) for f in host.files] == files


def test_a_release_from_a_registry_keeps_its_registry_and_a_prefix_its_name(tmp_path: Path) -> None:
    """README "Installing OpenClaw itself": `source: registry` fetches from `registry` on the host; the prefix is
    used without its trailing slash (`<prefix>/current`), and only the slash is dropped."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("""\
version: 1
openclaw:
  version: "2026.9.6"
  install: {prefix: /opt/X/, source: registry, registry: "https://npm.example/", keep: 3, allow_downgrade: true}
defaults:
  service: {manager: systemd, user: oc}
hosts:
  a: {address: 192.0.2.1, instances: {main: {port: 18789}}}
""")
    v = validate_file(str(inv), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    (host,) = render_inventory(v.inventory, _secret).values()
    assert host.release == DesiredRelease("/opt/X", "2026.9.6", "24.21.0", "registry", 3, True,
                                          "https://npm.example/")
