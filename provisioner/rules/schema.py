"""Check inventory data against schemas/inventory.schema.json and turn each error into a located Diagnostic."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

from provisioner.core.diagnostics import Diagnostic, Severity
from provisioner.inventory.yamlsource import DocPath, SpanTable


@lru_cache(maxsize=1)
def inventory_schema() -> dict[str, Any]:
    text = (resources.files("provisioner.schemas") / "inventory.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(expanded_schema())


def expanded_schema() -> dict[str, Any]:
    """The schema the data is checked against once ranges and patterns are expanded (inventory/ranges.py).

    The published schema describes the file as written, where a host key may be a range (gw-[01:40]), a group
    member a glob and an address a template; after expansion each of those must be a plain name or address."""
    import copy

    schema = copy.deepcopy(inventory_schema())
    defs = schema["$defs"]
    schema["properties"]["hosts"]["propertyNames"] = {"$ref": "#/$defs/name"}
    defs["group"]["properties"]["hosts"]["items"] = {"$ref": "#/$defs/name"}
    address = defs["host"]["properties"]["address"]
    address["pattern"] = "^[A-Za-z0-9:._%\\[\\]-]+$"
    address["description"] = "A host name or an IP address (letters, digits, '.', '-', ':', '%', '[', ']'); {n} " \
                             "and {name} are filled in only in a range host (gw-[01:40])."
    return schema


def dotted(path: DocPath) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def check_schema(data: Any, spans: SpanTable) -> list[Diagnostic]:
    if not isinstance(data, dict):
        return [Diagnostic(Severity.ERROR, "the inventory must be a mapping (version:, hosts:, ...)",
                           spans.value(()), code="schema")]
    diags: list[Diagnostic] = []
    seen: set[tuple[DocPath, str]] = set()
    for err in _validator().iter_errors(data):
        for path, message, on_key in _explain(err):
            if (path, message) in seen:
                continue
            seen.add((path, message))
            span = spans.key(path) if on_key else spans.value(path)
            diags.append(Diagnostic(Severity.ERROR, message, span, code="schema"))
    reported = {path for path, _ in seen}
    for path in _nans(data, ()):
        if path not in reported:
            # every bound holds for NaN (each comparison is false): say it here, or it passes port and timeout checks
            diags.append(Diagnostic(Severity.ERROR, f"{dotted(path)}: .nan is not a number any setting accepts",
                                    spans.value(path), code="schema"))
    diags.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    return diags


def _nans(node: Any, path: DocPath) -> Iterator[DocPath]:
    if isinstance(node, float) and math.isnan(node):
        yield path
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _nans(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nans(v, (*path, i))


def _explain(err: Any) -> list[tuple[DocPath, str, bool]]:
    """(document path, message, whether to point at the key) for one jsonschema error."""
    path: DocPath = tuple(err.absolute_path)
    where = dotted(path)
    v = err.validator
    if "propertyNames" in err.absolute_schema_path and isinstance(err.instance, str):
        # propertyNames descends into the key itself without extending the path: point at that key. Told by the
        # schema path, not by the data: a key whose value is the same string object (CPython shares one-character
        # strings, so `env: {"1": "1"}`) was taken for a value and pointed at the mapping.
        return [((*path, err.instance), f"invalid name {err.instance!r} in {where}: {_pattern_words(err)}", True)]
    if v in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
        allowed = _allowed_keys(err.schema)
        extra = [k for k in err.instance if k not in allowed and not _pattern_allows(err.schema, k)]
        hint = f" (allowed here: {', '.join(sorted(allowed))})" if allowed else ""
        return [((*path, k), f"unknown key {k!r} in {where}{hint}", True) for k in extra] or [
            (path, err.message, False)
        ]
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [(path, f"{where}: missing required key {missing!r}", True)]
    if v == "pattern":
        return [(path, f"{where}: {err.instance!r} {_pattern_words(err)}", False)]
    if v == "enum":
        opts = ", ".join(json.dumps(o) for o in err.validator_value)
        return [(path, f"{where}: {json.dumps(err.instance, default=str)} is not one of {opts}", False)]
    if v == "const":
        return [(path, f"{where}: must be {json.dumps(err.validator_value)}", False)]
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        got = _type_name(err.instance)
        return [(path, f"{where}: expected {want}, got {got}", False)]
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [(path, f"{where}: {err.message}", False)]
    if v in ("minProperties", "maxProperties") and len(path) >= 2 and path[-2] == "secrets":
        return [(path, f"{where}: a secret needs exactly one of env: or file:", False)]
    return [(path, f"{where}: {err.message}", False)]


def _allowed_keys(schema: dict[str, Any]) -> set[str]:
    keys = set((schema.get("properties") or {}).keys())
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = inventory_schema()["$defs"][ref.split("/")[-1]]
        keys |= _allowed_keys(target)
    return keys


def _pattern_allows(schema: dict[str, Any], key: str) -> bool:
    import re

    return any(re.search(p, key) for p in (schema.get("patternProperties") or {}))


def _pattern_words(err: Any) -> str:
    schema = err.schema
    desc = schema.get("description")
    if not desc and "$ref" in schema:
        desc = inventory_schema()["$defs"].get(schema["$ref"].split("/")[-1], {}).get("description")
    return f"is not valid: {desc}" if desc else "is not in the form this setting takes (schemas/inventory.schema.json)"


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "mapping"
    return type(v).__name__
