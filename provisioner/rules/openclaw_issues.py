"""ConfigIssue and its words: a jsonschema error on an OpenClaw config, explained so an operator can act on it."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema costs ~40 ms to import, and only a config that fails its schema needs it here
    from jsonschema.exceptions import ValidationError

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    path: Path  # to the offending key (unknown keys: parent path + key name) or value
    message: str


# Keys an operator may carry over from older docs or the seed page: say why they are gone, not just "unknown".
_HINTS: dict[tuple[str, ...], str] = {
    ("gateway", "inboundDedupe"): (
        "this version's inbound dedupe is in-process only, and the key makes the gateway refuse its config. "
        "The provisioner can still provision and verify the shared claim directory through the inventory's "
        "`dedupe:` section without rendering this key"
    ),
    ("canvasHost",): "retired: the canvas is served on the gateway port; remove the key",
    ("browser", "controlPort"): (
        "the browser control port is derived from the gateway port (gateway.port + 2); "
        "remove the key and choose gateway.port instead"
    ),
}


_TYPE_WORDS = {
    "object": "an object", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_$][\w$-]*", p):
            out += f".{p}" if out else p
        else:
            out += f"[{json.dumps(p)}]"
    return out or "the config (top level)"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    for py, word in ((str, "a string"), (dict, "an object"), (list, "a list"), (type(None), "null")):
        if isinstance(value, py):
            return word
    return type(value).__name__


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _expected(schema: Any) -> str:
    """What a subschema asks for, in words: 'an integer from 1 to 65535', 'one of "a", "b"'."""
    if not isinstance(schema, dict):
        return "a different value"
    allowed = _allowed_values(schema)
    if allowed is not None:
        return _show(allowed[0]) if len(allowed) == 1 else "one of " + ", ".join(_show(v) for v in allowed)
    declared = schema.get("type")
    types: list[str] = [declared] if isinstance(declared, str) else list(declared or [])
    branches = schema.get("anyOf") or schema.get("oneOf")
    if not types and isinstance(branches, list):
        return " or ".join(dict.fromkeys(_expected(b) for b in branches))
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in types) or "a value"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if lo is not None and hi is not None:
        words += f" from {_num(lo)} to {_num(hi)}"
    else:
        bounds = [f">= {_num(lo)}" if lo is not None else "", f"> {_num(xlo)}" if xlo is not None else "",
                  f"<= {_num(hi)}" if hi is not None else "", f"< {_num(xhi)}" if xhi is not None else ""]
        if any(bounds):
            words += " " + " and ".join(b for b in bounds if b)
    if "minLength" in schema or "maxLength" in schema:
        words += f" of {schema.get('minLength', 0)} to {schema.get('maxLength', 'any number of')} characters"
    if "pattern" in schema:
        words += f" matching /{schema['pattern']}/"
    return words


def _allowed_values(schema: Any) -> list[Any] | None:
    """The values an enum-like subschema allows (zod literals become anyOf of consts), else None."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("enum"), list):
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list) and branches:
        values: list[Any] = []
        for branch in branches:
            sub = _allowed_values(branch)
            if sub is None:
                return None
            values.extend(sub)
        return values
    return None


def _unknown_key(path: Path, known: Iterable[str], version: str) -> ConfigIssue:
    where = _dotted(path)
    hint = _HINTS.get(tuple(str(p) for p in path))
    if hint is None:
        known = sorted(known)
        close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.75)
        if close:
            hint = f"unknown key (did you mean {close[0]!r}?)"
        elif known and len(known) <= 15:
            hint = "unknown key (accepted here: " + ", ".join(known) + ")"
        else:
            hint = "unknown key (see `openclaw config schema`)"
    return ConfigIssue(path, f"{where} is not accepted by OpenClaw {version}: {hint}")


def _type_mismatch_only(errors: Iterable[ValidationError], parent: ValidationError) -> bool:
    """True if a branch failed only because the value has another JSON type (not worth explaining further)."""
    return all(
        e.absolute_path == parent.absolute_path
        and (e.validator == "type"
             or (e.validator in ("anyOf", "oneOf") and bool(e.context) and _type_mismatch_only(e.context, e)))
        for e in errors
    )


def _explain(error: ValidationError, version: str) -> Iterator[ConfigIssue]:
    path: Path = tuple(error.absolute_path)
    where = _dotted(path)
    kind, value, schema, instance = error.validator, error.validator_value, error.schema, error.instance
    prefix = f"{where}: OpenClaw {version} expects"

    if "propertyNames" in error.relative_schema_path:
        # jsonschema reports a bad key name at the parent, with the key itself as the instance
        yield ConfigIssue(path + (str(instance),), f"{_dotted(path + (str(instance),))}: OpenClaw {version} "
                          f"does not accept this key name here (names must be {_expected(schema)})")
        return
    if kind == "additionalProperties" and value is False and isinstance(instance, dict):
        known = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        for key in instance:
            if key not in known and not any(re.search(p, key) for p in patterns):
                yield _unknown_key(path + (key,), known, version)
        return
    if kind == "required":
        for key in value:
            if isinstance(instance, dict) and key not in instance:
                missing = path + (key,)
                yield ConfigIssue(missing, f"{_dotted(missing)} is required by OpenClaw {version}")
        return
    if kind in ("anyOf", "oneOf"):
        allowed = _allowed_values(schema)
        if allowed is not None:
            yield ConfigIssue(path, f"{prefix} {_expected(schema)}; got {_show(instance)}")
            return
        if not error.context:  # oneOf matched more than one branch
            yield ConfigIssue(path, f"{where}: {_show(instance)} matches more than one form OpenClaw "
                                    f"{version} accepts here; make it unambiguous")
            return
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        relevant = [e for errs in branches.values() if not _type_mismatch_only(errs, error) for e in errs]
        if not relevant:
            forms = " or ".join(dict.fromkeys(_expected(b) for b in value))
            yield ConfigIssue(path, f"{prefix} {forms}; got {_kind(instance)} ({_show(instance)})")
            return
        from jsonschema.exceptions import best_match

        chosen = best_match(relevant)
        if chosen is not None:
            yield from _explain(chosen, version)
        return
    if kind == "type":
        yield ConfigIssue(path, f"{prefix} {_expected(schema)}; got {_kind(instance)} ({_show(instance)})")
        return
    if kind in ("enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                "minLength", "maxLength", "pattern", "multipleOf"):
        extra = f" (a multiple of {_num(value)})" if kind == "multipleOf" else ""
        yield ConfigIssue(path, f"{prefix} {_expected(schema)}{extra}; got {_show(instance)}")
        return
    if kind in ("minItems", "maxItems", "minProperties", "maxProperties"):
        what = "entries" if kind.endswith("Items") else "keys"
        bound = "at least" if kind.startswith("min") else "at most"
        yield ConfigIssue(path, f"{prefix} {bound} {value} {what}; got {len(instance)}")
        return
    if kind == "uniqueItems":
        yield ConfigIssue(path, f"{prefix} a list without duplicates; got {_show(instance)}")
        return
    # Rare keywords (not, if/then, contains, dependencies): jsonschema's own words, without schema dumps.
    text = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    yield ConfigIssue(path, f"{where}: not accepted by OpenClaw {version} ({kind}: {text})")
