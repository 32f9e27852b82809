"""Inventory loading: spans for every key and value, duplicate keys, anchors and merge keys, layering."""

from __future__ import annotations

from pathlib import Path

from provisioner.inventory.build import normalise_path
from provisioner.inventory.yamlsource import load_yaml
from provisioner.validate import validate_text

LAYERED = """\
version: 1
defaults:
  ssh: {user: deploy, port: 2222}
  service: {user: gw}
  instance:
    bind: loopback
    config: {logging: {level: info}, agents: {defaults: {model: a}}}
    env: {A: from-defaults, B: from-defaults}
groups:
  edge:
    hosts: [h1]
    vars:
      ssh: {port: 2200}
      instance:
        config: {logging: {level: debug}}
        env: {B: from-group}
hosts:
  h1:
    address: 192.0.2.1
    ssh: {user: ops}
    instance:
      env: {C: from-host}
    instances:
      main:
        port: 18789
        config: {agents: {defaults: {model: b}}}
  h2:
    address: 192.0.2.2
    instances:
      main: {port: 18789}
"""


def test_every_key_and_value_keeps_its_line_and_column() -> None:
    data, spans, errors = load_yaml("version: 1\nhosts:\n  gw-a:\n    address: 10.0.0.1\n", "inv.yaml")
    assert not errors
    assert data["hosts"]["gw-a"]["address"] == "10.0.0.1"
    assert (spans.key(("hosts", "gw-a")).line, spans.key(("hosts", "gw-a")).col) == (3, 3)
    value = spans.value(("hosts", "gw-a", "address"))
    assert (value.path, value.line, value.col) == ("inv.yaml", 4, 14)


def test_duplicate_keys_are_refused_at_every_depth() -> None:
    text = "version: 1\nversion: 1\nhosts:\n  a: {address: x, address: y, instances: {}}\n"
    _, _, errors = load_yaml(text, "inv.yaml")
    assert [(e.span.line, e.span.col) for e in errors] == [(2, 1), (4, 19)]
    assert all("duplicate key" in e.message for e in errors)


def test_anchors_aliases_and_merge_keys_resolve_with_explicit_keys_winning() -> None:
    text = """\
version: 1
x-base: &base {port: 18789, bind: lan}
hosts:
  a:
    address: 192.0.2.1
    instances:
      main:
        <<: *base
        bind: loopback
"""
    data, spans, errors = load_yaml(text, "inv.yaml")
    assert not errors
    assert data["hosts"]["a"]["instances"]["main"] == {"port": 18789, "bind": "loopback"}
    # an aliased value is located where the anchor defined it (line 2, `18789`), an explicit key on its own line
    port = spans.value(("hosts", "a", "instances", "main", "port"))
    bind = spans.value(("hosts", "a", "instances", "main", "bind"))
    assert [(s.path, s.line, s.col) if s else None for s in (port, bind)] == [("inv.yaml", 2, 22), ("inv.yaml", 9, 15)]


def test_recursive_alias_is_an_error_not_a_crash() -> None:
    _, _, errors = load_yaml("a: &x [*x]\n", "inv.yaml")
    assert errors and "recursive" in errors[0].message


def test_layers_merge_defaults_then_groups_then_host_then_instance(tmp_path: Path) -> None:
    v = validate_text(LAYERED, str(tmp_path / "inv.yaml"), check_configs=False)
    assert v.ok, [d.format() for d in v.diagnostics]
    assert v.inventory is not None
    h1, h2 = v.inventory.hosts
    assert (h1.ssh.user, h1.ssh.port) == ("ops", 2200)
    assert (h2.ssh.user, h2.ssh.port) == ("deploy", 2222)
    main = h1.instances[0]
    assert main.config == {"logging": {"level": "debug"}, "agents": {"defaults": {"model": "b"}}}
    assert main.env == {"A": "from-defaults", "B": "from-group", "C": "from-host"}
    assert h2.instances[0].config["logging"] == {"level": "info"}
    assert main.state_dir == "/home/gw/.openclaw-main"
    # provenance: the level came from the group, the model from the instance
    assert main.source_of("config", "logging", "level") == ("groups", "edge", "vars", "instance", "config", "logging",
                                                             "level")
    assert main.source_of("config", "agents", "defaults", "model")[:4] == ("hosts", "h1", "instances", "main")


def test_paths_are_normalised_so_spelling_cannot_hide_a_clash() -> None:
    home = "/home/openclaw"
    for spelling in ("~/.openclaw-main", "/home/openclaw//.openclaw-main/", "/home/openclaw/x/../.openclaw-main",
                     "//home/openclaw/.openclaw-main", "~openclaw/.openclaw-main"):
        assert normalise_path(spelling, home) == "/home/openclaw/.openclaw-main", spelling
    assert normalise_path("~root/.openclaw", home) == "/root/.openclaw"


def test_default_profile_has_no_suffix(tmp_path: Path) -> None:
    text = "version: 1\nhosts:\n  a:\n    address: x\n    instances:\n      default: {port: 18789}\n"
    v = validate_text(text, str(tmp_path / "i.yaml"), check_configs=False)
    assert v.inventory is not None
    inst = v.inventory.hosts[0].instances[0]
    assert (inst.state_dir, inst.unit) == ("/home/openclaw/.openclaw", "openclaw-gateway.service")


def test_garbage_input_never_raises(tmp_path: Path) -> None:
    for text in ["", "---\n", "[1, 2]", "version: 1\nhosts: []", "version: 1\nhosts:\n  a: 3\n", "\t- x",
                 "version: 1\nhosts: {a: {address: x, instances: {main: {port: 1, config: [1]}}}}",
                 "version: 1\nhosts: {a: {address: x, instances: {main: {port: 1, config: {browser: {profiles: 3}}}}}}",
                 "a: !!python/object:os.system {}", "version: 1\n? [a]\n: b\n", "version: 2020-01-01\n"]:
        v = validate_text(text, str(tmp_path / "i.yaml"))
        for d in v.diagnostics:
            assert d.span is not None, d
