"""The words of an OpenClaw config check, exactly: each kind of schema error on a small schema of our own (every
branch of openclaw_issues), the browser-profile refinements, and the schema preparation (plugin `$defs`, JS
Unicode property escapes). Found by mutation testing (`scripts/mutation rules`): the fast tests checked a few
messages by fragment, the rest was proven only by the real-OpenClaw module, which mutation runs leave out.

README: `validate` checks each instance's rendered config against the real schema of the pinned OpenClaw
release and says what is wrong, where, and what is expected."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from provisioner.rules.openclaw_config import check_openclaw_config
from provisioner.rules.openclaw_issues import _expected
from provisioner.rules.openclaw_prepare import _prepare, _py_pattern

SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "lo": {"type": "number", "minimum": 0.5},
        "xlo": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10.0},
        "hi": {"type": "integer", "maximum": 10},
        "name": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
        "short": {"type": "string", "maxLength": 3},
        "long": {"type": "string", "minLength": 3},
        "mode": {"enum": ["a", "b"]},
        "one": {"const": "x"},
        "lit": {"anyOf": [{"const": "p"}, {"const": "q"}]},
        "lit1": {"anyOf": [{"const": "p"}]},
        "either": {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 5}]},
        "kinds": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
        "amb": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        "mult": {"type": "integer", "multipleOf": 2.0},
        "items": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": True},
        "props": {"type": "object", "minProperties": 1, "maxProperties": 1},
        "req": {"type": "object", "required": ["a", "b"], "properties": {"a": {}, "b": {}}},
        "names": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
        "pat": {"type": "object", "additionalProperties": False, "properties": {"known": {}},
                "patternProperties": {"^x-": {}}},
        "many": {"type": "object", "additionalProperties": False, "properties": {f"k{i:02d}": {} for i in range(16)}},
        "fifteen": {"type": "object", "additionalProperties": False,
                    "properties": {f"k{i:02d}": {} for i in range(15)}},
        "no": {"not": {"type": "string"}},
        "multi": {"type": ["string", "null"]},
        "free": {"type": "object", "additionalProperties": False},
        "arr": {"type": "array", "items": {"type": "integer"}},
        # a union with a union inside: every branch fails on the type alone, so all of them are the answer
        "nest": {"anyOf": [{"type": "integer"}, {"anyOf": [{"type": "boolean"}, {"type": "null"}]}]},
        "olit": {"oneOf": [{"const": "p"}, {"const": "q"}]},
        "flag": {"const": False},
        # a branch the value's type fits but that fails twice (type and bound): that branch explains the error
        "mix": {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "string"}]},
        "nokeys": {"type": "object", "propertyNames": False},
        "a": {"type": "object", "properties": {"b": {"type": "integer"}}},
        "a-b": {"type": "integer"},
    },
}
PORT = "port: OpenClaw 9.9 expects an integer from 1 to 65535; got"


@pytest.mark.parametrize(("config", "issues"), [
    ({"port": "x"}, [("port", f'{PORT} a string ("x")')]),
    ({"port": 0}, [("port", f"{PORT} 0")]),
    ({"port": 70000}, [("port", f"{PORT} 70000")]),
    ({"port": 1.5}, [("port", f"{PORT} a number (1.5)")]),
    ({"port": True}, [("port", f"{PORT} true or false (true)")]),
    ({"port": [1]}, [("port", f"{PORT} a list ([1])")]),
    ({"port": None}, [("port", f"{PORT} null (null)")]),
    ({"port": {}}, [("port", f"{PORT} an object ({{}})")]),
    ({"port": "x" * 70}, [("port", f'{PORT} a string ("{"x" * 56}...)')]),  # shown values are cut at 60
    ({"lo": 0.1}, [("lo", "lo: OpenClaw 9.9 expects a number >= 0.5; got 0.1")]),
    ({"xlo": 0}, [("xlo", "xlo: OpenClaw 9.9 expects a number > 0 and < 10; got 0")]),
    ({"xlo": 10}, [("xlo", "xlo: OpenClaw 9.9 expects a number > 0 and < 10; got 10")]),
    ({"hi": 11}, [("hi", "hi: OpenClaw 9.9 expects an integer <= 10; got 11")]),
    ({"name": "a"}, [("name", 'name: OpenClaw 9.9 expects a string of 2 to 4 characters matching /^[a-z]+$/; '
                              'got "a"')]),
    ({"name": "AB"}, [("name", 'name: OpenClaw 9.9 expects a string of 2 to 4 characters matching /^[a-z]+$/; '
                               'got "AB"')]),
    ({"short": "abcd"}, [("short", 'short: OpenClaw 9.9 expects a string of 0 to 3 characters; got "abcd"')]),
    ({"long": "a"}, [("long", 'long: OpenClaw 9.9 expects a string of 3 to any number of characters; got "a"')]),
    ({"mode": "c"}, [("mode", 'mode: OpenClaw 9.9 expects one of "a", "b"; got "c"')]),
    ({"one": "y"}, [("one", 'one: OpenClaw 9.9 expects "x"; got "y"')]),
    ({"lit": "r"}, [("lit", 'lit: OpenClaw 9.9 expects one of "p", "q"; got "r"')]),
    ({"lit1": "r"}, [("lit1", 'lit1: OpenClaw 9.9 expects "p"; got "r"')]),
    # of a union's branches, the one the value's type fits explains the error
    ({"either": "abc"}, [("either", 'either: OpenClaw 9.9 expects a string of 5 to any number of characters; '
                                    'got "abc"')]),
    ({"either": 1.5}, [("either", "either: OpenClaw 9.9 expects an integer or a string of 5 to any number of "
                                  "characters; got a number (1.5)")]),
    ({"kinds": "s"}, [("kinds", 'kinds: OpenClaw 9.9 expects an integer or true or false; got a string ("s")')]),
    ({"amb": 1}, [("amb", "amb: 1 matches more than one form OpenClaw 9.9 accepts here; make it unambiguous")]),
    ({"mult": 3}, [("mult", "mult: OpenClaw 9.9 expects an integer (a multiple of 2); got 3")]),
    ({"items": []}, [("items", "items: OpenClaw 9.9 expects at least 1 entries; got 0")]),
    ({"items": [1, 2, 3]}, [("items", "items: OpenClaw 9.9 expects at most 2 entries; got 3")]),
    ({"items": [1, 1]}, [("items", "items: OpenClaw 9.9 expects a list without duplicates; got [1, 1]")]),
    ({"props": {}}, [("props", "props: OpenClaw 9.9 expects at least 1 keys; got 0")]),
    ({"props": {"a": 1, "b": 2}}, [("props", "props: OpenClaw 9.9 expects at most 1 keys; got 2")]),
    ({"req": {"a": 1}}, [("req.b", "req.b is required by OpenClaw 9.9")]),
    ({"req": {"c": 1}}, [("req.a", "req.a is required by OpenClaw 9.9"),
                         ("req.b", "req.b is required by OpenClaw 9.9")]),
    ({"names": {"Bad": 1}}, [("names.Bad", "names.Bad: OpenClaw 9.9 does not accept this key name here (names must "
                                           "be a value matching /^[a-z]+$/)")]),
    ({"names": {"a b": 1}}, [("names.a b", 'names["a b"]: OpenClaw 9.9 does not accept this key name here (names '
                                           "must be a value matching /^[a-z]+$/)")]),
    ({"pat": {"x-ok": 1, "knwn": 1, "zzz": 2}},
     [("pat.knwn", "pat.knwn is not accepted by OpenClaw 9.9: unknown key (did you mean 'known'?)"),
      ("pat.zzz", "pat.zzz is not accepted by OpenClaw 9.9: unknown key (accepted here: known)")]),
    ({"fifteen": {"zzzzz": 1}}, [("fifteen.zzzzz", "fifteen.zzzzz is not accepted by OpenClaw 9.9: unknown key "
                                                   "(accepted here: " + ", ".join(f"k{i:02d}" for i in range(15))
                                  + ")")]),
    ({"many": {"zzzzz": 1}}, [("many.zzzzz", "many.zzzzz is not accepted by OpenClaw 9.9: unknown key (see "
                                             "`openclaw config schema`)")]),
    ({"free": {"a": 1}}, [("free.a", "free.a is not accepted by OpenClaw 9.9: unknown key (see `openclaw config "
                                     "schema`)")]),
    ({"prot": 1}, [("prot", "prot is not accepted by OpenClaw 9.9: unknown key (did you mean 'port'?)")]),
    ({"no": "s"}, [("no", "no: not accepted by OpenClaw 9.9 (not: 's' should not be valid under {'type': 'string'})")]),
    ({"multi": 1}, [("multi", "multi: OpenClaw 9.9 expects a string or null; got an integer (1)")]),
    ({"arr": [1, "x"]}, [("arr.1", 'arr[1]: OpenClaw 9.9 expects an integer; got a string ("x")')]),
    ({"arr": ["é"]}, [("arr.0", 'arr[0]: OpenClaw 9.9 expects an integer; got a string ("é")')]),  # not \u00e9
    # a shown value is cut only past 60 characters: 58 x's and their quotes are 60, 59 are 61
    ({"arr": ["x" * 58]}, [("arr.0", f'arr[0]: OpenClaw 9.9 expects an integer; got a string ("{"x" * 58}")')]),
    ({"arr": ["x" * 59]}, [("arr.0", f'arr[0]: OpenClaw 9.9 expects an integer; got a string ("{"x" * 56}...)')]),
    ({"nest": "s"}, [("nest", 'nest: OpenClaw 9.9 expects an integer or true or false or null; got a string ("s")')]),
    ({"olit": "r"}, [("olit", 'olit: OpenClaw 9.9 expects one of "p", "q"; got "r"')]),
    ({"flag": {"a": 1}}, [("flag", 'flag: OpenClaw 9.9 expects false; got {"a": 1}')]),
    ({"mix": 3.5}, [("mix", "mix: OpenClaw 9.9 expects an integer >= 5; got a number (3.5)")]),
    ({"mix": 3}, [("mix", "mix: OpenClaw 9.9 expects an integer >= 5; got 3")]),
    ({"nokeys": {"k": 1}}, [("nokeys.k", "nokeys.k: OpenClaw 9.9 does not accept this key name here (names must be "
                                         "a different value)")]),
    # ordered by path, not by message ("a-b" sorts before "a.b" as text)
    ({"a-b": "x", "a": {"b": "x"}}, [("a.b", 'a.b: OpenClaw 9.9 expects an integer; got a string ("x")'),
                                     ("a-b", 'a-b: OpenClaw 9.9 expects an integer; got a string ("x")')]),
    # a near miss is suggested only from 0.75 alike: "knowxy" is 0.73 like "known"
    ({"pat": {"knowxy": 1}}, [("pat.knowxy", "pat.knowxy is not accepted by OpenClaw 9.9: unknown key (accepted here: "
                                             "known)")]),
    ({"port": 1, "lo": 1, "name": "ab", "mode": "a", "lit": "q", "either": "abcde", "amb": 1.5, "items": [1, 2],
      "req": {"a": 1, "b": 2}, "pat": {"known": 1, "x-y": 2}}, []),
])
def test_each_kind_of_schema_error_is_put_in_words(config: dict[str, Any], issues: list[tuple[str, str]]) -> None:
    got = check_openclaw_config("9.9", config, schema=SCHEMA)
    assert [(".".join(str(p) for p in i.path), i.message) for i in got] == issues


def test_a_long_message_of_a_rare_keyword_is_cut() -> None:
    schema = {"properties": {"no": {"not": {"enum": ["y" * 200]}}}}
    (issue,) = check_openclaw_config("9.9", {"no": "y" * 200}, schema=schema)
    assert issue.message.startswith("no: not accepted by OpenClaw 9.9 (not: 'yyy")
    assert issue.message.endswith("y...)")
    assert len(issue.message) == len("no: not accepted by OpenClaw 9.9 (not: )") + 160


@pytest.mark.parametrize(("length", "cut"), [(113, False), (114, True)])
def test_a_rare_keyword_message_is_cut_only_past_160_characters(length: int, cut: bool) -> None:
    text = f"'{'y' * length}' should not be valid under {{'type': 'string'}}"  # jsonschema's words: 160 or 161
    (issue,) = check_openclaw_config("9.9", {"no": "y" * length}, schema=SCHEMA)
    assert issue.message == f"no: not accepted by OpenClaw 9.9 (not: {text[:157] + '...' if cut else text})"


def test_a_config_that_is_not_an_object_is_named_as_the_whole_config() -> None:
    (issue,) = check_openclaw_config("9.9", [], schema={"type": "object"})  # type: ignore[arg-type]
    assert issue.path == ()
    assert issue.message == "the config (top level): OpenClaw 9.9 expects an object; got a list ([])"


@pytest.mark.parametrize(("schema", "words"), [
    (False, "a different value"),  # a boolean schema (`false` accepts nothing)
    ({"type": "string", "anyOf": [], "oneOf": []}, "a string"),  # empty unions name no values
    ({"type": ["integer", "decimal"]}, "an integer or decimal"),  # a type without words keeps its name
    ({"anyOf": [{"enum": [1, 2]}, {"type": "string"}]}, "one of 1, 2 or a string"),
    ({"oneOf": [{"const": "a"}, {"type": "null"}]}, '"a" or null'),
])
def test_what_a_subschema_asks_for_in_words(schema: Any, words: str) -> None:
    assert _expected(schema) == words


def test_browser_profiles_need_what_openclaw_refines_beyond_its_json_schema() -> None:
    config = {"browser": {"profiles": {
        "a": {},
        "b": {"driver": "extension", "cdpUrl": "http://x", "userDataDir": "/u"},
        "c": {"driver": "existing-session", "userDataDir": "/u"},
        "d": "x",
        "e": {"cdpPort": 1, "userDataDir": "/u"},
        "f": {"driver": "extension"},
        "g": {"cdpUrl": "http://y"},
    }}}
    assert [(".".join(i.path), i.message) for i in check_openclaw_config("9", config, schema={})] == [
        ("browser.profiles.a", "browser.profiles.a: OpenClaw 9 requires cdpPort or cdpUrl on a browser profile "
                               "(unless driver is existing-session or extension)"),
        ("browser.profiles.b.cdpUrl", 'browser.profiles.b.cdpUrl: OpenClaw 9 does not support it with driver '
                                      '"extension" (the relay owns the endpoint)'),
        ("browser.profiles.b.userDataDir", 'browser.profiles.b.userDataDir: OpenClaw 9 supports it only with driver '
                                           '"existing-session"'),
        ("browser.profiles.e.userDataDir", 'browser.profiles.e.userDataDir: OpenClaw 9 supports it only with driver '
                                           '"existing-session"'),
    ]
    for odd in ({"browser": {"profiles": [1]}}, {"browser": 1}, [], {"browser": {"profiles": {"z": 0}}}):
        assert check_openclaw_config("9", odd, schema={}) == []  # type: ignore[arg-type]


def test_a_config_that_is_not_plain_json_is_checked_not_cached() -> None:
    schema = {"properties": {"port": {"type": "integer"}}}
    for _ in range(2):
        (issue,) = check_openclaw_config("9", {"port": {1, 2}}, schema=schema)
        assert issue.message == 'port: OpenClaw 9 expects an integer; got set ("{1, 2}")'
    # another such config gets its own answer, not the one before (they have no key to tell them apart by)
    (issue,) = check_openclaw_config("9", {"port": {3}}, schema=schema)
    assert issue.message == 'port: OpenClaw 9 expects an integer; got set ("{3}")'


@pytest.mark.parametrize(("js", "py"), [
    ("^a+$", "^a+$"),  # Python takes it as it is
    ("^[\\p{Cc}]+$", "^[\\x00-\\x1f\\x7f-\\x9f]+$"),
    ("^\\p{Cs}$", "^[\\ud800-\\udfff]$"),
    ("^\\P{Cc}$", "^[^\\x00-\\x1f\\x7f-\\x9f]$"),
    ("\\p{Co}x\\\\p", "[\\ue000-\\uf8ff]x\\\\p"),
    ("[\\p{Cc}\\]]x", "[\\x00-\\x1f\\x7f-\\x9f\\]]x"),
    ("a\\p{Cc}[b]", "a[\\x00-\\x1f\\x7f-\\x9f][b]"),
    ("[^\\P{Cc}]", None),  # a negated class inside a class: not expressible
    ("\\p{L}", None),  # a class Python's re has no ranges for here
    ("(", None),
    ("\\p{Cc}(", None),
    ("[\\]\\p{Cc}]", "[\\]\\x00-\\x1f\\x7f-\\x9f]"),  # an escaped ] does not end the class
    ("\\[\\p{Cc}", "\\[[\\x00-\\x1f\\x7f-\\x9f]"),  # an escaped [ does not open one
    ("[b]\\p{Cc}", "[b][\\x00-\\x1f\\x7f-\\x9f]"),  # after a class, outside again
])
def test_js_patterns_become_python_ones_or_none(js: str, py: str | None) -> None:
    assert _py_pattern(js) == py


# A schema with embedded plugin schemas (their own `$defs`, a key that needs JSON-pointer escapes) and JS patterns.
PLUGINS: dict[str, Any] = {
    "$defs": {"x": {"type": "string"}},
    "properties": {
        "plug": {"$defs": {"y": {"type": "integer", "pattern": "\\p{Cc}"}},
                 "properties": {"a": {"$ref": "#/$defs/y"}, "b": {"$ref": "#/$defs/y"}}},
        "a/b~": {"$defs": {"y": {"type": "integer"}}, "properties": {"x": {"$ref": "#/$defs/y"}}},
        "top": {"$ref": "#/$defs/x"},
        "bad": {"pattern": "\\p{L}", "type": "string"},
        "pp": {"patternProperties": {"^\\p{L}$": {}, "^\\p{Cc}$": {"$ref": "#/$defs/x"}, "^ok$": {}}},
    },
    "items": [{"$ref": "#/$defs/x"}, {"pattern": "\\p{Cc}"}],
}
PLUGINS_PREPARED = {
    "$defs": {"x": {"type": "string"}},
    "properties": {
        "plug": {"$defs": {"y": {"type": "integer", "pattern": "[\\x00-\\x1f\\x7f-\\x9f]"}},
                 "properties": {"a": {"$ref": "#/properties/plug/$defs/y"},
                                "b": {"$ref": "#/properties/plug/$defs/y"}}},
        "a/b~": {"$defs": {"y": {"type": "integer"}}, "properties": {"x": {"$ref": "#/properties/a~1b~0/$defs/y"}}},
        "top": {"$ref": "#/$defs/x"},  # the root's own $defs: refs to them stay as written
        "bad": {"type": "string"},  # an inexpressible pattern is not checked
        "pp": {"patternProperties": {"^[\\x00-\\x1f\\x7f-\\x9f]$": {"$ref": "#/$defs/x"}, "^ok$": {}}},
    },
    "items": [{"$ref": "#/$defs/x"}, {"pattern": "[\\x00-\\x1f\\x7f-\\x9f]"}],
}


def test_preparing_a_schema_points_plugin_refs_at_their_own_defs_and_fixes_patterns() -> None:
    schema = json.loads(json.dumps(PLUGINS))
    assert _prepare(schema, "", None) == PLUGINS_PREPARED
    assert schema == PLUGINS  # the caller's schema is not changed
    same = {"properties": {"a": {"type": "string"}}, "items": [1, {"a": [2]}]}
    prepared = _prepare(same, "", None)
    assert prepared is same  # nothing to change: nothing copied
    # and the plugin's refs resolve when validating
    issues = check_openclaw_config("9", {"a/b~": {"x": "s"}, "plug": {"a": "\x01"}}, schema=schema)
    assert [(i.path, i.message) for i in issues] == [
        (("a/b~", "x"), '["a/b~"].x: OpenClaw 9 expects an integer; got a string ("s")'),
        (("plug", "a"), 'plug.a: OpenClaw 9 expects an integer matching /[\\x00-\\x1f\\x7f-\\x9f]/; got a string '
                        '("\\u0001")'),
    ]


# Nested places preparation must reach: a plugin schema inside a list or a pattern map, a plugin's own lists and
# pattern maps, refs a plugin makes to the root, a string that only looks like a pattern, a key that is no regex.
NESTED = {"properties": {
    "alt": {"anyOf": [{"$defs": {"y": {"type": "integer"}}, "properties": {"v": {"$ref": "#/$defs/y"}}}]},
    "plug": {"$defs": {"y": {"type": "integer"}}, "anyOf": [{"$ref": "#/$defs/y"}],
             "patternProperties": {"^z": {"$ref": "#/$defs/y"}}, "properties": {"c": {"$ref": "#/properties/alt"}}},
    "pp": {"patternProperties": {"^x$": {"$defs": {"y": {"type": "integer"}},
                                         "properties": {"v": {"$ref": "#/$defs/y"}}}}},
    "a(": {"type": "string", "description": "see (the docs"},
}}


def test_preparing_reaches_plugin_schemas_in_lists_and_pattern_maps() -> None:
    assert _prepare(NESTED, "", None) == {"properties": {
        "alt": {"anyOf": [{"$defs": {"y": {"type": "integer"}},
                           "properties": {"v": {"$ref": "#/properties/alt/anyOf/0/$defs/y"}}}]},
        "plug": {"$defs": {"y": {"type": "integer"}}, "anyOf": [{"$ref": "#/properties/plug/$defs/y"}],
                 "patternProperties": {"^z": {"$ref": "#/properties/plug/$defs/y"}},
                 "properties": {"c": {"$ref": "#/properties/alt"}}},  # a ref to the root stays one
        "pp": {"patternProperties": {"^x$": {"$defs": {"y": {"type": "integer"}}, "properties": {
            "v": {"$ref": "#/properties/pp/patternProperties/^x$/$defs/y"}}}}},
        "a(": {"type": "string", "description": "see (the docs"},  # only `pattern` values are patterns
    }}


def test_a_prepared_schema_is_kept_in_the_controller_cache_by_the_digest_of_its_text(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioner.rules import openclaw_prepare

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = json.dumps(PLUGINS)
    prepared = openclaw_prepare._prepared_cached(text)
    assert prepared == PLUGINS_PREPARED
    kept = tmp_path / "openclaw-provisioner" / "prepared" / f"{hashlib.sha256(text.encode()).hexdigest()}.json"
    assert json.loads(kept.read_text(encoding="utf-8")) == PLUGINS_PREPARED
    # read back, not prepared again (preparing the real schema takes ~0.2 s, reading it one json.loads)
    monkeypatch.setattr(openclaw_prepare, "_prepare", lambda *a: pytest.fail("prepared again"))
    assert openclaw_prepare._prepared_cached(text) == PLUGINS_PREPARED
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    kept.write_text("[1]", encoding="utf-8")  # not a prepared schema: made again
    assert openclaw_prepare._prepared_cached(text) == PLUGINS_PREPARED


def test_shipped_schema_versions_are_found_by_file_name_and_ordered_as_versions(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioner.rules import openclaw_schemas

    for name in ("config.schema.2026.10.1.json", "config.schema.2026.9.6.json", "config.schema.2026.9.6-beta.1.json",
                 "config.schema.2026.9.6-1.json", "config.schema.2026.9.10.json", "other.json", "config.schema.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "config.schema.2027.1.1.json").mkdir()  # not a file
    monkeypatch.setattr(openclaw_schemas, "_schema_dir", lambda: tmp_path)
    # numbers before words where one version has a number and the other a word (6-1 before 6-beta)
    assert openclaw_schemas.known_versions() == ("2026.9.6", "2026.9.6-1", "2026.9.6-beta.1", "2026.9.10", "2026.10.1")
    assert openclaw_schemas.has_schema("2026.9.10")
    for version in ("2027.1.1", "2026.9.7", "../2026.9.6", "2026.9.6/", ".2026.9.6", ""):
        assert not openclaw_schemas.has_schema(version), version
    monkeypatch.setattr(openclaw_schemas, "_schema_dir", lambda: tmp_path / "absent")
    assert openclaw_schemas.known_versions() == ()
