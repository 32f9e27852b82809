"""Check a rendered OpenClaw config against the JSON Schema that a given OpenClaw release prints."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

from provisioner.cache import cache_dir, read_json, write_json

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

_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")
_FILE_RE = re.compile(r"^config\.schema\.(.+)\.json$")
_RESULT_CACHE_SIZE = 4096


def _schema_dir() -> Any:
    return resources.files("provisioner.schemas") / "openclaw"


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", version))


def known_versions() -> tuple[str, ...]:
    """Versions with a schema file shipped in schemas/openclaw/, oldest first."""
    found: list[str] = []
    if not _schema_dir().is_dir():
        return ()
    for entry in _schema_dir().iterdir():
        m = _FILE_RE.match(entry.name)
        if m and entry.is_file():
            found.append(m.group(1))
    return tuple(sorted(found, key=_version_key))


def has_schema(version: str) -> bool:
    # the version becomes part of a file name: anything but a plain version string cannot name a shipped file
    return bool(_VERSION_RE.match(version)) and (_schema_dir() / f"config.schema.{version}.json").is_file()


def check_openclaw_config(version: str, config: dict, *, schema: dict | None = None) -> list[ConfigIssue]:
    """Problems OpenClaw `version` would reject `config` for; [] if it accepts it.

    With `schema` (e.g. read from a host's `openclaw config schema`) that schema is used, else the one shipped
    for `version`; KeyError if none is shipped.
    """
    checker = _shipped_checker(version) if schema is None else _checker_for(schema)
    return checker.check(version, config)


class _Checker:
    """One prepared validator plus a cache of results per distinct config (canonical JSON)."""

    def __init__(self, schema: dict[str, Any], prepared: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.validator = Draft7Validator(prepared if prepared is not None else _prepare(schema, "", None))
        self._results: OrderedDict[tuple[str, str], tuple[ConfigIssue, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, version: str, config: Any) -> list[ConfigIssue]:
        try:
            key: tuple[str, str] | None = (version, json.dumps(config, sort_keys=True, separators=(",", ":")))
        except (TypeError, ValueError):  # not plain JSON data: validate, but do not cache under a lossy key
            key = None
        if key is not None:
            with self._lock:
                hit = self._results.get(key)
                if hit is not None:
                    self._results.move_to_end(key)
                    return list(hit)
        issues = tuple(self._validate(version, config))
        if key is not None:
            with self._lock:
                self._results[key] = issues
                if len(self._results) > _RESULT_CACHE_SIZE:
                    self._results.popitem(last=False)
        return list(issues)

    def _validate(self, version: str, config: Any) -> list[ConfigIssue]:
        found: list[ConfigIssue] = []
        for error in self.validator.iter_errors(config):
            found.extend(_explain(error, version))
        found.extend(_refinements(version, config))
        # one missing key can be reported by several errors: keep each (path, message) once, in a stable order
        unique = dict.fromkeys(found)
        return sorted(unique, key=lambda i: (tuple(str(p) for p in i.path), i.message))


@cache
def _shipped_checker(version: str) -> _Checker:
    if not has_schema(version):
        shipped = ", ".join(known_versions()) or "none"
        raise KeyError(f"no OpenClaw config schema shipped for version {version!r} (shipped: {shipped})")
    text = (_schema_dir() / f"config.schema.{version}.json").read_text(encoding="utf-8")
    return _Checker({}, _prepared_cached(text))


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


_given: dict[int, _Checker] = {}
_given_lock = threading.Lock()


def _checker_for(schema: dict[str, Any]) -> _Checker:
    # Keyed by identity (hashing 2.4 MB per call would cost more than validating); the stored reference keeps
    # the id from being reused by another object while the entry lives.
    with _given_lock:
        checker = _given.get(id(schema))
        if checker is None or checker.schema is not schema:
            checker = _Checker(schema)
            if len(_given) >= 8:
                _given.pop(next(iter(_given)))
            _given[id(schema)] = checker
        return checker


# ---------------------------------------------------------------- schema preparation

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


# ---------------------------------------------------------------- messages

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


def _refinements(version: str, config: Any) -> Iterator[ConfigIssue]:
    """Checks OpenClaw's zod schema makes with .refine(), which its exported JSON Schema cannot express.

    Taken from 2026.9.6 (browser profiles only: the part a fleet tool renders); the real
    `openclaw config validate` remains the authority for the rest.
    """
    browser = config.get("browser") if isinstance(config, dict) else None
    profiles = browser.get("profiles") if isinstance(browser, dict) else None
    if not isinstance(profiles, dict):
        return
    for name, prof in profiles.items():
        if not isinstance(prof, dict):
            continue
        path: Path = ("browser", "profiles", name)
        driver = prof.get("driver")
        attaches = driver in ("existing-session", "extension")
        if not attaches and not prof.get("cdpPort") and not prof.get("cdpUrl"):
            yield ConfigIssue(path, f"{_dotted(path)}: OpenClaw {version} requires cdpPort or cdpUrl on a "
                                    "browser profile (unless driver is existing-session or extension)")
        if driver != "existing-session" and prof.get("userDataDir"):
            yield ConfigIssue(path + ("userDataDir",), f"{_dotted(path)}.userDataDir: OpenClaw {version} "
                              'supports it only with driver "existing-session"')
        if driver == "extension" and prof.get("cdpUrl"):
            yield ConfigIssue(path + ("cdpUrl",), f"{_dotted(path)}.cdpUrl: OpenClaw {version} does not "
                              'support it with driver "extension" (the relay owns the endpoint)')
