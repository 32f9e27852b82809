"""Load YAML into plain Python values while keeping the source span of every key and value.

PyYAML's own loader silently keeps the last of two equal keys; an inventory with a doubled host or port
must not lose one without a word, so mappings are built here from the composed node graph instead.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan

DocPath = tuple[str | int, ...]

MERGE_TAG = "tag:yaml.org,2002:merge"
# No inventory nests anywhere near this deep; a hostile one could nest deep enough to exhaust Python's recursion
# (our builder) or the C stack (libyaml's composer crashes the process at a few 10^4 levels of `[[[...` or `- - -`).
MAX_DEPTH = 64
# Every collection starts with an indicator of its own (`[`, `{`, a block entry's `-`, a key's `?` or `:`): with
# fewer of them than this, no nesting (flow or block) can reach a depth the composer chokes on (~20 000 levels).
_SCAN_INDICATORS = 2000
# Aliases are expanded into copies: a few lines of anchors referring to anchors ("billion laughs") would expand to
# billions of nodes. A document without aliases has fewer nodes than characters; aliases may add this many.
_ALIAS_EXPANSION = 200_000
# No inventory value needs more than 64 bits; beyond ~4300 digits Python cannot even print an integer.
_MAX_INT = 2**64


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


class _Locator:
    r"""Turns YAML marks into spans whose lines are the text's `\n`-separated lines.

    YAML also breaks lines at a lone `\r`, U+0085, U+2028 and U+2029; editors, grep and diffs do not (or not all
    of them): a file with those would get line numbers past its end. Marks carry the character index too.
    """

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        exotic = text.count("\r") != text.count("\r\n") or any(c in text for c in "\x85\u2028\u2029")
        self._starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")] if exotic else None

    def mark(self, mark: Any) -> SourceSpan:
        if mark is None:
            return SourceSpan(self.file, 1, 1)
        if self._starts is None:
            return SourceSpan(self.file, mark.line + 1, mark.column + 1)
        return self.index(mark.index)

    def index(self, index: int) -> SourceSpan:
        index = max(0, min(index, len(self.text)))
        starts = self._starts
        if starts is None:
            before = self.text[:index]
            return SourceSpan(self.file, before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1)
        line = bisect_right(starts, index)
        return SourceSpan(self.file, line, index - starts[line - 1] + 1)

    def node(self, node: Node) -> SourceSpan:
        return self.mark(node.start_mark)


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        super().__init__("too many nodes")
        self.node = node


class _Builder:
    def __init__(self, file: str, locate: _Locator, budget: int) -> None:
        self.file = file
        self._span = locate.node
        self.spans = SpanTable(file)
        self._scalars = SafeConstructor()
        self.errors: list[Diagnostic] = []
        self._active: set[int] = set()
        self._budget = budget

    def build(self, node: Node, path: DocPath) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise _TooLarge(node)
        self.spans.values.setdefault(path, self._span(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node)
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

    def _scalar(self, node: ScalarNode) -> Any:
        try:
            value = self._scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:  # e.g. !!python/object: a tag the safe loader refuses
            self.errors.append(self._error(node, f"YAML: {exc.problem}"))
            return None
        except (ValueError, OverflowError) as exc:
            # a date that does not exist (2001-02-30), an integer of more digits than Python converts
            if node.tag.endswith(":int") and len(node.value) > 1000:
                self.errors.append(self._error(node, "integer out of range: no inventory value needs more than 64 "
                                               "bits"))
            else:
                self.errors.append(self._error(node, f"invalid value {_short(node.value)}: {str(exc)[:120]}"))
            return None
        except Exception:  # an explicit tag PyYAML's constructor trips over: `!!timestamp x`, `!!bool x`, `!!int ""`
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.errors.append(self._error(node, f"invalid value {_short(node.value)} for the tag {tag}"))
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_INT:
            self.errors.append(self._error(node, "integer out of range: no inventory value needs more than 64 bits"))
            return None
        return value

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
            key = self._scalar(key_node)
            if isinstance(key, bool) or key is None or isinstance(key, float):
                # `yes:` or `null:` as a key is almost always a mistake; keep the text the user wrote
                key = key_node.value
            key = str(key)
            if key in explicit:
                first = self._span(explicit[key])
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
            # setdefault: a mapping merged in with `<<` must not move the spans of this mapping's own keys
            self.spans.keys.setdefault((*path, key), self._span(key_node))
            out[key] = self.build(value_node, (*path, key))
        # `<<: *base` fills in only what the mapping does not say itself (YAML merge-key semantics)
        for source, at in merged:
            if not isinstance(source, MappingNode):
                self.errors.append(self._error(source, "a merge key (<<) needs a mapping or a list of mappings"))
                continue
            value = self.build(source, at)
            if not isinstance(value, dict):  # refused (recursive or too deep): the error is recorded
                continue
            for k, v in value.items():
                if k not in out:
                    out[k] = v
        return out

    def _error(self, node: Node, message: str, code: str = "yaml") -> Diagnostic:
        return Diagnostic(Severity.ERROR, message, self._span(node), code=code)


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 3]) + "..."


def _not_utf8(text: str, locate: _Locator) -> Diagnostic | None:
    """A str can hold what no file can (lone surrogates, e.g. from a decode with surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return Diagnostic(Severity.ERROR, f"character U+{ord(text[exc.start]):04X} cannot be encoded as UTF-8 "
                          "(a lone surrogate)", locate.index(exc.start), code="yaml")
    return None


def _too_deep(text: str, locate: _Locator) -> Diagnostic | None:
    """Refuse collections (flow `[[[`, or block `- - -`, `? ? ?`) nested deeper than MAX_DEPTH before composing:
    the parser's events come one by one (no recursion), the composer would recurse once per level."""
    if sum(text.count(c) for c in "[{-?:") < _SCAN_INDICATORS:
        return None
    depth = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return Diagnostic(Severity.ERROR, f"nested more than {MAX_DEPTH} levels deep",
                                      locate.mark(event.start_mark), code="yaml")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None  # the composer reports the syntax error, located
    return None


def load_yaml(text: str, file: str) -> tuple[Any, SpanTable, list[Diagnostic]]:
    """Parse one YAML document; returns the data, its span table and any load errors (never raises on bad YAML)."""
    budget = _ALIAS_EXPANSION + len(text)
    locate = _Locator(file, text)
    builder = _Builder(file, locate, budget)
    refused = _not_utf8(text, locate) or _too_deep(text, locate)
    if refused is not None:
        return None, builder.spans, [refused]
    try:
        # libyaml's parser when present: composing a 100-host inventory in pure Python costs more than the rest
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        span = locate.mark(exc.problem_mark or exc.context_mark)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML syntax: {problem}", span, code="yaml")]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow in a document, e.g. a NUL
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "byte"
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML: unacceptable {what}: {exc.reason}",
                                                locate.index(exc.position), code="yaml")]
    except yaml.YAMLError as exc:  # e.g. more than one document
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML: {exc}", SourceSpan(file, 1, 1), "yaml")]
    if node is None:
        return None, builder.spans, [Diagnostic(Severity.ERROR, "the inventory is empty", SourceSpan(file, 1, 1))]
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        span = locate.mark(exc.problem_mark)
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML: {exc.problem}", span, code="yaml")]
    except (ValueError, OverflowError) as exc:  # a safety net: _Builder._scalar locates bad scalars itself
        return None, builder.spans, [Diagnostic(Severity.ERROR, f"YAML: {exc}", SourceSpan(file, 1, 1), "yaml")]
    except _TooLarge as exc:
        message = f"aliases expand the inventory to more than {budget} nodes; refusing to expand them further"
        return None, builder.spans, [builder._error(exc.node, message)]
    except RecursionError:
        return None, builder.spans, [Diagnostic(Severity.ERROR, "the inventory is nested too deeply to be one",
                                                SourceSpan(file, 1, 1), "yaml")]
    return data, builder.spans, builder.errors
