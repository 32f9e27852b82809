"""Host ranges and group patterns, exactly: the names a range key stands for (padding, bounds, each refusal in
words), the {n}/{n+K}/{n-K}/{name} templates at their bounds, and after expansion the hosts, the group members
and where each of them points (the line of the range or pattern that made it). Found by mutation testing
(`scripts/mutation inventory`, run 6): the fast tests checked one 40-host range and a fragment of each error, so
most of `inventory/ranges.py` could change unseen.

README: host ranges (`gw-[01:40]` under hosts:, `{n+100}` in address:, `gw-*` in a group's hosts:)."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.inventory.ranges import MAX_RANGE, RangeError, expand_inventory, expand_name, fill_template
from provisioner.inventory.yamlsource import load_yaml
from provisioner.validate import validate_text

NAMES_OF = [
    ("gw-01", []),  # a plain name
    ("gw-[1:3]", [("gw-1", 1), ("gw-2", 2), ("gw-3", 3)]),
    ("gw-[01:03].lan", [("gw-01.lan", 1), ("gw-02.lan", 2), ("gw-03.lan", 3)]),  # padding, and a suffix
    ("[8:10]-x", [("8-x", 8), ("9-x", 9), ("10-x", 10)]),  # no padding: names grow
    ("gw-[08:10]", [("gw-08", 8), ("gw-09", 9), ("gw-10", 10)]),
    ("gw-[0:2]", [("gw-0", 0), ("gw-1", 1), ("gw-2", 2)]),  # a lone 0 is no padding
    ("gw-[00:02]", [("gw-00", 0), ("gw-01", 1), ("gw-02", 2)]),
    ("gw-[5:5]", [("gw-5", 5)]),
    ("gw-[9:10]", [("gw-9", 9), ("gw-10", 10)]),  # unpadded ends of different widths are fine
    ("[98:100]-x", [("98-x", 98), ("99-x", 99), ("100-x", 100)]),
    ("n[0:10]", [("n0", 0), ("n1", 1), ("n2", 2), ("n3", 3), ("n4", 4), ("n5", 5), ("n6", 6), ("n7", 7), ("n8", 8),
                 ("n9", 9), ("n10", 10)]),
]


@pytest.mark.parametrize(("key", "names"), NAMES_OF, ids=[k for k, _ in NAMES_OF])
def test_a_range_key_stands_for_its_names_and_numbers(key: str, names: list[tuple[str, int]]) -> None:
    assert expand_name(key) == names


def test_a_range_holds_at_most_4096_hosts() -> None:
    assert MAX_RANGE == 4096
    names = expand_name("gw-[1:4096]")
    assert (len(names), names[0], names[-1]) == (4096, ("gw-1", 1), ("gw-4096", 4096))
    with pytest.raises(RangeError) as err:
        expand_name("gw-[1:4097]")
    assert str(err.value) == "'gw-[1:4097]': 4097 hosts is too large a range (at most 4096)"


@pytest.mark.parametrize(("key", "message"), [
    ("gw-[40:01]", "'gw-[40:01]': the range is reversed (40 > 01); write [01:40]"),
    ("gw-[3:2]", "'gw-[3:2]': the range is reversed (3 > 2); write [2:3]"),
    ("gw-[01:100]", "'gw-[01:100]': mixed widths (01 and 100): a zero-padded range gives both ends the same number "
                    "of digits, e.g. [001:100]"),
    ("gw-[1:05]", "'gw-[1:05]': mixed widths (1 and 05): a zero-padded range gives both ends the same number of "
                  "digits, e.g. [01:05]"),
    ("gw-[01:02][1:2]", "'gw-[01:02][1:2]': one range per name"),
    ("gw-[a:b]", "'gw-[a:b]': a range is written [START:END] with decimal numbers, e.g. gw-[01:40]"),
    ("gw-[1-3]", "'gw-[1-3]': a range is written [START:END] with decimal numbers, e.g. gw-[01:40]"),
    ("gw-1]", "'gw-1]': a range is written [START:END] with decimal numbers, e.g. gw-[01:40]"),
    ("gw-[1", "'gw-[1': a range is written [START:END] with decimal numbers, e.g. gw-[01:40]"),
])
def test_a_bad_range_key_is_refused_in_words(key: str, message: str) -> None:
    with pytest.raises(RangeError) as err:
        expand_name(key)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "filled"), [
    ("10.0.1.{n}", "10.0.1.7"),
    ("10.0.1.{n+100}", "10.0.1.107"),
    ("10.0.{n}.{n-1}", "10.0.7.6"),
    ("{ n + 3 }", "10"),  # spaces inside the braces are ignored
    ("{n-7}", "0"),  # down to 0
    ("/srv/{name}/root", "/srv/gw-07/root"),
    ("plain.example", "plain.example"),
])
def test_a_template_fills_in_the_hosts_number_and_name(text: str, filled: str) -> None:
    assert fill_template(text, "gw-07", 7) == filled


@pytest.mark.parametrize(("text", "message"), [
    ("{n-8}", "'{n-8}' gives -1 for gw-07"),
    ("x{m}", "unknown field {m} in 'x{m}': a range fills in {n}, {n+K}, {n-K} and {name}"),
    ("{ N }", "unknown field { N } in '{ N }': a range fills in {n}, {n+K}, {n-K} and {name}"),
    ("{n*2}", "unknown field {n*2} in '{n*2}': a range fills in {n}, {n+K}, {n-K} and {name}"),
    ("{}", "unknown field {} in '{}': a range fills in {n}, {n+K}, {n-K} and {name}"),
])
def test_a_bad_template_is_refused_in_words(text: str, message: str) -> None:
    with pytest.raises(RangeError) as err:
        fill_template(text, "gw-07", 7)
    assert str(err.value) == message


def _expand(text: str) -> tuple[Any, Any, list[str]]:
    data, spans, errors = load_yaml(text, "r.yaml")
    assert errors == []
    diags = expand_inventory(data, spans)
    return data, spans, [f"{d.format()} [{d.code}]" + "".join(f" also at {r}" for r in d.related) for d in diags]


FLEET = """\
hosts:
  db: {address: 10.0.2.1}
  gw-[01:03]:
    address: "10.0.1.{n+100}"
    root: /srv/{name}
    instances: {main: {port: 18789}}
  web-[8:9]: {address: "w{n}"}
  x-1: {}
  x-2: {}
groups:
  g:
    hosts:
      - db
      - 7
      - "gw-*"
      - gw-02
      - "web-[8:9]"
  h: {hosts: [db, "w?b-9"]}
  k: {hosts: [db, Xgone, "d*"]}
  x: {hosts: ["x-*", x-1, web-8]}
"""


def test_a_range_makes_plain_hosts_each_pointing_at_the_range() -> None:
    data, spans, diags = _expand(FLEET)
    assert diags == []
    assert data["hosts"] == {
        "db": {"address": "10.0.2.1"},
        **{f"gw-0{i}": {"address": f"10.0.1.{100 + i}", "root": f"/srv/gw-0{i}", "instances": {"main": {"port": 18789}}}
           for i in (1, 2, 3)},
        "web-8": {"address": "w8"}, "web-9": {"address": "w9"}, "x-1": {}, "x-2": {},
    }
    # every host of a range (and every value below it) points at the range's lines
    for name in ("gw-01", "gw-03"):
        assert [str(spans.key(("hosts", name, *p))) for p in ((), ("address",), ("instances", "main", "port"))] == [
            "r.yaml:3:3", "r.yaml:4:5", "r.yaml:6:24"]
        assert [str(spans.value(("hosts", name, *p))) for p in ((), ("root",))] == ["r.yaml:4:5", "r.yaml:5:11"]
    assert str(spans.key(("hosts", "web-9"))) == "r.yaml:7:3"


def _members(data: Any, spans: Any, group: str) -> list[tuple[object, str]]:
    """A group's members after expansion, each with where it points."""
    return [(m, str(spans.value(("groups", group, "hosts", i)))) for i, m in enumerate(data["groups"][group]["hosts"])]


def test_patterns_and_ranges_among_a_groups_members_point_at_their_member() -> None:
    data, spans, _ = _expand(FLEET)
    # each name once, in the order written, at the line of the member that made it; a non-name stays for the schema
    assert _members(data, spans, "g") == [
        ("db", "r.yaml:13:9"), (7, "r.yaml:14:9"), ("gw-01", "r.yaml:15:9"), ("gw-02", "r.yaml:15:9"),
        ("gw-03", "r.yaml:15:9"), ("web-8", "r.yaml:17:9"), ("web-9", "r.yaml:17:9")]
    assert _members(data, spans, "h") == [("db", "r.yaml:18:15"), ("web-9", "r.yaml:18:19")]
    # a name with no host is kept for the rules to tell (it is no pattern); a pattern adding nothing new is dropped
    assert _members(data, spans, "k") == [("db", "r.yaml:19:15"), ("Xgone", "r.yaml:19:19")]
    # as many members as written, but x-2 comes from the pattern, and x-1 (named again) from it too
    assert _members(data, spans, "x") == [("x-1", "r.yaml:20:15"), ("x-2", "r.yaml:20:15"), ("web-8", "r.yaml:20:27")]
    # nothing is left where a list no longer reaches, and the list itself keeps its place
    assert ("groups", "k", "hosts", 2) not in spans.values
    assert [str(spans.value(("groups", g, "hosts"))) for g in "gk"] == ["r.yaml:13:7", "r.yaml:19:14"]


def test_plain_members_keep_their_spans_and_no_ranges_leave_hosts_alone() -> None:
    text = "hosts:\n  a: {}\n  b: {}\ngroups:\n  g: {hosts: [b, a]}\n  v: {vars: {}}\n  w: 3\n"
    data, spans, diags = _expand(text)
    assert (diags, data["hosts"], data["groups"]["g"]) == ([], {"a": {}, "b": {}}, {"hosts": ["b", "a"]})
    assert [str(spans.value(("groups", "g", "hosts", i))) for i in range(2)] == ["r.yaml:5:15", "r.yaml:5:18"]
    # a pattern over no hosts at all: nothing matches
    _, _, diags = _expand("groups:\n  g: {hosts: ['*']}\n")
    assert diags == ["r.yaml:2:15: error: group 'g': the pattern '*' matches no host [host-range]"]
    assert expand_inventory(["hosts"], load_yaml("[hosts]", "r.yaml")[1]) == []


@pytest.mark.parametrize(("text", "diags"), [
    # a range over a plain host written after it, and one over another range: one error per range, at its key
    ("hosts:\n  gw-[1:3]: {}\n  gw-2: {}\n  x-[1:2]: {}\n  x-[2:3]: {}\n",
     ["r.yaml:2:3: error: the range 'gw-[1:3]' makes host 'gw-2', which 'gw-2' defines too [host-range] also at "
      "r.yaml:3:3",
      "r.yaml:5:3: error: the range 'x-[2:3]' makes host 'x-2', which 'x-[1:2]' defines too [host-range] also at "
      "r.yaml:4:3"]),
    # each bad key is told, and the keys after it are expanded still
    ("hosts:\n  a-[2:1]: {}\n  b]: {}\n  c-[1:2]: {}\n  c-1: {}\n",
     ["r.yaml:2:3: error: 'a-[2:1]': the range is reversed (2 > 1); write [1:2] [host-range]",
      "r.yaml:3:3: error: 'b]': a range is written [START:END] with decimal numbers, e.g. gw-[01:40] [host-range]",
      "r.yaml:4:3: error: the range 'c-[1:2]' makes host 'c-1', which 'c-1' defines too [host-range] also at "
      "r.yaml:5:3"]),
    # a broken key is told once: not also as the host of that name a range makes (the schema refuses both names)
    ("hosts:\n  'gw-[[1:1]': {}\n  'gw-[1': {}\n  'gw-[1:1]]': {}\n  'gw-1]': {}\n",
     ["r.yaml:3:3: error: 'gw-[1': a range is written [START:END] with decimal numbers, e.g. gw-[01:40] [host-range]",
      "r.yaml:5:3: error: 'gw-1]': a range is written [START:END] with decimal numbers, e.g. gw-[01:40] "
      "[host-range]"]),
    # a key with one bracket and no range is told too (not left to the schema's words about names)
    ("hosts:\n  'gw-[1': {}\n",
     ["r.yaml:2:3: error: 'gw-[1': a range is written [START:END] with decimal numbers, e.g. gw-[01:40] [host-range]"]),
    ("hosts:\n  'gw-1]': {}\n",
     ["r.yaml:2:3: error: 'gw-1]': a range is written [START:END] with decimal numbers, e.g. gw-[01:40] [host-range]"]),
    # a plain host written after a range that made it
    ("hosts:\n  gw-[1:2]: {}\n  gw-1: {}\n",
     ["r.yaml:2:3: error: the range 'gw-[1:2]' makes host 'gw-1', which 'gw-1' defines too [host-range] also at "
      "r.yaml:3:3"]),
    # a bad template: located at the templated value, once for the range; a bad key: at the key
    ("hosts:\n  gw-[1:3]:\n    address: 'a{n-2}'\n  y-[2:1]: {}\n",
     ["r.yaml:3:14: error: 'a{n-2}' gives -1 for gw-1 [host-range]",
      "r.yaml:4:3: error: 'y-[2:1]': the range is reversed (2 > 1); write [1:2] [host-range]"]),
    ("hosts:\n  gw-[1:3]:\n    root: '/r{x}'\n",
     ["r.yaml:3:11: error: unknown field {x} in '/r{x}': a range fills in {n}, {n+K}, {n-K} and {name} "
      "[host-range]"]),
    # with two templates, the one that fails is told
    ("hosts:\n  gw-[1:3]:\n    address: 'a{n}.example'\n    root: '/r{x}'\n",
     ["r.yaml:4:11: error: unknown field {x} in '/r{x}': a range fills in {n}, {n+K}, {n-K} and {name} "
      "[host-range]"]),
    # a range body that is not a mapping is copied as it is (the schema says what is wrong with it)
    ("hosts:\n  gw-[1:2]: 5\n  h-[1:1]: ~\n", []),
    # group members: a bad range, a pattern matching nothing; errors of the hosts come alone
    ("hosts:\n  gw-1: {}\ngroups:\n  g: {hosts: ['gw-[2:1]', 'gw-9*', gw-1, 'z?']}\n",
     ["r.yaml:4:15: error: 'gw-[2:1]': the range is reversed (2 > 1); write [1:2] [host-range]",
      "r.yaml:4:27: error: group 'g': the pattern 'gw-9*' matches no host [host-range]",
      "r.yaml:4:42: error: group 'g': the pattern 'z?' matches no host [host-range]"]),
    ("hosts:\n  gw-[2:1]: {}\ngroups:\n  g: {hosts: ['nope*']}\n",
     ["r.yaml:2:3: error: 'gw-[2:1]': the range is reversed (2 > 1); write [1:2] [host-range]"]),
], ids=["over-plain-and-range", "each-bad-key", "broken-key-once", "only-open-bracket", "only-close-bracket",
        "plain-after-range", "bad-address-template",
        "bad-root-template", "root-of-two-templates", "not-a-mapping",
        "bad-members", "hosts-first"])
def test_each_range_error_is_located_once(text: str, diags: list[str]) -> None:
    data, _, got = _expand(text)
    assert got == diags
    if not diags:
        assert data["hosts"] == {"gw-1": 5, "gw-2": 5, "h-1": None}


def test_a_range_in_an_inventory_validates_to_its_hosts() -> None:
    # through validate, as an operator runs it: the schema and rules see the expanded hosts
    text = ("version: 1\nhosts:\n  db: {address: 10.0.2.1, instances: {}}\n"
            "  gw-[01:03]: {address: '10.0.1.{n+100}', instances: {main: {port: 18789}}}\n"
            "  web-[8:9]: {address: 'w{n}.example', instances: {}}\n"
            "groups:\n  g: {hosts: [db, 'gw-*', gw-02, 'web-[8:9]']}\n  h: {hosts: [db, 'w?b-9']}\n")
    v = validate_text(text, "r.yaml", check_configs=False)
    assert [d.format() for d in v.diagnostics] == []
    assert v.inventory is not None
    assert [(h.name, h.address) for h in v.inventory.hosts] == [
        ("db", "10.0.2.1"), ("gw-01", "10.0.1.101"), ("gw-02", "10.0.1.102"), ("gw-03", "10.0.1.103"),
        ("web-8", "w8.example"), ("web-9", "w9.example")]
    assert v.inventory.groups == {"g": ("db", "gw-01", "gw-02", "gw-03", "web-8", "web-9"), "h": ("db", "web-9")}
    # a member the expansion keeps that names no host is told by the rules, at its own line
    v = validate_text(text.replace("'w?b-9'", "Xgone"), "r.yaml", check_configs=False)
    assert [(d.format(), d.code) for d in v.diagnostics if d.is_error] == [
        ("r.yaml:8:19: error: group 'h' lists host 'Xgone', which is not in hosts:", "unknown-host")]
