"""Which OpenClaw config fields hold credentials, read from the real config schema of a version.

A field holds a credential when its schema accepts a SecretRef, `{source, provider, id}` (OpenClaw's
`secrets audit` and `doctor` call a string in such a field a plaintext secret). The set is derived by walking
the schema, never listed by hand: a version that adds a credential field is covered by its schema alone.

A field is a pattern of config keys: `*` stands for any key of a map (`models.providers.*.apiKey`), `[]` for
any item of a list. `literals` finds the strings a config holds in such fields, `secret_values` them for masking.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from provisioner.cache import cache_dir, read_json, write_json
from provisioner.rules.openclaw_schemas import _schema_dir, has_schema, known_versions

Pattern = tuple[str, ...]
ConfigPath = tuple[str | int, ...]
ANY_KEY, ANY_ITEM = "*", "[]"
_REF_KEYS = frozenset({"source", "provider", "id"})
_WALK_VERSION = 1  # bump when the walk changes: cached field sets of an older walk are not reused
# OpenClaw substitutes `${NAME}` in config strings from its environment (docs/gateway/configuration/
# environment-variables.md); such a string is a reference, not a literal, and `secrets audit` passes it
SUBSTITUTION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def _is_ref_shape(node: Any) -> bool:
    props = node.get("properties") if isinstance(node, dict) else None
    return isinstance(props, dict) and set(props) >= _REF_KEYS and node.get("type", "object") == "object"


class _Walk:
    """One walk of a schema. Embedded plugin schemas carry their own `$defs` and refer to them as `#/$defs/x`:
    such a ref is resolved against the nearest enclosing node that has `$defs`, as OpenClaw means it."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.found: set[Pattern] = set()
        self._active: set[tuple[int, Pattern]] = set()

    def resolve(self, node: Any, defs: dict[str, Any] | None) -> Any:
        for _ in range(32):  # a chain of refs, never a loop
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not isinstance(ref, str) or not ref.startswith("#/"):
                return node
            target: Any = self.root
            parts = ref[2:].split("/")
            if parts[0] == "$defs" and defs is not None:
                target, parts = defs, parts[1:]
            for p in parts:
                target = target.get(p.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
            node = target
        return None

    def accepts_ref(self, node: Any, defs: dict[str, Any] | None, depth: int = 0) -> bool:
        node = self.resolve(node, defs)
        if not isinstance(node, dict) or depth > 8:
            return False
        if _is_ref_shape(node):
            return True
        return any(self.accepts_ref(b, defs, depth + 1)
                   for k in ("anyOf", "oneOf", "allOf") for b in node.get(k) or ())

    def walk(self, node: Any, path: Pattern, defs: dict[str, Any] | None) -> None:
        if isinstance(node, dict) and isinstance(node.get("$defs"), dict):
            defs = node["$defs"]
        node = self.resolve(node, defs)
        if not isinstance(node, dict):
            return
        key = (id(node), path)
        if key in self._active or len(path) > 40:
            return
        if self.accepts_ref(node, defs):
            self.found.add(path)
            return
        self._active.add(key)
        for name, sub in (node.get("properties") or {}).items():
            self.walk(sub, (*path, name), defs)
        for sub in (node.get("patternProperties") or {}).values():
            self.walk(sub, (*path, ANY_KEY), defs)
        if isinstance(node.get("additionalProperties"), dict):
            self.walk(node["additionalProperties"], (*path, ANY_KEY), defs)
        items = node.get("items")
        for sub in items if isinstance(items, list) else [items] if isinstance(items, dict) else []:
            self.walk(sub, (*path, ANY_ITEM), defs)
        for k in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(k) or ():
                self.walk(sub, path, defs)
        self._active.discard(key)


def derive(schema: dict[str, Any]) -> frozenset[Pattern]:
    """Every config field of `schema` that accepts a SecretRef."""
    w = _Walk(schema)
    w.walk(schema, (), None)
    return frozenset(w.found)


@cache
def fields_for(version: str) -> frozenset[Pattern]:
    """The credential fields of OpenClaw `version`: from its shipped schema, else from the schema a host of that
    version printed (kept in the controller's cache by plan), else from the newest shipped one."""
    text = None
    if has_schema(version):
        text = (_schema_dir() / f"config.schema.{version}.json").read_text(encoding="utf-8")
    else:
        try:
            text = (cache_dir("schemas") / f"config.schema.{version}.json").read_text(encoding="utf-8")
        except (OSError, ValueError):
            newest = known_versions()[-1:]
            if newest:
                text = (_schema_dir() / f"config.schema.{newest[0]}.json").read_text(encoding="utf-8")
    if text is None:
        return frozenset()
    digest = hashlib.sha256(f"{_WALK_VERSION}\0{text}".encode()).hexdigest()
    path = cache_dir("secret-fields") / f"{digest}.json"
    cached = read_json(path)
    if isinstance(cached, list) and all(isinstance(p, list) for p in cached):
        return frozenset(tuple(str(x) for x in p) for p in cached)
    found = derive(json.loads(text))
    write_json(path, sorted(list(p) for p in found))
    return found


def _matching(cfg: Any, pattern: Pattern, at: ConfigPath = ()) -> Iterator[tuple[ConfigPath, Any]]:
    if not pattern:
        yield at, cfg
        return
    head, rest = pattern[0], pattern[1:]
    if head == ANY_ITEM:
        if isinstance(cfg, list):
            for i, item in enumerate(cfg):
                yield from _matching(item, rest, (*at, i))
    elif isinstance(cfg, dict):
        for k in (cfg if head == ANY_KEY else [head] if head in cfg else []):
            yield from _matching(cfg[k], rest, (*at, k))


def values_in_fields(cfg: Any, fields: frozenset[Pattern]) -> list[tuple[ConfigPath, Any]]:
    """Every value `cfg` holds in a credential field, with its path, in a stable order."""
    found = {p: v for pat in fields for p, v in _matching(cfg, pat)}
    return sorted(found.items(), key=lambda pv: tuple(str(x) for x in pv[0]))


def is_literal(value: object) -> bool:
    """A credential written into the config itself (not a SecretRef, not a `${NAME}` reference)."""
    return isinstance(value, str) and bool(value) and not SUBSTITUTION.search(value)


def literals(cfg: Any, fields: frozenset[Pattern]) -> list[tuple[ConfigPath, str]]:
    """The literal strings in credential fields: secrets written into the config itself."""
    return [(p, v) for p, v in values_in_fields(cfg, fields) if isinstance(v, str) and is_literal(v)]


def ref_of(value: Any) -> tuple[str, str, str] | None:
    """(source, provider, id) of a SecretRef value, else None."""
    if isinstance(value, dict) and set(value) == _REF_KEYS and all(isinstance(value[k], str) for k in _REF_KEYS):
        return value["source"], value["provider"], value["id"]
    return None


def env_reads(value: object) -> list[str]:
    """The environment variables a credential field's value reads: an env SecretRef's id, `${NAME}`s."""
    ref = ref_of(value)
    if ref is not None:
        return [ref[2]] if ref[0] == "env" else []
    return SUBSTITUTION.findall(value) if isinstance(value, str) else []


def credential_env(cfg: Any, fields: frozenset[Pattern]) -> set[str]:
    """Every variable a config's credential fields read from the gateway's environment."""
    return {name for _, v in values_in_fields(cfg, fields) for name in env_reads(v)}


def masked_forms(cfg: Any, fields: frozenset[Pattern]) -> tuple[str, ...]:
    """The literal secrets of a config, to be masked wherever its text could be shown: each as it is and as it
    reads inside a JSON string (escaped quotes, backslashes, control characters)."""
    out: set[str] = set()
    for _, v in literals(cfg, fields):
        out |= {v, json.dumps(v, ensure_ascii=False)[1:-1], json.dumps(v)[1:-1]}
    return tuple(sorted(out))
