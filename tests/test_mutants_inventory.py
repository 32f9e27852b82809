"""`--limit`, exactly: which hosts and instances a pattern chooses, in inventory order, and when removals can no
longer be planned. Found by mutation testing (`scripts/mutation inventory`): --limit was proven only through slow
CLI runs, so no fast test reached `inventory/select.py` at all.

README: `--limit PATTERN` (host, group or `host/instance` glob; repeatable)."""

from __future__ import annotations

import pytest

from provisioner.inventory.select import LimitError, select
from provisioner.validate import validate_text

INVENTORY = """\
version: 1
groups:
  edge: {hosts: [gw-b, gw-c]}
  core: {hosts: [gw-a]}
hosts:
  gw-a: {address: 192.0.2.1, instances: {main: {port: 18789}, rescue: {port: 19789}, ops: {port: 20789}}}
  gw-b: {address: 192.0.2.2, instances: {main: {port: 18789}, rescue: {port: 19789}}}
  gw-c: {address: 192.0.2.3, instances: {main: {port: 18789}}}
"""


# Built for each test, not once per module: mutmut gives a function's mutants only to the tests that
# reached it in its first run, and a module fixture reaches the builder during the first test alone.
@pytest.fixture
def inv():  # type: ignore[no-untyped-def]
    v = validate_text(INVENTORY, "inv.yaml", check_configs=False)
    assert v.ok and v.inventory is not None, v.diagnostics
    return v.inventory


@pytest.mark.parametrize(("patterns", "chosen", "partial"), [
    ([], {"gw-a": "main ops rescue", "gw-b": "main rescue", "gw-c": "main"}, False),  # no --limit: everything
    (["gw-b"], {"gw-b": "main rescue"}, False),
    (["gw-[ac]"], {"gw-a": "main ops rescue", "gw-c": "main"}, False),
    (["edge"], {"gw-b": "main rescue", "gw-c": "main"}, False),  # a group
    (["ed*"], {"gw-b": "main rescue", "gw-c": "main"}, False),  # a group glob
    (["gw-c", "gw-a"], {"gw-a": "main ops rescue", "gw-c": "main"}, False),  # repeatable; inventory order
    (["gw-a/r*"], {"gw-a": "rescue"}, True),  # host/instance: only those instances, so removals are off
    (["*/main"], {"gw-a": "main", "gw-b": "main", "gw-c": "main"}, True),
    (["gw-a/main", "gw-a/ops"], {"gw-a": "main ops"}, True),  # instance patterns add up
    (["gw-a/main", "gw-a"], {"gw-a": "main ops rescue"}, False),  # the whole host wins, in either order
    (["gw-a", "gw-a/main"], {"gw-a": "main ops rescue"}, False),
    (["core/rescue", "edge"], {"gw-a": "rescue", "gw-b": "main rescue", "gw-c": "main"}, True),
    (["GW-A"], None, None),  # case counts
])
def test_limit_chooses_hosts_and_instances(inv, patterns: list[str], chosen: dict[str, str] | None,  # type: ignore[no-untyped-def]
                                           partial: bool | None) -> None:
    if chosen is None:
        with pytest.raises(LimitError):
            select(inv, patterns)
        return
    hosts, was_partial = select(inv, patterns)
    assert {h.name: " ".join(sorted(i.name for i in h.instances)) for h in hosts} == chosen
    assert [h.name for h in hosts] == [n for n in ("gw-a", "gw-b", "gw-c") if n in chosen]
    assert was_partial is partial


def test_a_limit_that_matches_nothing_names_itself(inv) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LimitError) as err:
        select(inv, ["gw-b", "nope*"])
    assert str(err.value) == "--limit 'nope*' matches no host or group"
