"""How tests start the real CLI: this checkout's code, whatever copy of the package is installed."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "provisioner.cli", *args]


def cli_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess; PYTHONPATH puts this checkout first (tests may run in a clone
    while an editable install points elsewhere)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env
