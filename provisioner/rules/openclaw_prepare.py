"""Make OpenClaw's exported JSON Schema usable by Python's jsonschema, and keep the result in the controller's cache."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from provisioner.cache import cache_dir, read_json, write_json

# JS regex Unicode property escapes Python's `re` lacks, as character-class ranges.
_UNICODE_CLASSES = {
    "Cc": "\\x00-\\x1f\\x7f-\\x9f",
    "Cs": "\\ud800-\\udfff",
    "Co": "\\ue000-\\uf8ff",
}


def _py_pattern(pattern: str) -> str | None:
    """The JS pattern as a Python regex, or None if it cannot be expressed (then the check is skipped)."""
    try:
        re.compile(pattern)
        return pattern
    except re.error:
        pass
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        m = re.match(r"\\([pP])\{([A-Za-z_]+)\}", pattern[i:])
        if m:
            ranges = _UNICODE_CLASSES.get(m.group(2))
            if ranges is None or (in_class and m.group(1) == "P"):
                return None
            neg = "^" if m.group(1) == "P" else ""
            out.append(ranges if in_class else f"[{neg}{ranges}]")
            i += m.end()
            continue
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    translated = "".join(out)
    try:
        re.compile(translated)
    except re.error:
        return None
    return translated


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _prepare(node: Any, pointer: str, defs_owner: str | None) -> Any:
    """Make OpenClaw's schema usable by Python's jsonschema, copying only what changes.

    - Embedded plugin schemas (plugins.entries.<id>.config) carry their own `$defs` and refer to them as
      `#/$defs/x`, which draft-07 resolves against the document root, where there is no `$defs`: point those
      refs at the `$defs` they were written for.
    - A few patterns use JS Unicode property escapes (`\\p{Cs}`) that `re` cannot compile.
    """
    if isinstance(node, list):
        items = [_prepare(v, f"{pointer}/{i}", defs_owner) for i, v in enumerate(node)]
        return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$defs"), dict):
        defs_owner = pointer
    changed: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            if value.startswith("#/$defs/") and defs_owner:
                changed[key] = "#" + defs_owner + value[1:]
        elif key == "pattern" and isinstance(value, str):
            py = _py_pattern(value)
            if py is None:
                dropped.append(key)
            elif py != value:
                changed[key] = py
        elif key == "patternProperties" and isinstance(value, dict):
            # an inexpressible key pattern is left out: its keys then read as unknown rather than crash
            pp = {py: _prepare(v, f"{pointer}/{key}/{_escape_pointer(k)}", defs_owner)
                  for k, v in value.items() if (py := _py_pattern(k)) is not None}
            if pp != value:
                changed[key] = pp
        else:
            new = _prepare(value, f"{pointer}/{_escape_pointer(key)}", defs_owner)
            if new is not value:
                changed[key] = new
    if not changed and not dropped:
        return node
    return {k: changed.get(k, v) for k, v in node.items() if k not in dropped}


def _prepared_cached(text: str) -> dict[str, Any]:
    """The prepared schema, kept on disk by the schema's hash: preparing walks ~40 000 nodes (~0.2 s), reading
    the result back is one json.loads, which matters for `validate` in CI and for every plan."""
    path = cache_dir("prepared") / f"{hashlib.sha256(text.encode('utf-8')).hexdigest()}.json"
    cached = read_json(path)
    if isinstance(cached, dict):
        return cached
    prepared: dict[str, Any] = _prepare(json.loads(text), "", None)
    write_json(path, prepared)
    return prepared
