"""Loading inventory YAML, exactly: the hostile inventories of test_fuzz_inventory with every diagnostic they get
(file:line:col, words, rule), merge keys, keys that are not strings, the 64-bit and 64-level limits at their
bounds, and lines counted as editors count them. Found by mutation testing (`scripts/mutation inventory`): these
were proven only by the Hypothesis module, which mutation runs leave out (too slow), so most of
`inventory/yamlsource.py` had no fast test.

README: "Every diagnostic has a file:line:col"; hostile YAML (billion laughs, deep nesting, huge integers, tags)
is refused with a location, never a crash or a hang."""

from __future__ import annotations

import pytest

from provisioner.inventory.yamlsource import MAX_DEPTH, load_yaml
from provisioner.validate import validate_text
from tests.test_fuzz_inventory import HOSTILE

DUP = "YAML would silently keep only the last one [duplicate-key]"
INT64 = "integer out of range: no inventory value needs more than 64 bits [yaml]"
NESTED = f"nested more than {MAX_DEPTH} levels deep [yaml]"

# every diagnostic validate gives each hostile inventory, in order: nothing more, nothing less
HOSTILE_DIAGNOSTICS = {
    "alias-expansion": ["h.yaml:2:34: error: aliases expand the inventory to more than 200591 nodes; refusing to "
                        "expand them further [yaml]"],
    "bad-date": ["h.yaml:2:4: error: invalid value '2001-02-30': day is out of range for month [yaml]"],
    "binary-int-port": [f"h.yaml:2:50: error: {INT64}"],
    "binary-tag": ["h.yaml:2:8: error: hosts: expected object, got bytes [schema]"],
    "block-sequence-nesting-100k": [f"h.yaml:3:127: error: {NESTED}"],
    "bom": ["h.yaml:2:8: error: hosts: {} should be non-empty [schema]"],
    # a lone \r ends a line for YAML but not for editors or grep: all of it is line 1
    "carriage-return-lines": [f"h.yaml:1:{col}: error: duplicate key {key!r} (first defined at line 1, column "
                              f"{first}); {DUP}"
                              for col, key, first in ((17, "x", 12), (32, "version", 1), (43, "x", 12), (48, "x", 12),
                                                      (53, "hosts", 22), (63, "version", 1), (74, "x", 12),
                                                      (79, "x", 12), (84, "hosts", 22))],
    "complex-key-nesting-100k": [f"h.yaml:3:129: error: {NESTED}"],
    "config-agents-defaults-string": ["h.yaml:2:75: error: h/main: config agents.defaults must be a mapping: the tool "
                                      "writes its own keys into it [config-conflict]"],
    "config-gateway-list": ["h.yaml:2:66: error: h/main: config gateway must be a mapping: the tool writes its own "
                            "keys into it [config-conflict]"],
    "config-nesting-200": [f"h.yaml:2:301: error: {NESTED}"],
    "empty": ["h.yaml:1:1: error: the inventory is empty []"],
    "explicit-tags": ["h.yaml:1:10: error: invalid value '1' for the tag !!timestamp [yaml]",
                      "h.yaml:2:22: error: invalid value 'x' for the tag !!bool [yaml]",
                      "h.yaml:2:57: error: invalid value '' for the tag !!int [yaml]"],
    "float-overflow-port": ["h.yaml:2:50: error: hosts.h.instances.main.port: expected integer, got string [schema]"],
    "flow-nesting-200k": [f"h.yaml:2:71: error: {NESTED}"],
    "hex-int-port": [f"h.yaml:2:50: error: {INT64}"],
    "huge-int-port": [f"h.yaml:2:50: error: {INT64}"],
    "lone-surrogate": ["h.yaml:3:3: error: character U+D800 cannot be encoded as UTF-8 (a lone surrogate) [yaml]"],
    "mapping-nesting-3k": [f"h.yaml:2:260: error: {NESTED}"],
    "nan-ssh-timeout": ["h.yaml:2:48: error: hosts.h.ssh.connect_timeout: .nan is not a number any setting accepts "
                        "[schema]"],
    "nan-timeout": ["h.yaml:2:75: error: hosts.h.instances.main.health.timeout: .nan is not a number any setting "
                    "accepts [schema]"],
    "newline-in-path": ["h.yaml:2:68: error: hosts.h.instances.main.state_dir: '/a\\nb' is not valid: An absolute "
                        "path on the host, or one starting with ~ (the service user's home). [schema]"],
    "nul-byte": ["h.yaml:1:11: error: YAML: unacceptable character #x0000: control characters are not allowed [yaml]"],
    "only-comment": ["h.yaml:1:1: error: the inventory is empty []"],
    "path-in-instance-name": ["h.yaml:2:37: error: invalid name '../x' in hosts.h.instances: is not valid: OpenClaw "
                              "profile names: letters, digits, _ and -, at most 64 characters. [schema]"],
    "python-tag": ["h.yaml:2:8: error: hosts: expected object, got list [schema]"],
    "recursive-alias": ["h.yaml:1:4: error: recursive alias: a node refers to itself [yaml]"],
    "recursive-merge": ["h.yaml:2:8: error: recursive alias: a node refers to itself [yaml]"],
    "sexagesimal-int-port": [f"h.yaml:2:50: error: {INT64}"],
    "shell-in-address": ["h.yaml:2:22: error: hosts.h.address: 'x; touch /tmp/pwned' is not valid: A host name or an "
                         "IP address (letters, digits, '.', '-', ':', '%', '[', ']'); {n} and {name} are filled in "
                         "only in a range host (gw-[01:40]). [schema]"],
    "two-documents": ["h.yaml:2:1: error: YAML syntax: but found another document [yaml]"],
    "unicode-line-separators": [f"h.yaml:1:17: error: duplicate key 'x' (first defined at line 1, column 12); {DUP}"],
}


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCP_NO_VALIDATION_CACHE", "1")


def test_every_hostile_inventory_has_its_diagnostics_here() -> None:
    assert sorted(HOSTILE_DIAGNOSTICS) == sorted(HOSTILE)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_inventory_gets_exactly_its_located_diagnostics(name: str) -> None:
    v = validate_text(HOSTILE[name], "h.yaml")
    assert [f"{d.format()} [{d.code}]" for d in v.diagnostics] == HOSTILE_DIAGNOSTICS[name]
    assert not v.ok


def _load(text: str) -> tuple[object, list[str]]:
    data, _, errors = load_yaml(text, "f.yaml")
    return data, [f"{e.format()} [{e.code}]" for e in errors]


@pytest.mark.parametrize(("text", "data", "errors"), [
    # `yes:`, `null:`, `~:` or `1.5:` as a key keeps the text written; an integer key becomes its digits
    ("yes: 1\nnull: 2\n1.5: 3\n7: 4\n~: 5\n", {"yes": 1, "null": 2, "1.5": 3, "7": 4, "~": 5}, []),
    ("? [a, b]\n: 1\nc: 2\n", {"c": 2}, ["f.yaml:1:3: error: mapping keys must be plain scalars [yaml]"]),
    ("a: {<<: 1, b: 2}\n", {"a": {"b": 2}},
     ["f.yaml:1:9: error: a merge key (<<) needs a mapping or a list of mappings [yaml]"]),
    # merge keys fill in only what the mapping does not say; of several merged mappings the first one wins
    ("x: &x {k: 1, p: 1}\ny: &y {k: 2, q: 2}\nz: {<<: [*x, *y], k: 3}\nw: {<<: [*x, *y]}\n",
     {"x": {"k": 1, "p": 1}, "y": {"k": 2, "q": 2}, "z": {"k": 3, "p": 1, "q": 2}, "w": {"k": 1, "p": 1, "q": 2}}, []),
    ("b: &b {k: 1}\nz:\n  k: 2\n  <<: *b\n", {"b": {"k": 1}, "z": {"k": 2}}, []),
    # 64 bits, at the bounds
    ("a: 18446744073709551615\nb: -18446744073709551615\n", {"a": 2**64 - 1, "b": -(2**64) + 1}, []),
    ("a: 18446744073709551616\nb: -18446744073709551616\n", {"a": None, "b": None},
     [f"f.yaml:1:4: error: {INT64}", f"f.yaml:2:4: error: {INT64}"]),
    ("a: !!python/name:os.system x\n", {"a": None},
     ["f.yaml:1:4: error: YAML: could not determine a constructor for the tag "
      "'tag:yaml.org,2002:python/name:os.system' [yaml]"]),
    ("a: !!float x\n", {"a": None}, ["f.yaml:1:4: error: invalid value 'x': could not convert string to float: 'x' "
                                     "[yaml]"]),
    ("a: !!float " + "x" * 60 + "\n", {"a": None},  # 60 characters are shown whole
     ["f.yaml:1:4: error: invalid value " + repr("x" * 60) + ": could not convert string to float: '"
      + "x" * 60 + "' [yaml]"]),
    ("a: !!float " + "x" * 70 + "\n", {"a": None},
     ["f.yaml:1:4: error: invalid value " + repr("x" * 57) + "...: could not convert string to float: '"
      + "x" * 70 + "' [yaml]"]),
    ("a: [1, 2\nb: 3\n", None, ["f.yaml:2:2: error: YAML syntax: did not find expected ',' or ']' [yaml]"]),
    ("a: 'x\n", None, ["f.yaml:2:1: error: YAML syntax: found unexpected end of stream [yaml]"]),
    # lines are the text's \n-separated lines, whatever else YAML takes for a line break (\r, U+0085, U+2028)
    ("a: 1\r\nb: 2\rb: 3\n", None,
     [f"f.yaml:2:6: error: duplicate key 'b' (first defined at line 2, column 1); {DUP}"]),
    ("a: 1\r\nb: 2\r\nb: 3\r\n", None,
     [f"f.yaml:3:1: error: duplicate key 'b' (first defined at line 2, column 1); {DUP}"]),
    ("a: 1\nb: 2\n\u2028c: 3\nc: 4\n", None,
     [f"f.yaml:4:1: error: duplicate key 'c' (first defined at line 3, column 2); {DUP}"]),
    ("a: 1\n\x85b: 1\nb: 2\n", None,
     [f"f.yaml:3:1: error: duplicate key 'b' (first defined at line 2, column 2); {DUP}"]),
    ("a: 1\rb: [\r  1,\r  *x]\n", None, ["f.yaml:1:18: error: YAML syntax: found undefined alias [yaml]"]),
    ("a: 1\u2028b: *x\n", None, ["f.yaml:1:9: error: YAML syntax: found undefined alias [yaml]"]),
], ids=["non-string-keys", "complex-key", "merge-scalar", "merge-first-wins", "merge-after-own-key", "int64-max",
        "int64-over", "python-tag", "bad-float", "bad-value-of-60",
        "long-bad-value-cut", "syntax-error", "end-of-stream", "cr-in-crlf",
        "crlf", "u2028", "u0085", "lone-cr-syntax-error", "u2028-syntax-error"])
def test_yaml_loads_to_data_or_located_errors(text: str, data: object, errors: list[str]) -> None:
    got, errs = _load(text)
    assert errs == errors
    if data is not None:
        assert got == data


@pytest.mark.parametrize("padding", ["", "#" + "-" * 2000 + "\n"], ids=["composed", "scanned-first"])
def test_nesting_is_refused_from_64_levels_on(padding: str) -> None:
    # the top-level mapping is level 1; a long document is scanned for depth before it is composed: same verdict
    def nested(n: int) -> str:
        return "a: " + "[" * n + "]" * n + "\n" + padding

    data, errs = _load(nested(MAX_DEPTH - 1))
    assert errs == []
    for _ in range(MAX_DEPTH - 1):
        data = data["a"] if isinstance(data, dict) else data[0]  # type: ignore[index]
    assert data == []
    assert _load(nested(MAX_DEPTH))[1] == [f"f.yaml:1:67: error: {NESTED}"]


def test_spans_fall_back_to_the_nearest_enclosing_node() -> None:
    _, spans, _ = load_yaml("a:\n  b: 1\n", "f.yaml")
    assert str(spans.key(("a", "b"))) == "f.yaml:2:3"
    assert str(spans.value(("a", "b"))) == "f.yaml:2:6"
    assert str(spans.value(("a", "b", "c"))) == "f.yaml:2:6"  # below a scalar: the scalar
    assert str(spans.key(("a", "zz"))) == "f.yaml:2:3"  # an absent key: its mapping's value
    assert str(spans.value(("zz",))) == "f.yaml:1:1"
    # a path outside the document: the document itself, which need not start on line 1
    _, spans, _ = load_yaml("# an inventory\n\n  a: 1\n", "f.yaml")
    assert (str(spans.value(("zz",))), str(spans.value(()))) == ("f.yaml:3:3", "f.yaml:3:3")
    # a key merged in with `<<` points where it was written
    _, spans, _ = load_yaml("w: &x {k: 1}\nz: {<<: *x}\n", "f.yaml")
    assert (str(spans.key(("z", "k"))), str(spans.value(("z", "k")))) == ("f.yaml:1:8", "f.yaml:1:11")
    # and a text that did not load at all still locates the file's start
    _, spans, _ = load_yaml("", "f.yaml")
    assert str(spans.value(("hosts",))) == "f.yaml:1:1"
