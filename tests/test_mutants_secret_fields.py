"""Which config fields hold credentials, exactly: the schema walk on small schemas that use each construct the
real one uses ($defs of an embedded plugin, escaped refs, maps, lists, unions), the values found in such fields,
and the masks made of them. Found by mutation testing (`scripts/mutation rules`): the only fast test compared the
walk of the shipped schema with itself, so most of the walk's branches could change unseen.

README: "a credential should not be a literal ... which fields hold credentials comes from OpenClaw's own schema";
secrets are never shown (masked in every diff)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from provisioner.rules import secret_fields
from provisioner.rules.secret_fields import (
    credential_env,
    derive,
    env_reads,
    fields_for,
    is_literal,
    literals,
    masked_forms,
    ref_of,
    values_in_fields,
)

REF = {"type": "object", "properties": {"source": {}, "provider": {}, "id": {}}}
SCHEMA = {
    "$defs": {"ref": REF, "a~b/c": REF},
    "properties": {
        "plain": REF,
        "union": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/ref"}]},
        "escaped": {"$ref": "#/$defs/a~0b~1c"},  # JSON pointer escapes: ~0 is ~, ~1 is /
        "not-an-object": {"type": "string", "properties": {"source": {}, "provider": {}, "id": {}}},
        "no-provider": {"type": "object", "properties": {"source": {}, "id": {}}},
        "map": {"type": "object", "additionalProperties": REF},
        "pattern-map": {"type": "object", "patternProperties": {"^x": {"properties": {"k": REF}}}},
        "list": {"type": "array", "items": {"properties": {"k": REF}}},
        "tuple": {"type": "array", "items": [{"type": "string"}, REF]},
        "all": {"allOf": [{"properties": {"q": REF}}]},
        "one": {"oneOf": [{"type": "null"}, {"properties": {"q": REF}}]},
        # an embedded plugin schema: its `#/$defs/...` mean its own $defs, not the root's
        "plugin": {"$defs": {"ref": {"type": "object", "properties": {"nope": {}}}, "own": REF},
                   "properties": {
                       "p": {"$ref": "#/$defs/own"}, "r": {"$ref": "#/$defs/ref"},
                       "root": {"$ref": "#/properties/plain"},  # a ref to the root's own properties
                       "q": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/ref"}]},  # its own ref, not the root's
                       "pm": {"patternProperties": {"^x": {"$ref": "#/$defs/own"}}},
                       "pl": {"type": "array", "items": {"$ref": "#/$defs/own"}},
                       "pu": {"anyOf": [{"type": "null"}, {"properties": {"k": {"$ref": "#/$defs/own"}}}]},
                   }},
        "loop": {"$ref": "#/properties/loop"},
        "union-loop": {"anyOf": [{"$ref": "#/properties/union-loop"}, {"type": "string"}]},
        "external": {"$ref": "other.json#/x"},
        "dangling": {"$ref": "#/$defs/nothing"},
        "union-dangling": {"anyOf": [{"$ref": "#/$defs/nothing"}, True, {"type": "string"}]},
        "through-a-string": {"$ref": "#/properties/plain/type/x"},
        "untyped": {"properties": {"source": {}, "provider": {}, "id": {}}},  # no `type`: an object all the same
    },
}


def test_the_walk_finds_every_field_that_takes_a_secretref_and_no_other() -> None:
    assert sorted(derive(SCHEMA)) == [
        ("all", "q"), ("escaped",), ("list", "[]", "k"), ("map", "*"), ("one", "q"), ("pattern-map", "*", "k"),
        ("plain",), ("plugin", "p"), ("plugin", "pl", "[]"), ("plugin", "pm", "*"), ("plugin", "pu", "k"),
        ("plugin", "root"), ("tuple", "[]"), ("union",), ("untyped",)]


def _chain(links: int) -> dict[str, Any]:
    """A field whose schema is REF at the end of `links` refs."""
    defs: dict[str, Any] = {f"c{i}": {"$ref": f"#/$defs/c{i + 1}"} for i in range(links - 1)}
    defs[f"c{links - 1}"] = REF
    return {"$defs": defs, "properties": {"f": {"$ref": "#/$defs/c0"}}}


def _unions(levels: int, union: str = "anyOf") -> dict[str, Any]:
    """A field that takes REF inside `levels` nested unions, and has a credential sub-field of its own."""
    node: dict[str, Any] = REF
    for _ in range(levels):
        node = {union: [node]}
    return {"properties": {"x": {**node, "properties": {"k": REF}}}}


def test_the_walk_follows_refs_and_unions_to_a_bound() -> None:
    # a chain of up to 31 refs is followed; a longer one is taken for a loop, and nothing is found at its end
    assert derive(_chain(31)) == {("f",)} and derive(_chain(32)) == set()
    # a field that takes a SecretRef through up to 8 nested unions is one credential field, not looked into
    # further; past 8 the union is not seen through at the field, and the walk goes on into its sub-fields
    for union in ("anyOf", "oneOf", "allOf"):
        assert derive(_unions(8, union)) == {("x",)}, union
        assert derive(_unions(9, union)) == {("x",), ("x", "k")}, union


def test_a_recursive_schema_is_walked_to_a_bounded_depth() -> None:
    found = derive({"properties": {"self": {"properties": {"again": {"$ref": "#/properties/self"}, "k": REF}}}})
    assert ("self", "k") in found and ("self", "again", "k") in found
    assert max(len(p) for p in found) == 40 and len(found) == 39  # nodes at most 40 keys deep are walked


def test_the_credential_fields_of_the_shipped_schema_are_these() -> None:
    # the whole set, pinned: a walk that loses or invents a field changes it
    shipped = json.loads((Path(__file__).parents[1] / "schemas/openclaw/config.schema.2026.9.6.json").read_text())
    fields = sorted(".".join(p) for p in derive(shipped))
    assert len(fields) == 135
    assert hashlib.sha256("\n".join(fields).encode()).hexdigest()[:16] == "3558462976d88322"


CFG = {
    "channels": {"telegram": {"botToken": "123:abc", "accounts": {"ops": {"botToken": "${OPS_TOKEN}"},
                                                                  "b": {"botToken": {"source": "env",
                                                                                     "provider": "default",
                                                                                     "id": "B"}}}},
                 "slack": {"appToken": {"source": "file", "provider": "f", "id": "/x"}}},
    "models": {"providers": {"a": {"apiKey": ""}, "b": {"apiKey": 'q"uo\\te\n'}}},
    "list": [{"k": "L0"}, {"k": "${A}-${B_2}"}],
}
FIELDS = frozenset({("channels", "telegram", "botToken"), ("channels", "telegram", "accounts", "*", "botToken"),
                    ("channels", "slack", "appToken"), ("models", "providers", "*", "apiKey"), ("list", "[]", "k"),
                    ("absent", "*"), ("list", "x"), ("channels", "[]")})


def test_values_in_credential_fields_with_their_paths_in_a_stable_order() -> None:
    assert values_in_fields(CFG, FIELDS) == [
        (("channels", "slack", "appToken"), {"source": "file", "provider": "f", "id": "/x"}),
        (("channels", "telegram", "accounts", "b", "botToken"), {"source": "env", "provider": "default", "id": "B"}),
        (("channels", "telegram", "accounts", "ops", "botToken"), "${OPS_TOKEN}"),
        (("channels", "telegram", "botToken"), "123:abc"),
        (("list", 0, "k"), "L0"),
        (("list", 1, "k"), "${A}-${B_2}"),
        (("models", "providers", "a", "apiKey"), ""),
        (("models", "providers", "b", "apiKey"), 'q"uo\\te\n'),
    ]
    assert literals(CFG, FIELDS) == [(("channels", "telegram", "botToken"), "123:abc"), (("list", 0, "k"), "L0"),
                                     (("models", "providers", "b", "apiKey"), 'q"uo\\te\n')]
    assert credential_env(CFG, FIELDS) == {"OPS_TOKEN", "B", "A", "B_2"}


def test_a_literal_is_masked_as_written_and_as_it_reads_inside_json() -> None:
    assert masked_forms(CFG, FIELDS) == ("123:abc", "L0", 'q"uo\\te\n', 'q\\"uo\\\\te\\n')
    assert masked_forms({"k": "é"}, frozenset({("k",)})) == ("\\u00e9", "é")
    # in the config the tool renders (JSON5, ensure_ascii=False) the quote is escaped and the é is not
    assert masked_forms({"k": 'é"'}, frozenset({("k",)})) == ('\\u00e9\\"', 'é"', 'é\\"')


@pytest.mark.parametrize(("value", "literal", "ref", "reads"), [
    ("tok", True, None, []),
    ("", False, None, []),
    ("${TOKEN}", False, None, ["TOKEN"]),
    ("x${TOKEN}y${T2}", False, None, ["TOKEN", "T2"]),
    ("${lower}", True, None, []),  # OpenClaw substitutes upper-case names only
    ("${9X}", True, None, []),
    ({"source": "env", "provider": "default", "id": "T"}, False, ("env", "default", "T"), ["T"]),
    ({"source": "file", "provider": "p", "id": "/t"}, False, ("file", "p", "/t"), []),
    ({"source": "env", "provider": "default", "id": 1}, False, None, []),  # not a SecretRef: an id is a string
    ({"source": "env", "provider": "default", "id": "T", "x": 1}, False, None, []),
    (7, False, None, []),
])
def test_what_a_credential_value_is(value: object, literal: bool, ref: object, reads: list[str]) -> None:
    assert is_literal(value) is literal
    assert ref_of(value) == ref
    assert env_reads(value) == reads


def test_a_version_without_a_shipped_schema_uses_the_one_its_host_printed_else_the_newest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fields_for.cache_clear()
    try:
        shipped = fields_for("2026.9.6")
        assert fields_for("2099.1.1") == shipped  # nothing cached for it: the newest shipped schema's fields
        host_schema = tmp_path / "openclaw-provisioner" / "schemas" / "config.schema.2099.2.2.json"
        host_schema.parent.mkdir(parents=True)
        host_schema.write_text(json.dumps({"properties": {"token": REF}}), encoding="utf-8")
        assert fields_for("2099.2.2") == {("token",)}
        # the walk's result is kept by the schema's digest, and read back instead of walking again
        kept = list((tmp_path / "openclaw-provisioner" / "secret-fields").glob("*.json"))
        assert len(kept) == 2
        fields_for.cache_clear()
        monkeypatch.setattr(secret_fields, "derive", lambda schema: pytest.fail("walked again"))
        assert fields_for("2099.2.2") == {("token",)} and fields_for("2026.9.6") == shipped
    finally:
        fields_for.cache_clear()
