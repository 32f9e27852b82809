"""check_openclaw_config on the shipped 2026.9.6 schema: verdicts, messages, paths, speed (no openclaw)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from provisioner.rules import openclaw_config as oc
from provisioner.rules.openclaw_config import check_openclaw_config
from provisioner.rules.openclaw_issues import ConfigIssue
from provisioner.rules.openclaw_schemas import has_schema, known_versions

V = "2026.9.6"


def minimal(**gateway: Any) -> dict[str, Any]:
    return {"gateway": {"mode": "local", "port": 18789, "bind": "loopback", **gateway}}


def only(issues: list[ConfigIssue]) -> ConfigIssue:
    assert len(issues) == 1, issues
    return issues[0]


def test_shipped_versions() -> None:
    assert V in known_versions()
    assert has_schema(V)
    assert not has_schema("1999.1.1")
    assert not has_schema("../../etc/passwd")


def test_unknown_version_raises_key_error() -> None:
    with pytest.raises(KeyError, match="1999.1.1"):
        check_openclaw_config("1999.1.1", minimal())


@pytest.mark.parametrize("config", [
    minimal(),
    minimal(auth={"mode": "token", "token": "s3cret"}),
    {**minimal(), "browser": {"profiles": {"work": {"cdpPort": 18800}, "r": {"cdpUrl": "http://10.0.0.5:9222"}}}},
    {},  # the schema requires nothing; gateway.mode is only required to *start*
])
def test_valid_configs(config: dict[str, Any]) -> None:
    assert check_openclaw_config(V, config) == []


def test_inbound_dedupe_is_explained() -> None:
    cfg = minimal(inboundDedupe={"file": {"dir": "/var/lib/openclaw/claims"}})
    issue = only(check_openclaw_config(V, cfg))
    assert issue.path == ("gateway", "inboundDedupe")
    assert issue.message.startswith(f"gateway.inboundDedupe is not accepted by OpenClaw {V}: ")
    assert "in-process only" in issue.message and "dedupe:" in issue.message


def test_canvas_host_is_retired() -> None:
    issue = only(check_openclaw_config(V, {**minimal(), "canvasHost": {"port": 18793}}))
    assert issue.path == ("canvasHost",)
    assert f"canvasHost is not accepted by OpenClaw {V}" in issue.message
    assert "retired" in issue.message and "gateway port" in issue.message


def test_browser_control_port_is_derived() -> None:
    issue = only(check_openclaw_config(V, {**minimal(), "browser": {"controlPort": 18791}}))
    assert issue.path == ("browser", "controlPort")
    assert "gateway.port + 2" in issue.message


def test_unknown_key_suggests_the_close_one() -> None:
    issue = only(check_openclaw_config(V, minimal(prot=1)))
    assert issue.path == ("gateway", "prot")
    assert "gateway.prot is not accepted by OpenClaw 2026.9.6: unknown key" in issue.message
    assert "'port'" in issue.message


def test_bind_enum_lists_allowed_values() -> None:
    issue = only(check_openclaw_config(V, minimal(bind="everywhere")))
    assert issue.path == ("gateway", "bind")
    for value in ("auto", "lan", "loopback", "custom", "tailnet", "everywhere"):
        assert f'"{value}"' in issue.message
    assert len(issue.message) < 200  # never the schema


@pytest.mark.parametrize(("port", "got"), [
    (70000, "got 70000"), (0, "got 0"),
    ("18789", 'got a string ("18789")'), (18789.5, "got a number (18789.5)"),
])
def test_port_range_and_type(port: Any, got: str) -> None:
    issue = only(check_openclaw_config(V, minimal(port=port)))
    assert issue.path == ("gateway", "port")
    assert "an integer from 1 to 65535" in issue.message and got in issue.message


def test_union_picks_the_relevant_branch() -> None:
    issue = only(check_openclaw_config(V, minimal(auth={"mode": "token", "token": 5})))
    assert issue.path == ("gateway", "auth", "token")
    assert "a string or an object" in issue.message
    # a secret ref object: the message is about the object branch's missing field, not "not valid under any"
    ref = {"source": "env", "provider": "x"}
    issues = check_openclaw_config(V, minimal(auth={"mode": "token", "token": ref}))
    assert ("gateway", "auth", "token", "id") in [i.path for i in issues]
    assert all("any of the given schemas" not in i.message for i in issues)


def test_bad_key_name_points_at_the_key() -> None:
    cfg = {**minimal(), "browser": {"profiles": {"Work": {"cdpPort": 18800}}}}
    issue = only(check_openclaw_config(V, cfg))
    assert issue.path == ("browser", "profiles", "Work")
    assert "key name" in issue.message


def test_browser_profile_needs_cdp_port_or_url() -> None:  # a zod refinement the JSON Schema cannot express
    cfg = {**minimal(), "browser": {"profiles": {"work": {"headless": True}}}}
    issue = only(check_openclaw_config(V, cfg))
    assert issue.path == ("browser", "profiles", "work")
    assert "cdpPort or cdpUrl" in issue.message


def test_plugin_schemas_with_local_defs_resolve() -> None:
    # imap's embedded schema refers to its own $defs as "#/$defs/...": must resolve, not crash
    account = {"password": {"source": "env"}}
    cfg = {**minimal(), "plugins": {"entries": {"imap": {"config": {"accounts": {"a": account}}}}}}
    paths = {i.path[-1] for i in check_openclaw_config(V, cfg)}
    assert {"host", "user", "agentId"} <= paths


def test_js_unicode_property_patterns_work() -> None:
    cfg = {**minimal(), "channels": {"feishu": {"stickerSets": {"x": {"y": ["fine", " leading space"]}}}}}
    issue = only(check_openclaw_config(V, cfg))
    assert issue.path == ("channels", "feishu", "stickerSets", "x", "y", 1)


def test_explicit_schema_is_used() -> None:
    schema = {"type": "object", "properties": {"gateway": {"type": "object"}}, "additionalProperties": False}
    issue = only(check_openclaw_config("9.9.9", {"gateway": {}, "extra": 1}, schema=schema))
    assert issue.path == ("extra",) and "OpenClaw 9.9.9" in issue.message


def test_results_are_cached_but_not_shared() -> None:
    cfg = minimal(bind="everywhere")
    first = check_openclaw_config(V, cfg)
    first.clear()
    assert len(check_openclaw_config(V, copy.deepcopy(cfg))) == 1


def test_a_fleet_compiles_the_schema_once_and_validates_each_distinct_config() -> None:
    """100 hosts x 2 instances, each config distinct (ports differ): one validator for all of them, and each
    config really validated (an error planted in one is found there and nowhere else). How fast that is lives
    in bench/, not here: a timed test fails on a loaded CI machine, not on slow code."""
    oc._shipped_checker.cache_clear()
    check_openclaw_config(V, minimal())
    checker = oc._shipped_checker(V)
    base = {**minimal(auth={"mode": "token"}), "agents": {"defaults": {"workspace": "/srv/oc/workspace"}},
            "browser": {"profiles": {"work": {"cdpPort": 1}}}, "logging": {"level": "info"}}
    configs = []
    for i in range(200):
        cfg = copy.deepcopy(base)
        cfg["gateway"]["port"] = 20000 + 120 * i
        cfg["browser"]["profiles"]["work"]["cdpPort"] = 20050 + 120 * i
        configs.append(cfg)
    configs[137]["logging"]["level"] = "chatty"
    results = [check_openclaw_config(V, c) for c in configs]
    assert [i for i, r in enumerate(results) if r] == [137]
    assert oc._shipped_checker.cache_info().misses == 1 and oc._shipped_checker(V) is checker
    assert len(checker._results) == 201  # each distinct config validated once and remembered


def test_a_cold_load_prepares_the_schema_once_per_version() -> None:
    oc._shipped_checker.cache_clear()
    first = oc._shipped_checker(V)
    assert oc._shipped_checker(V) is first and oc._shipped_checker.cache_info().misses == 1
    assert check_openclaw_config(V, minimal()) == []
