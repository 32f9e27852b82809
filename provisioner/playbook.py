"""Load a rollout playbook (YAML) with located errors: batches, failure budget, health gate, pause, on_failure."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from provisioner.apply.rollout import Playbook
from provisioner.core.diagnostics import Diagnostic, ProvisionError, Severity
from provisioner.inventory.yamlsource import load_yaml


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    text = (resources.files("provisioner.schemas") / "playbook.schema.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))


def _deepest(err: Any) -> Any:
    leaves = [err]
    while any(e.context for e in leaves):
        leaves = [c for e in leaves for c in (e.context or [e])]
    return max(leaves, key=lambda e: (len(e.absolute_path), e.validator == "pattern"))


def _words(err: Any) -> str:
    """A jsonschema error in the words of a playbook's author, not the validator's."""
    v, got = err.validator, err.instance
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        return f"expected {'true or false' if want == 'boolean' else want}, got {json.dumps(got, default=str)}"
    if v == "pattern" and str(err.validator_value).endswith("%$"):
        return f"{got!r} is not a percentage from 1% to 100%"
    if v in ("minimum", "exclusiveMinimum"):
        return f"must be at least {err.validator_value}{' (exclusive)' if v == 'exclusiveMinimum' else ''}, got {got}"
    if v in ("maximum", "exclusiveMaximum"):
        return f"must be at most {err.validator_value}, got {got}"
    if v == "enum":
        return f"{json.dumps(got, default=str)} is not one of {', '.join(json.dumps(o) for o in err.validator_value)}"
    return str(err.message)


def _extra_keys(err: Any) -> list[str]:
    allowed = set(err.schema.get("properties") or {})
    return sorted(k for k in (err.instance if isinstance(err.instance, dict) else {}) if k not in allowed)


def default_playbook() -> Playbook:
    """The rollout `apply` uses without --playbook: the shipped playbooks/default.yaml, its one definition."""
    with resources.as_file(resources.files("provisioner.playbooks") / "default.yaml") as path:
        return load_playbook(str(path))


def load_playbook(path: str) -> Playbook:
    """The playbook at path; raises ProvisionError carrying located diagnostics when it is not valid."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ProvisionError(f"cannot read playbook {path}: {exc}") from exc
    data, spans, diags = load_yaml(text, path)
    if not diags and not isinstance(data, dict):
        diags = [Diagnostic(Severity.ERROR, "a playbook is a mapping (serial:, max_fail:, ...)", spans.value(()))]
    if not diags:
        for top in sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
            # oneOf: report the alternative that came closest, at its own (deeper) path
            err = _deepest(top)
            where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            message = _words(err)
            if top.context and err.validator != "pattern" and list(err.absolute_path)[:1] == ["health_gate"]:
                message = f"{message} (seconds, or a list of seconds per batch)"
            elif top.context and err.validator != "pattern":
                message = f"{message} (a count or a percentage such as \"50%\")"
            on_key = err.validator == "additionalProperties"
            for key in _extra_keys(err) if on_key else [None]:
                at = tuple(err.absolute_path) + ((key,) if key is not None else ())
                diags.append(Diagnostic(Severity.ERROR, f"{where}: unknown key {key!r}" if on_key else
                                        f"{where}: {message}", spans.key(at) if on_key else spans.value(at),
                                        code="playbook"))
        diags.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))  # in the order of the file
    if diags:
        raise ProvisionError(f"invalid playbook {path}", tuple(diags))
    # keys a playbook leaves out take Playbook's own defaults
    d = Playbook()
    serial = data.get("serial", list(d.serial))
    gate = data.get("health_gate") or {}
    settle = gate.get("settle", list(d.settle))
    return Playbook(
        serial=tuple(serial if isinstance(serial, list) else [serial]),
        max_fail=data.get("max_fail", d.max_fail),
        name=str(data.get("name", path)),
        health_gate=bool(gate.get("enabled", d.health_gate)),
        health_timeout=gate.get("timeout", d.health_timeout),
        settle=tuple(float(x) for x in (settle if isinstance(settle, list) else [settle])),
        pause=float(data.get("pause", d.pause)),
        on_failure=data.get("on_failure", d.on_failure),
    )
