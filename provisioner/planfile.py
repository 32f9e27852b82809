"""Plan <-> JSON: the saved plan file and the JSON view share this one encoding (secrets are already masked)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from provisioner.core.changes import Action, Change, ChangeKind, HostPlan, Plan

FORMAT = "openclaw-provisioner-plan/1"


@dataclass(frozen=True)
class SavedPlan(Plan):
    """A plan read back from a plan file, with the id of the digest key its file fingerprints were made with
    (provisioner/digests.py); None for a plan file written before fingerprints were keyed."""

    digest_key_id: str | None = None


def digest_key_id(plan: Plan) -> str | None:
    """The digest key a plan's fingerprints were made with: a saved plan's own, else this controller's."""
    if isinstance(plan, SavedPlan):
        return plan.digest_key_id
    from provisioner.digests import DigestKeyError, key_id

    try:
        return key_id()
    except DigestKeyError:  # every host's plan already says why (its fingerprints could not be made)
        return None


def change_json(c: Change) -> dict[str, Any]:
    return {
        "host": c.host,
        "instance": c.instance,
        "kind": c.kind.value,
        "target": c.target,
        "action": c.action.value,
        "reason": c.reason,
        "before": c.before,
        "after": c.after,
        "diff": c.diff,
        "cause": c.cause or None,
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "inventory": {"path": plan.inventory_path, "sha256": plan.inventory_sha256},
        "created_at": plan.created_at,
        "digest_key_id": digest_key_id(plan),
        "changes_pending": plan.has_changes,
        "summary": summary_counts(plan),
        "hosts": [
            {
                "host": h.host,
                "error": h.error,
                "locked_by": h.locked_by,
                "changes": [change_json(c) for c in h.changes if c.action is not Action.NOOP],
                # what was checked and found up to date, with its fingerprint: applying a saved plan re-checks
                # these too (a plan file is lossless)
                "unchanged": [{"instance": c.instance, "kind": c.kind.value, "target": c.target,
                               "fingerprint": c.before} for c in h.changes if c.action is Action.NOOP],
            }
            for h in plan.hosts
        ],
    }


def summary_counts(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for h in plan.hosts:
        for c in h.changes:
            if c.action is not Action.NOOP:
                counts[c.action.value] = counts.get(c.action.value, 0) + 1
    counts["hosts_changing"] = sum(1 for h in plan.hosts if h.has_changes)
    counts["hosts_failed"] = sum(1 for h in plan.hosts if h.error)
    counts["hosts_refused"] = sum(1 for h in plan.hosts if h.refusals)
    counts["hosts"] = len(plan.hosts)
    return counts


def dumps(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2, sort_keys=True) + "\n"


class PlanFileError(Exception):
    pass


def loads(text: str) -> Plan:
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PlanFileError(f"not a plan file of format {FORMAT}")
        hosts = []
        for h in data["hosts"]:
            changes = [
                Change(c["host"], c["instance"], c["target"], Action(c["action"]), c["reason"], c["before"], c["after"],
                       c.get("diff", ""), ChangeKind(c["kind"]), c.get("cause") or "")
                for c in h["changes"]
            ]
            changes += [Change(h["host"], u["instance"], u["target"], Action.NOOP, "up to date", u["fingerprint"],
                               u["fingerprint"], kind=ChangeKind(u["kind"]))
                        for u in h.get("unchanged", []) if isinstance(u, dict)]
            hosts.append(HostPlan(h["host"], tuple(changes), h.get("error"), h.get("locked_by")))
        key = data.get("digest_key_id")  # absent in plan files of older versions: still loadable
        if key is not None and not isinstance(key, str):
            raise ValueError(f"digest_key_id must be a string, not {key!r}")
        return SavedPlan(data["inventory"]["path"], data["inventory"]["sha256"], tuple(hosts),
                         data.get("created_at", ""), key)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"malformed plan file: {exc}") from exc


def looks_like_plan(text: str) -> bool:
    return text.lstrip().startswith("{") and FORMAT in text[:4096]
