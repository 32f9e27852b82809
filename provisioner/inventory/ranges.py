"""Host ranges and patterns: `gw-[01:40]` under hosts: stands for 40 hosts, `gw-*` in a group's hosts: for every
host that matches.

Expansion runs on the loaded YAML, before the schema check: every later stage (schema, rules, render, plan) sees
plain hosts. Each expanded host gets the spans of the range that defined it, so its diagnostics point at that
line. In a range host's `address:` (and `root:`), `{n}` is the host's number, `{n+K}` / `{n-K}` that number
shifted by K, and `{name}` its expanded name: `gw-[01:40]` with `address: "10.0.1.{n+100}"` is gw-01 at
10.0.1.101 ... gw-40 at 10.0.1.140. The name keeps the range's zero-padding; `{n}` never has any.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan
from provisioner.inventory.yamlsource import DocPath, SpanTable

MAX_RANGE = 4096  # hosts per range: a typo such as [1:100000] must not build 10^5 hosts before anything is said
CODE = "host-range"
_RANGE = re.compile(r"\[(\d+):(\d+)\]")
_FIELD = re.compile(r"\{([^{}]*)\}")
_NUMBER = re.compile(r"n(?:([+-])(\d+))?")
_TEMPLATED = ("address", "root")  # the host fields a range fills in per host


class RangeError(ValueError):
    field: str | None = None  # the host field (address:, root:) whose template it is about, if any


def expand_name(key: str) -> list[tuple[str, int]]:
    """(name, number) for every host a `prefix[START:END]suffix` key stands for; [] for a plain name."""
    found = _RANGE.findall(key)
    if not found:
        if "[" in key or "]" in key:
            raise RangeError(f"{key!r}: a range is written [START:END] with decimal numbers, e.g. gw-[01:40]")
        return []
    if len(found) > 1:
        raise RangeError(f"{key!r}: one range per name")
    first, last = found[0]
    lo, hi = int(first), int(last)
    if lo > hi:
        raise RangeError(f"{key!r}: the range is reversed ({first} > {last}); write [{last}:{first}]")
    padded = len(first) > 1 and first.startswith("0")
    if (padded or (len(last) > 1 and last.startswith("0"))) and len(first) != len(last):
        raise RangeError(f"{key!r}: mixed widths ({first} and {last}): a zero-padded range gives both ends the same "
                         f"number of digits, e.g. [{first.zfill(len(last))}:{last}]")
    if hi - lo + 1 > MAX_RANGE:
        raise RangeError(f"{key!r}: {hi - lo + 1} hosts is too large a range (at most {MAX_RANGE})")
    width = len(first) if padded else 0
    m = _RANGE.search(key)
    assert m is not None
    return [(f"{key[:m.start()]}{str(n).zfill(width)}{key[m.end():]}", n) for n in range(lo, hi + 1)]


def fill_template(text: str, name: str, number: int) -> str:
    """`text` with {n}, {n+K}, {n-K} and {name} replaced for one host of a range."""

    def one(m: re.Match[str]) -> str:
        field = m.group(1).replace(" ", "")
        if field == "name":
            return name
        num = _NUMBER.fullmatch(field)
        if num is None:
            raise RangeError(f"unknown field {{{m.group(1)}}} in {text!r}: a range fills in {{n}}, {{n+K}}, "
                             "{n-K} and {name}")
        sign, k = num.groups()
        value = number + (int(k) if sign == "+" else -int(k)) if k else number
        if value < 0:
            raise RangeError(f"{text!r} gives {value} for {name}")
        return str(value)

    return _FIELD.sub(one, text)


def expand_inventory(data: Any, spans: SpanTable) -> list[Diagnostic]:
    """Expand host ranges (hosts:) and patterns (groups' hosts:) in `data` in place; errors, located."""
    if not isinstance(data, dict):
        return []
    diags: list[Diagnostic] = []
    hosts = data.get("hosts")
    if isinstance(hosts, dict) and any(isinstance(k, str) and ("[" in k or "]" in k) for k in hosts):
        data["hosts"] = _expand_hosts(hosts, spans, diags)
    groups = data.get("groups")
    if diags:
        return diags  # a pattern matching none of a broken range's hosts would only repeat the error
    names = list(data["hosts"]) if isinstance(data.get("hosts"), dict) else []
    if isinstance(groups, dict):
        for g, body in groups.items():
            if isinstance(body, dict) and isinstance(body.get("hosts"), list):
                body["hosts"] = _expand_members(g, body["hosts"], names, spans, diags)
    return diags


def _expand_hosts(hosts: dict[str, Any], spans: SpanTable, diags: list[Diagnostic]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    defined: dict[str, str] = {}  # expanded name -> the key that defined it
    plain = {k for k in hosts if not _RANGE.search(k) and "[" not in k and "]" not in k}
    for key, body in hosts.items():
        at: DocPath = ("hosts", key)
        try:
            expanded = expand_name(key)
        except RangeError as e:
            diags.append(_error(str(e), spans.key(at)))
            continue
        if not expanded:
            out[key] = body
            defined[key] = key
            continue
        under = _spans_under(spans, at)  # read once: the table grows with every host copied into it
        for name, number in expanded:
            clash = defined.get(name) or (name if name in plain else None)
            if clash is not None:
                diags.append(_error(f"the range {key!r} makes host {name!r}, which {_who(clash, key)} defines too",
                                    spans.key(at), spans.key(("hosts", clash))))
                break
            try:
                out[name] = _fill(body, name, number)
            except RangeError as e:  # only a template fails here: told at its value, not at another field's
                assert e.field is not None
                diags.append(_error(str(e), spans.value((*at, e.field))))
                break
            defined[name] = key
            _copy_spans(under, ("hosts", name))
    return out


def _who(clash: str, key: str) -> str:
    return "the range itself" if clash == key else f"{clash!r}"


def _fill(body: Any, name: str, number: int) -> Any:
    if not isinstance(body, dict):
        return body  # the schema says what is wrong with it, at the range's line
    filled = dict(body)
    for f in _TEMPLATED:
        if isinstance(filled.get(f), str):
            try:
                filled[f] = fill_template(filled[f], name, number)
            except RangeError as e:
                e.field = f
                raise
    return filled


def _spans_under(spans: SpanTable, src: DocPath) -> list[tuple[dict[DocPath, SourceSpan], DocPath, SourceSpan]]:
    n = len(src)
    return [(table, p[n:], s) for table in (spans.values, spans.keys) for p, s in table.items() if p[:n] == src]


def _copy_spans(under: list[tuple[dict[DocPath, SourceSpan], DocPath, SourceSpan]], dst: DocPath) -> None:
    for table, rest, span in under:
        table.setdefault((*dst, *rest), span)


def _expand_members(group: str, members: list[Any], names: list[str], spans: SpanTable,
                    diags: list[Diagnostic]) -> list[Any]:
    out: list[Any] = []
    origin: list[DocPath] = []
    for i, m in enumerate(members):
        at: DocPath = ("groups", group, "hosts", i)
        if not isinstance(m, str):
            out.append(m)
            origin.append(at)
            continue
        try:
            expanded = [n for n, _ in expand_name(m)]
        except RangeError as e:
            diags.append(_error(str(e), spans.value(at)))
            continue
        if not expanded and any(c in m for c in "*?"):
            expanded = [n for n in names if fnmatchcase(n, m)]
            if not expanded:
                diags.append(_error(f"group {group!r}: the pattern {m!r} matches no host", spans.value(at)))
                continue
        for name in expanded or [m]:
            if name not in out:  # a pattern overlapping another member adds nothing twice
                out.append(name)
                origin.append(at)
    if len(out) != len(members) or any(o[-1] != i for i, o in enumerate(origin)):
        prefix = ("groups", group, "hosts")
        src = {i: (spans.values.get(o), spans.keys.get(o)) for i, o in enumerate(origin)}
        for table in (spans.values, spans.keys):
            for p in [p for p in table if p[:3] == prefix and len(p) > 3]:
                del table[p]
        for i, (v, k) in src.items():
            if v is not None:
                spans.values[(*prefix, i)] = v
            if k is not None:
                spans.keys[(*prefix, i)] = k
    return out


def _error(message: str, span: SourceSpan | None, *related: SourceSpan | None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, message, span, CODE, tuple(r for r in related if r))
