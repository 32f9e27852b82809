"""Check a rendered OpenClaw config against the JSON Schema that a given OpenClaw release prints.

The schema comes from openclaw_schemas (shipped) or the caller (a host's own), prepared by openclaw_prepare;
openclaw_issues puts each error into words. Here: the validators, their result caches, and the entry point.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from provisioner.rules.openclaw_issues import ConfigIssue, Path, _dotted, _explain
from provisioner.rules.openclaw_prepare import _prepare, _prepared_cached
from provisioner.rules.openclaw_schemas import _schema_dir, has_schema, known_versions

_RESULT_CACHE_SIZE = 4096


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
