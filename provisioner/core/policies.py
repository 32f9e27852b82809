"""The inventory's closed choices, as enums (str subclasses, so they compare and serialize as their YAML words)."""

from __future__ import annotations

import enum


class Manager(enum.StrEnum):
    """Who runs an instance's gateway: a system unit, a unit of the service user's systemd, or nobody (the
    operator starts it; the tool only writes its files)."""

    SYSTEMD = "systemd"
    SYSTEMD_USER = "systemd-user"
    NONE = "none"


class HostKeyPolicy(enum.StrEnum):
    """What to do with a host that known_hosts does not list (a changed or revoked key is refused under both)."""

    STRICT = "strict"  # refuse it
    ACCEPT_NEW = "accept-new"  # record its key and go on, as ssh -o StrictHostKeyChecking=accept-new
