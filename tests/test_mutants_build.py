"""The resolved inventory, exactly: every setting of hosts and instances after defaults -> groups -> host ->
instance, the derived paths and names, the settings' defaults, and where each value came from. Found by mutation
testing (`scripts/mutation inventory`): the fast tests checked a few layered values, so most defaults and
derivations in `inventory/build.py` could change unseen.

README: Inventory (defaults, groups, hosts, instances; later layers win; paths derived from the profile)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from provisioner.core.policies import HostKeyPolicy, Manager
from provisioner.inventory.build import build_inventory, layer, normalise_path, profile_suffix
from provisioner.inventory.model import (
    DedupeMount,
    DedupeSettings,
    DocumentEntry,
    InstallSettings,
    Inventory,
    OpenClawSettings,
    PluginSpec,
    SecretRef,
    ServiceSettings,
    SSHSettings,
)
from provisioner.inventory.yamlsource import load_yaml
from provisioner.validate import validate_text

INVENTORY = """\
version: 1
openclaw: {version: "2026.9.6", install: {source: registry, registry: "https://npm.example", keep: 2}}
dedupe: {dir: /srv//claims/, mount: {type: nfs, source: "nas:/c", options: [ro, vers=4], identity_file: /etc/k}}
defaults:
  ssh: {user: deploy, identity_file: keys/id, known_hosts: /etc/kh, host_key_policy: accept-new, become: true,
        connect_timeout: 3, command_timeout: 9}
  service: {user: root}
  instance:
    health: {path: /healthz, timeout: 30, channels: readyz, settle: 2}
    stop_timeout: 60
    env: {FLAG: true, OFF: false, N: 5}
groups:
  g1: {hosts: [h1], vars: {ssh: {port: 2200}, service: {user: gw, group: staff}}}
  g2: {hosts: [h1, h2], vars: {instance: {bind: lan}}}
hosts:
  h1:
    address: 192.0.2.1
    instances:
      Default: {port: 18789}
      ops:
        port: 19789
        profile: work
        state_dir: ~/states//ops/
        workspace: ~root/ws
        config_path: ~alice/c.json
        env_file: /etc/../etc/gw.env
        unit: custom.service
        enabled: false
        dedupe: false
        secrets: {T: {env: TOK}, F: {file: /run/f}}
  h2:
    connection: local
    root: hosts/h2
    service: {manager: systemd-user, home: /srv/home/}
    instances:
      main: {port: 18789}
  h3:
    address: 192.0.2.3
    instances:
      main: {port: 18789}
"""


# Built for each test, not once per module: mutmut gives a function's mutants only to the tests that
# reached it in its first run, and a module fixture reaches the builder during the first test alone.
@pytest.fixture
def inv() -> Inventory:
    v = validate_text(INVENTORY, "/inv/dir/i.yaml", check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    return v.inventory


def _fields(obj: Any, *leave_out: str) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if k not in leave_out}


def test_the_fleet_wide_settings(inv: Inventory) -> None:
    assert inv.openclaw == OpenClawSettings(
        version="2026.9.6", command=("openclaw",), version_explicit=True,
        install=InstallSettings(source="registry", node_version="24.21.0", prefix="/opt/openclaw", keep=2,
                                allow_downgrade=False, registry="https://npm.example"))
    assert inv.openclaw.run_command == ("/opt/openclaw/2026.9.6/bin/openclaw",)
    assert inv.dedupe == DedupeSettings(dir="/srv/claims", configure_gateway=True,
                                        mount=DedupeMount("nfs", "nas:/c", ("ro", "vers=4"), "/etc/k"))
    assert inv.groups == {"g1": ("h1",), "g2": ("h1", "h2")}
    assert (inv.path, inv.host("h2").name) == ("/inv/dir/i.yaml", "h2")
    with pytest.raises(KeyError, match="^'nope'$"):
        inv.host("nope")
    assert (str(inv.span(("hosts", "h1"))), str(inv.span(("hosts", "h1"), key=True))) == ("/inv/dir/i.yaml:17:5",
                                                                                      "/inv/dir/i.yaml:16:3")


def test_hosts_layer_defaults_then_groups_then_their_own(inv: Inventory) -> None:
    ssh = dict(user="deploy", identity_file="/inv/dir/keys/id", known_hosts="/etc/kh",  # relative to the inventory
               host_key_policy=HostKeyPolicy.ACCEPT_NEW, become=True, connect_timeout=3, command_timeout=9)
    h1, h2, h3 = inv.hosts
    assert _fields(h1, "instances") == dict(
        name="h1", address="192.0.2.1", connection="ssh", root=None, ssh=SSHSettings(port=2200, **ssh),
        service=ServiceSettings(Manager.SYSTEMD, "gw", "staff", "/home/gw"), groups=("g1", "g2"),
        doc_path=("hosts", "h1"))
    assert _fields(h2, "instances") == dict(
        name="h2", address=None, connection="local", root="/inv/dir/hosts/h2", ssh=SSHSettings(port=22, **ssh),
        service=ServiceSettings(Manager.SYSTEMD_USER, "root", "root", "/srv/home"), groups=("g2",),
        doc_path=("hosts", "h2"))
    assert h3.service == ServiceSettings(Manager.SYSTEMD, "root", "root", "/root") and h3.groups == ()


def test_an_inventory_with_nothing_but_hosts_gets_the_documented_defaults() -> None:
    v = validate_text("version: 1\nhosts: {h: {address: a, instances: {main: {port: 18789}}}}\n", "i.yaml",
                      check_configs=False)
    assert v.inventory is not None
    (h,) = v.inventory.hosts
    (i,) = h.instances
    assert v.inventory.openclaw == OpenClawSettings("2026.9.6", ("openclaw",), None, False)
    assert v.inventory.openclaw.run_command == ("openclaw",)
    assert v.inventory.dedupe is None and v.inventory.groups == {}
    home = __import__("os").path.expanduser("~")
    assert h.ssh == SSHSettings("root", 22, f"{home}/.ssh/id_ed25519", f"{home}/.ssh/known_hosts",
                                HostKeyPolicy.STRICT, False, 10.0, 300.0)
    assert h.service == ServiceSettings(Manager.SYSTEMD, "openclaw", "openclaw", "/home/openclaw")
    assert _fields(i, "provenance", "service", "doc_path") == dict(
        host="h", name="main", profile="main", port=18789, bind="loopback",
        state_dir="/home/openclaw/.openclaw-main", config_path="/home/openclaw/.openclaw-main/openclaw.json",
        workspace="/home/openclaw/.openclaw-main/workspace", env_file="/home/openclaw/.openclaw-main/gateway.env",
        unit="openclaw-gateway-main.service", enabled=True, config={}, env={}, secrets={}, health_path="/readyz",
        health_timeout=120.0, dedupe=False, health_channels="probe", health_settle=None, stop_timeout=330,
        documents=(), plugins=())
    assert i.token_file == "/home/openclaw/.openclaw-main/gateway.auth.env" and i.auth_mode == "token"


def test_instances_derive_paths_and_names_from_their_profile(inv: Inventory) -> None:
    h1, h2, _ = inv.hosts
    common = dict(bind="lan", config={}, env={"FLAG": "true", "OFF": "false", "N": "5"}, health_path="/healthz",
                  health_timeout=30.0, health_channels="readyz", health_settle=2.0, stop_timeout=60, documents=(),
                  plugins=())
    default, ops = h1.instances
    assert _fields(default, "provenance", "service") == dict(
        host="h1", name="Default", profile="Default", port=18789, state_dir="/home/gw/.openclaw",  # no suffix
        config_path="/home/gw/.openclaw/openclaw.json", workspace="/home/gw/.openclaw/workspace",
        env_file="/home/gw/.openclaw/gateway.env", unit="openclaw-gateway.service", enabled=True, secrets={},
        dedupe=True, doc_path=("hosts", "h1", "instances", "Default"), **common)
    assert _fields(ops, "provenance", "service") == dict(
        host="h1", name="ops", profile="work", port=19789, state_dir="/home/gw/states/ops",
        config_path="/home/alice/c.json", workspace="/root/ws", env_file="/etc/gw.env", unit="custom.service",
        enabled=False, secrets={"T": SecretRef(env="TOK"), "F": SecretRef(file="/run/f")}, dedupe=False,
        doc_path=("hosts", "h1", "instances", "ops"), **common)
    assert ops.service is h1.service
    (main,) = h2.instances
    assert (main.state_dir, main.unit, main.dedupe) == ("/srv/home/.openclaw-main", "openclaw-gateway-main.service",
                                                        True)


def test_each_value_remembers_the_layer_it_came_from(inv: Inventory) -> None:
    default, ops = inv.hosts[0].instances
    assert default.source_of("port") == ("hosts", "h1", "instances", "Default", "port")
    assert default.source_of("bind") == ("groups", "g2", "vars", "instance", "bind")
    assert default.source_of("health", "path") == ("defaults", "instance", "health", "path")
    assert default.source_of("health") == ("defaults", "instance", "health")
    assert default.source_of("env", "FLAG", "deeper") == ("defaults", "instance", "env", "FLAG")
    assert default.source_of("enabled") == ("enabled",)  # the tool's own default
    assert ops.source_of("secrets", "T", "env") == ("hosts", "h1", "instances", "ops", "secrets", "T", "env")
    assert default.source_of("nothing") == ("hosts", "h1", "instances", "Default")


def test_layering_merges_mappings_and_replaces_everything_else() -> None:
    merged, prov = layer([({"a": {"x": 1, "l": [1]}, "s": 1}, ("one",)), ({}, ("none",)),
                          ({"a": {"y": 2, "l": [2]}, "s": {"k": 3}}, ("two",))])
    assert merged == {"a": {"x": 1, "y": 2, "l": [2]}, "s": {"k": 3}}
    assert prov == {("a",): ("two", "a"), ("a", "x"): ("one", "a", "x"), ("a", "l"): ("two", "a", "l"),
                    ("a", "y"): ("two", "a", "y"), ("s",): ("two", "s"), ("s", "k"): ("two", "s", "k")}
    # a mapping replacing a scalar: every leaf below it, at any depth, comes from its layer
    _, prov = layer([({"s": 1}, ("one",)), ({"s": {"k": {"d": {"e": 3}}}}, ("two",))])
    assert prov == {("s",): ("two", "s"), ("s", "k"): ("two", "s", "k"), ("s", "k", "d"): ("two", "s", "k", "d"),
                    ("s", "k", "d", "e"): ("two", "s", "k", "d", "e")}
    src = {"m": {"n": [{"o": 1}]}}
    merged, _ = layer([(src, ())])
    merged["m"]["n"][0]["o"] = 2
    assert src == {"m": {"n": [{"o": 1}]}}  # a copy: what one instance changes, no other sees


@pytest.mark.parametrize(("path", "home", "want"), [
    ("~", "/home/u", "/home/u"),
    ("~/", "/home/u", "/home/u"),
    ("~/a//b/../c/", "/home/u", "/home/u/a/c"),
    ("~root/x", "/home/u", "/root/x"),
    ("~bob", "/home/u", "/home/bob"),
    ("//srv///x/.", "/", "/srv/x"),
    ("/a/b/..", "/", "/a"),
])
def test_paths_are_absolute_and_lexically_normal(path: str, home: str, want: str) -> None:
    assert normalise_path(path, home) == want


@pytest.mark.parametrize(("profile", "suffix"), [("default", ""), ("DEFAULT", ""), ("main", "-main"),
                                                 ("Main", "-Main")])
def test_the_default_profile_has_no_suffix(profile: str, suffix: str) -> None:
    assert profile_suffix(profile) == suffix


@pytest.mark.parametrize(("instance", "mode", "token_file"), [
    ("{port: 18789}", "token", "/home/openclaw/.openclaw-main/gateway.auth.env"),
    ("{port: 18789, state_dir: /srv/s/}", "token", "/srv/s/gateway.auth.env"),
    ("{port: 18789, config: {gateway: {auth: {mode: token}}}}", "token",
     "/home/openclaw/.openclaw-main/gateway.auth.env"),
    ("{port: 18789, config: {gateway: {auth: {mode: password}}}}", "password", None),
    ("{port: 18789, config: {gateway: {auth: {mode: none}}}}", "none", None),
    ("{port: 18789, config: {gateway: {auth: {token: t}}}}", "token", None),  # the inventory gives the token
    ("{port: 18789, config: {gateway: {port: 18789}}}", "token", "/home/openclaw/.openclaw-main/gateway.auth.env"),
    ("{port: 18789, secrets: {OPENCLAW_GATEWAY_TOKEN: {env: T}}}", "token", None),
    ("{port: 18789, env: {OPENCLAW_GATEWAY_TOKEN: t}}", "token", None),
])
def test_the_gateway_token_is_made_on_the_host_unless_the_inventory_gives_one_or_none_is_used(
        instance: str, mode: str, token_file: str | None) -> None:
    v = validate_text(f"version: 1\nhosts: {{h: {{address: a, instances: {{main: {instance}}}}}}}\n", "i.yaml",
                      check_configs=False)
    assert v.inventory is not None, [d.format() for d in v.diagnostics]
    (i,) = v.inventory.hosts[0].instances
    assert (i.auth_mode, i.token_file, i.address) == (mode, token_file, "h/main")


def test_a_secret_says_where_it_comes_from() -> None:
    assert SecretRef(env="TOK").describe() == "env TOK"
    assert SecretRef(file="/run/t").describe() == "file /run/t"


def test_every_path_setting_starting_with_a_tilde_is_under_the_service_users_home() -> None:
    v = validate_text("version: 1\nhosts: {h: {address: a, service: {user: gw, home: /srv/gw},\n"
                      "  instances: {main: {port: 18789, state_dir: ~/s, config_path: ~/c/openclaw.json,\n"
                      "                     workspace: ~/w, env_file: ~/e/gw.env}}}}\n", "i.yaml", check_configs=False)
    assert v.inventory is not None, [d.format() for d in v.diagnostics]
    (i,) = v.inventory.hosts[0].instances
    assert (i.state_dir, i.config_path, i.workspace, i.env_file) == (
        "/srv/gw/s", "/srv/gw/c/openclaw.json", "/srv/gw/w", "/srv/gw/e/gw.env")


def test_documents_and_plugins_as_entries_in_name_order_with_their_defaults() -> None:
    # built straight from the YAML: validate would also look for the document sources on this controller
    text = """\
hosts:
  h:
    instances:
      main:
        documents:
          a.md: docs/a.md
          b.md: null
          c.md: {source: /abs/c.md}
          d.md: {source: d.md, mode: seed, file_mode: "0600"}
        plugins:
          "@acme/thing-plugin": {version: 2.0.0, id: things, config: {a: 1}}
          "@openclaw/slack": 1.2.3
          "@openclaw/x": null
          openclaw-foo: {version: 1.0.0}
"""
    data, spans, errors = load_yaml(text, "/inv/dir/i.yaml")
    assert errors == []
    (i,) = build_inventory(data, spans, "/inv/dir/i.yaml", "").hosts[0].instances
    # a null drops the entry and nothing after it; a plain string is a source; enforce and 0644 unless given
    assert i.documents == (DocumentEntry("a.md", "/inv/dir/docs/a.md", "enforce", 0o644),
                           DocumentEntry("c.md", "/abs/c.md", "enforce", 0o644),
                           DocumentEntry("d.md", "/inv/dir/d.md", "seed", 0o600))
    # an id given wins over the one the package name implies
    assert i.plugins == (PluginSpec("@acme/thing-plugin", "2.0.0", "things", {"a": 1}),
                         PluginSpec("@openclaw/slack", "1.2.3", "slack", None),
                         PluginSpec("openclaw-foo", "1.0.0", "foo", None))


def test_fleet_settings_given_otherwise_and_what_each_host_set_itself() -> None:
    text = """\
version: 1
forks: 7
openclaw: {version: "2026.10.1", command: [node, /opt/oc/cli.js]}
dedupe: {dir: /srv/claims, configure_gateway: false, mount: {type: nfs, source: "nas:/c"}}
defaults: {ssh: {identity_file: /k/id, known_hosts: /etc/link/../known_hosts}}
groups: {g: {hosts: [h], vars: {ssh: {port: 2200}}}}
hosts:
  h: {address: a, ssh: {user: u, proxy_jump: "b.example, c.example"}, instances: {}}
  k: {address: b, instances: {}}
"""
    v = validate_text(text, "/inv/i.yaml", "feed", check_configs=False)
    assert v.inventory is not None, [d.format() for d in v.diagnostics]
    inv = v.inventory
    assert (inv.forks, inv.sha256, inv.raw["forks"]) == (7, "feed", 7)
    assert inv.openclaw == OpenClawSettings("2026.10.1", ("node", "/opt/oc/cli.js"), None, True)
    assert inv.openclaw.run_command == ("node", "/opt/oc/cli.js")
    assert inv.dedupe == DedupeSettings("/srv/claims", False, DedupeMount("nfs", "nas:/c", (), None))
    h, k = inv.hosts
    assert h.ssh.proxy_jump == ("b.example", "c.example")
    # the keys some layer set (an identity file named there is the only one offered), not the defaults'
    assert (h.ssh.explicit, k.ssh.explicit) == (
        frozenset({"identity_file", "known_hosts", "port", "user", "proxy_jump"}),
        frozenset({"identity_file", "known_hosts"}))
    # a controller path given absolute is used as written: `..` after a symbolic link is not the lexical parent
    assert k.ssh.known_hosts == "/etc/link/../known_hosts"
    # no forks: None (the CLI's default applies); a claim dir without a mount: none to render
    bare = validate_text(text.replace("forks: 7\n", "").replace(', mount: {type: nfs, source: "nas:/c"}', ""),
                         "/inv/i.yaml", check_configs=False).inventory
    assert bare is not None and (bare.forks, bare.dedupe) == (None, DedupeSettings("/srv/claims", False, None))


@pytest.mark.parametrize(("prefix", "want"), [("/opt/openclaw/", "/opt/openclaw"), ("//srv//oc/./x/..", "/srv/oc"),
                                              ("/opt/openclaw", "/opt/openclaw")])
def test_the_install_prefix_is_normalised_before_paths_are_joined_onto_it(prefix: str, want: str) -> None:
    doc = yaml.safe_load(INVENTORY)
    doc["openclaw"]["install"]["prefix"] = prefix
    v = validate_text(yaml.safe_dump(doc), "/inv/dir/i.yaml", check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    assert v.inventory.openclaw.install is not None and v.inventory.openclaw.install.prefix == want
    assert v.inventory.openclaw.run_command == (f"{want}/2026.9.6/bin/openclaw",)
