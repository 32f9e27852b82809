"""Hostile inventories: validate_text never raises, and every diagnostic points into the file (path:line:col).

Thousands of generated inventories: valid ones, valid ones with one node replaced by junk (wrong types, huge
ints, weird unicode, deep nesting, nulls), text-level damage (bytes cut, inserted, lines swapped), and random
YAML. Derandomized so that CI sees the same examples every run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.validate import Validated, validate_text

PATH = "fuzz/inventory.yaml"
FAST = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # every example must go through the whole pipeline, not through the memo of an earlier one
    monkeypatch.setenv("OCP_NO_VALIDATION_CACHE", "1")


def check(text: str) -> Validated:
    """The property: no exception, and every diagnostic located inside the text."""
    v = validate_text(text, PATH)
    lines = max(text.count("\n") + 1, 1)
    for d in v.diagnostics:
        assert d.span is not None, f"diagnostic without a location: {d.format()}"
        assert d.span.path == PATH
        assert 1 <= d.span.line <= lines + 1, d.format()
        assert d.span.col >= 1, d.format()
        assert d.message.strip()
        assert str(d.span) in d.format()
    if v.ok:
        assert v.inventory is not None
    return v


# --- generators ---------------------------------------------------------------------------------------------

LOWER = "abcdefghijklmnopqrstuvwxyz"
NAME = st.builds(str.__add__, st.sampled_from(LOWER), st.text(LOWER + "0123456789-", max_size=10))
PROFILE = st.builds(str.__add__, st.sampled_from(LOWER), st.text(LOWER + "0123456789_-", max_size=8))
WEIRD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "~", "/", "$(touch /tmp/pwned)", "`id`", ";rm -rf /;", "a\nb", "\x00", "\u202e",
                     "\ud7ff", "ｆｕｌｌ", "🦞", "..", "../../etc/passwd", "%n%s", "{{ x }}", "null", "yes", "1e999",
                     "-1", "0x10", "NaN", "\t", "'\"", "\\", "[", "{", "*a", "&a", "!!python/object:os.system",
                     "2001-02-30", "12:30:00"]),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18, max_value=10**40),
                   st.floats(allow_nan=True, allow_infinity=True), WEIRD_TEXT)
JUNK = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(WEIRD_TEXT, inner, max_size=4)),
                    max_leaves=12)


def deep(depth: int) -> Any:
    node: Any = "leaf"
    for i in range(depth):
        node = {f"k{i}": node} if i % 2 else [node]
    return node


@st.composite
def valid_inventory(draw: st.DrawFn) -> dict[str, Any]:
    hosts: dict[str, Any] = {}
    for h in draw(st.lists(NAME, min_size=1, max_size=3, unique=True)):
        instances: dict[str, Any] = {}
        names = draw(st.lists(PROFILE, min_size=1, max_size=3, unique=True))
        for n, name in enumerate(names):
            inst: dict[str, Any] = {"port": 18000 + 200 * n}
            if draw(st.booleans()):
                inst["config"] = {"logging": {"level": draw(st.sampled_from(["info", "debug", "warn"]))}}
            if draw(st.booleans()):
                inst["env"] = {"FOO": draw(st.text(st.characters(min_codepoint=32, max_codepoint=0x2fff,
                                                                 exclude_categories=["Cs", "Cc"]), max_size=20))}
            if draw(st.booleans()):
                inst["secrets"] = {"OPENCLAW_GATEWAY_TOKEN": {"env": "TOKEN"}}
                inst.setdefault("config", {})["gateway"] = {"auth": {"mode": "token"}}
            if draw(st.booleans()):
                # printable ASCII but what systemd's WorkingDirectory= would not take literally (refused: unit-path)
                chars = st.characters(min_codepoint=32, max_codepoint=0x7e, exclude_characters="*?[]\\")
                inst["state_dir"] = "/srv/" + draw(st.text(chars, min_size=1, max_size=12)) + f"/{name}"
            instances[name] = inst
        hosts[h] = {"address": f"192.0.2.{len(hosts) + 1}", "instances": instances}
    inv: dict[str, Any] = {"version": 1, "openclaw": {"version": "2026.9.6", "command": ["/usr/bin/openclaw"]},
                           "hosts": hosts}
    if draw(st.booleans()):
        inv["defaults"] = {"ssh": {"user": "root", "port": 22}, "instance": {"bind": "loopback"}}
    if draw(st.booleans()) and len(hosts) > 1:
        inv["groups"] = {"all": {"hosts": sorted(hosts)}}
    return inv


def paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*at, i))


def replaced(doc: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for k in at[:-1]:
        node = node[k]
    node[at[-1]] = value
    return doc


def dump(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError, RecursionError):
        return str(doc)


@st.composite
def mutated_inventory(draw: st.DrawFn) -> str:
    doc = draw(valid_inventory())
    spots = list(paths(doc))
    for _ in range(draw(st.integers(1, 3))):
        spots = list(paths(doc))
        at = draw(st.sampled_from(spots))
        value = draw(st.one_of(JUNK, st.builds(deep, st.integers(5, 60))))
        if at and isinstance(at[-1], str) and draw(st.booleans()):
            # rename the key instead: unknown, misspelt or hostile keys
            parent = doc
            for k in at[:-1]:
                parent = parent[k]
            if isinstance(parent, dict) and at[-1] in parent:
                parent[draw(WEIRD_TEXT)] = parent.pop(at[-1])
            continue
        doc = replaced(doc, at, value)
    return dump(doc)


@st.composite
def damaged_text(draw: st.DrawFn) -> str:
    text = dump(draw(valid_inventory()))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "insert", "swap", "indent", "truncate"]))
        pos = draw(st.integers(0, len(text)))
        if op == "cut":
            text = text[:pos] + text[pos + draw(st.integers(1, 20)):]
        elif op == "insert":
            text = text[:pos] + draw(st.one_of(WEIRD_TEXT, st.sampled_from([": ", "- ", "\n  ", "&x ", "*x", "<<: *x\n",
                                                                            "!!binary ", "? ", "|\n", "---\n",
                                                                            "!!timestamp ", "!!bool ", "!!int ",
                                                                            "!!float ", "\r", "\u2028", ".nan",
                                                                            "0x" + "f" * 40])))\
                + text[pos:]
        elif op == "swap":
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif op == "indent":
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
            text = "\n".join(lines)
        else:
            text = text[:pos]
    return text


# --- properties ---------------------------------------------------------------------------------------------

@FAST
@given(valid_inventory())
def test_generated_valid_inventories_validate(doc: dict[str, Any]) -> None:
    v = check(dump(doc))
    assert v.ok, [d.format() for d in v.diagnostics]


@FAST
@given(mutated_inventory())
def test_a_valid_inventory_with_junk_in_it_never_crashes_validation(text: str) -> None:
    check(text)


@FAST
@given(damaged_text())
def test_damaged_yaml_text_never_crashes_validation(text: str) -> None:
    check(text)


@settings(FAST, max_examples=500)
@given(JUNK)
def test_random_yaml_documents_never_crash_validation(doc: Any) -> None:
    check(dump(doc))


@settings(FAST, max_examples=500)
@given(st.text(max_size=300))
def test_random_text_never_crashes_validation(text: str) -> None:
    check(text)


HOSTILE = {
    "flow-nesting-200k": "version: 1\nhosts: " + "[" * 200_000 + "]" * 200_000 + "\n",  # crashed libyaml's composer
    "mapping-nesting-3k": "version: 1\nhosts: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "config-nesting-200": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 18789, config: "
                          + "{a: " * 200 + "1" + "}" * 200 + "}}}}\n",
    "recursive-alias": "a: &a [*a]\n",
    "huge-int-port": "version: 1\nhosts: {h: {address: x, instances: {main: {port: " + "9" * 5000 + "}}}}\n",
    "float-overflow-port": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 1e99999}}}}\n",
    "binary-tag": "version: 1\nhosts: !!binary aGVsbG8=\n",
    "python-tag": "version: 1\nhosts: !!python/object/apply:os.system [touch /tmp/pwned-yaml]\n",
    "two-documents": "version: 1\n---\nversion: 1\n",
    "bom": "\ufeffversion: 1\nhosts: {}\n",
    "newline-in-path": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 18789, "
                       "state_dir: \"/a\\nb\"}}}}\n",
    "shell-in-address": "version: 1\nhosts: {h: {address: \"x; touch /tmp/pwned\", instances: {main: {port: 1}}}}\n",
    "path-in-instance-name": "version: 1\nhosts: {h: {address: x, instances: {\"../x\": {port: 18789}}}}\n",
    "bad-date": "version: 1\nx: 2001-02-30\nhosts: {}\n",
    "empty": "",
    "only-comment": "# nothing\n",
    "nul-byte": "version: 1\x00\nhosts: {}\n",
    # block nesting has no brackets to count: these crashed the composer (segfault)
    "block-sequence-nesting-100k": "version: 1\nhosts:\n" + "- " * 100_000 + "x\n",
    "complex-key-nesting-100k": "version: 1\nhosts:\n  " + "? " * 100_000 + "x\n",
    # "billion laughs": 10 lines of aliases expanding to 10^9 nodes (hung)
    "alias-expansion": "version: 1\nx0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
                       + "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
                       + "hosts: {}\n",
    "recursive-merge": "version: 1\nhosts: &h {<<: *h}\n",
    "hex-int-port": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 0x" + "f" * 5000 + "}}}}\n",
    "binary-int-port": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 0b" + "1" * 20000 + "}}}}\n",
    "sexagesimal-int-port": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 1" + ":59" * 3000
                            + "}}}}\n",
    "nan-timeout": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 18789, health: {timeout: .nan}}}}}\n",
    "nan-ssh-timeout": "version: 1\nhosts: {h: {address: x, ssh: {connect_timeout: .nan}, instances: "
                       "{main: {port: 18789}}}}\n",
    "config-gateway-list": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 18789, "
                           "config: {gateway: [1]}}}}}\n",
    "config-agents-defaults-string": "version: 1\nhosts: {h: {address: x, instances: {main: {port: 18789, "
                                     "config: {agents: {defaults: x}}}}}}\n",
    "explicit-tags": "version: !!timestamp 1\nhosts: {h: {address: !!bool x, instances: {main: {port: !!int \"\"}}}}\n",
    "lone-surrogate": "version: 1\nhosts: {}\n# \ud800\n",
    "carriage-return-lines": "version: 1\rx: 1\rx: 2\rhosts: {}\r" * 3,
    "unicode-line-separators": "version: 1\u2028x: 1\u2029x: 2\x85hosts: {}",
}


# why each one is refused: (line, rule code, words of the message); a refusal for another reason (a crash turned
# into a generic error, a tag executed and then rejected by the schema) is a different behaviour
REFUSED_BECAUSE = {
    "alias-expansion": (2, "yaml", "aliases expand the inventory to more than"),
    "bad-date": (2, "yaml", "invalid value '2001-02-30': day is out of range for month"),
    "binary-int-port": (2, "yaml", "integer out of range"),
    "binary-tag": (2, "schema", "hosts: expected object, got bytes"),
    "block-sequence-nesting-100k": (3, "yaml", "nested more than 64 levels deep"),
    "bom": (2, "schema", "hosts: {} should be non-empty"),
    "carriage-return-lines": (1, "duplicate-key", "duplicate key 'x' (first defined at line 1, column 12)"),
    "complex-key-nesting-100k": (3, "yaml", "nested more than 64 levels deep"),
    "config-agents-defaults-string": (2, "config-conflict", "config agents.defaults must be a mapping"),
    "config-gateway-list": (2, "config-conflict", "config gateway must be a mapping"),
    "config-nesting-200": (2, "yaml", "nested more than 64 levels deep"),
    "empty": (1, "", "the inventory is empty"),
    "explicit-tags": (1, "yaml", "invalid value '1' for the tag !!timestamp"),
    "float-overflow-port": (2, "schema", "port: expected integer"),
    "flow-nesting-200k": (2, "yaml", "nested more than 64 levels deep"),
    "hex-int-port": (2, "yaml", "integer out of range"),
    "huge-int-port": (2, "yaml", "integer out of range"),
    "lone-surrogate": (3, "yaml", "U+D800 cannot be encoded as UTF-8"),
    "mapping-nesting-3k": (2, "yaml", "nested more than 64 levels deep"),
    "nan-ssh-timeout": (2, "schema", "connect_timeout: .nan is not a number"),
    "nan-timeout": (2, "schema", "health.timeout: .nan is not a number"),
    "newline-in-path": (2, "schema", "state_dir: '/a\\nb' is not valid"),
    "nul-byte": (1, "yaml", "unacceptable character #x0000"),
    "only-comment": (1, "", "the inventory is empty"),
    "path-in-instance-name": (2, "schema", "invalid name '../x' in hosts.h.instances"),
    "python-tag": (2, "schema", "hosts: expected object, got list"),  # the tag is not run: a plain list
    "recursive-alias": (1, "yaml", "recursive alias"),
    "recursive-merge": (2, "yaml", "recursive alias"),
    "sexagesimal-int-port": (2, "yaml", "integer out of range"),
    "shell-in-address": (2, "schema", "hosts.h.address: 'x; touch /tmp/pwned' is not valid: A host name or an IP"),
    "two-documents": (2, "yaml", "but found another document"),
    "unicode-line-separators": (1, "duplicate-key", "duplicate key 'x' (first defined at line 1, column 12)"),
}


def test_every_hand_picked_inventory_has_its_reason() -> None:
    assert sorted(REFUSED_BECAUSE) == sorted(HOSTILE)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hand_picked_hostile_inventories_are_refused_with_a_location(name: str) -> None:
    v = check(HOSTILE[name])
    assert not v.ok
    line, code, words = REFUSED_BECAUSE[name]
    errors = [(d.span.line if d.span else 0, d.code, d.message) for d in v.diagnostics if d.severity.value == "error"]
    assert [e for e in errors if e[0] == line and e[1] == code and words in e[2]], errors

