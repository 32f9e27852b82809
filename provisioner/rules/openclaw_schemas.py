"""The OpenClaw config schemas shipped in schemas/openclaw/: which versions have one, and where it is.

Asking does not import jsonschema.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")
_FILE_RE = re.compile(r"^config\.schema\.(.+)\.json$")


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
