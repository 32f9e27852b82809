"""The controller's own cache (~/.cache/openclaw-provisioner or $XDG_CACHE_HOME): JSON documents kept by key.

Every entry is derived data that can be made again, so a missing, unreadable or unwritable cache only
costs time, never correctness."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cache_dir(kind: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "openclaw-provisioner" / kind


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Write atomically (temp file + rename), so that a concurrent reader never sees half a document."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
