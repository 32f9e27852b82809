"""Load a rollout playbook (YAML): batches (`serial`), failure budget (`max_fail`)."""

from __future__ import annotations

from typing import Any

import yaml

from provisioner.apply.rollout import Playbook


class PlaybookError(Exception):
    pass


def load_playbook(path: str) -> Playbook:
    try:
        with open(path, encoding="utf-8") as f:
            data: Any = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise PlaybookError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PlaybookError(f"{path}: a playbook is a mapping")
    serial = data.get("serial", [1, "100%"])
    if not isinstance(serial, list):
        serial = [serial]
    return Playbook(serial=tuple(serial), max_fail=data.get("max_fail", 0), name=str(data.get("name", path)))
