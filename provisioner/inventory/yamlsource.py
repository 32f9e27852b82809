"""Load YAML into plain Python values while keeping the source span of every key and value.

PyYAML's own loader silently keeps the last of two equal keys; an inventory with a doubled host or port
must not lose one without a word, so mappings are built here from the composed node graph instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provisioner.model import Diagnostic, Severity, SourceSpan

DocPath = tuple[str | int, ...]

MERGE_TAG = "tag:yaml.org,2002:merge"
# No inventory nests anywhere near this deep; a hostile one could nest deep enough to exhaust Python's recursion
# (our builder) or the C stack (libyaml's composer crashes the process at ~10^5 levels of `[[[...`).
MAX_DEPTH = 64
_SCAN_BRACKETS = 2000  # with fewer `[`/`{` than this, flow nesting cannot reach a depth the composer chokes on


@dataclass
class SpanTable:
    """Spans of values and of mapping keys, by document path."""

    file: str
    values: dict[DocPath, SourceSpan] = field(default_factory=dict)
    keys: dict[DocPath, SourceSpan] = field(default_factory=dict)

    def value(self, path: DocPath) -> SourceSpan | None:
        """The span of the value at path, or of the nearest enclosing node that has one."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), SourceSpan(self.file, 1, 1))

    def key(self, path: DocPath) -> SourceSpan | None:
        """The span of the key naming path (falls back to its value)."""
        return self.keys.get(tuple(path)) or self.value(path)


class YamlLoadError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


def _span(file: str, node: Node) -> SourceSpan:
    m = node.start_mark
    return SourceSpan(file, m.line + 1, m.column + 1)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.spans = SpanTable(file)
        self._scalars = SafeConstructor()
        self.errors: list[Diagnostic] = []
        self._active: set[int] = set()

    def build(self, node: Node, path: DocPath) -> Any:
        self.spans.values.setdefault(path, _span(self.file, node))
        if isinstance(node, ScalarNode):
            return self._scalars.construct_object(node, deep=True)
        if len(path) >= MAX_DEPTH:
            self.errors.append(self._error(node, f"nested more than {MAX_DEPTH} levels deep"))
            return None
        if id(node) in self._active:
            # a recursive alias cannot be a finite inventory
            self.errors.append(self._error(node, "recursive alias: a node refers to itself"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        raise AssertionError(f"unknown YAML node {node!r}")

    def _mapping(self, node: MappingNode, path: DocPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        explicit: dict[str, Node] = {}
        merged: list[tuple[Node, DocPath]] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                merged.extend((s, path) for s in sources)
                continue
            if not isinstance(key_node, ScalarNode):
                self.errors.append(self._error(key_node, "mapping keys must be plain scalars"))
                continue
            key = self._scalars.construct_object(key_node, deep=True)
            if isinstance(key, bool) or key is None or isinstance(key, float):
                # `yes:` or `null:` as a key is almost always a mistake; keep the text the user wrote
                key = key_node.value
            key = str(key)
            if key in explicit:
                first = _span(self.file, explicit[key])
                self.errors.append(
                    self._error(
                        key_node,
                        f"duplicate key {key!r} (first defined at line {first.line}, column {first.col}); "
                        "YAML would silently keep only the last one",
                        code="duplicate-key",
                    )
                )
                continue
            explicit[key] = key_node
            self.spans.keys[(*path, key)] = _span(self.file, key_node)
            out[key] = self.build(value_node, (*path, key))
        # `<<: *base` fills in only what the mapping does not say itself (YAML merge-key semantics)
        for source, at in merged:
            if not isinstance(source, MappingNode):
                self.errors.append(self._error(source, "a merge key (<<) needs a mapping or a list of mappings"))
                continue
            value = self.build(source, at)
            for k, v in value.items():
                if k not in out:
                    out[k] = v
        return out

    def _error(self, node: Node, message: str, code: str = "yaml") -> Diagnostic:
        return Diagnostic(Severity.ERROR, message, _span(self.file, node), code=code)


def _too_deep(text: str, file: str) -> Diagnostic | None:
    """Refuse flow collections nested deeper than MAX_DEPTH before composing: the parser's events come one by
    one (no recursion), the composer would recurse once per level."""
    if text.count("[") + text.count("{") < _SCAN_BRACKETS:
        return None
    depth = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    m = event.start_mark
                    at = SourceSpan(file, m.line + 1, m.column + 1) if m else SourceSpan(file, 1, 1)
                    return Diagnostic(Severity.ERROR, f"nested more than {MAX_DEPTH} levels deep", at, code="yaml")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None  # the composer reports the syntax error, located
    return None


def load_yaml(text: str, file: str) -> tuple[Any, SpanTable, list[Diagnostic]]:
    """Parse one YAML document; returns the data, its span table and any load errors (never raises on bad YAML)."""
    builder = _Builder(file)
    too_deep = _too_deep(text, file)
    if too_deep is not None:
        return None, builder.spans, [too_deep]
    try:
        # libyaml's parser when present: composing a 100-host inventory in pure Python costs more than the rest
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = SourceSpan(file, mark.line + 1, mark.column + 1) if mark else SourceSpan(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML syntax: {problem}", span, code="yaml")]
    except yaml.YAMLError as exc:  # e.g. more than one document
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML: {exc}", SourceSpan(file, 1, 1), "yaml")]
    if node is None:
        return None, builder.spans, [Diagnostic(Severity.ERROR, "the inventory is empty", SourceSpan(file, 1, 1))]
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        span = SourceSpan(file, mark.line + 1, mark.column + 1) if mark else SourceSpan(file, 1, 1)
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML: {exc.problem}", span, code="yaml")]
    except (ValueError, OverflowError) as exc:  # e.g. a timestamp scalar out of range
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML: {exc}", SourceSpan(file, 1, 1), "yaml")]
    except RecursionError:
        return None, builder.spans, [Diagnostic(Severity.ERROR, "the inventory is nested too deeply to be one",
                                                SourceSpan(file, 1, 1), "yaml")]
    return data, builder.spans, builder.errors
