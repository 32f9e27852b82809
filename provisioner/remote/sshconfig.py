"""OpenSSH client config files (`ssh: {config_file: ~/.ssh/config}`): what their Host blocks say of a host fills
in what the inventory leaves unset: HostName, User, Port, IdentityFile, ProxyJump and ProxyCommand.

Opt-in: an inventory is the contract of what is reached how, and a file that differs from one controller (or CI
runner) to the next must not silently change that; naming the file in the inventory says it is part of it. The
inventory's own values always win. Parsing is paramiko's SSHConfig; this module reads the file, caches its parse
and turns a lookup into the inventory's terms. `Match exec` lines are not supported.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any

from provisioner.inventory.build import jump_hops
from provisioner.inventory.model import Host, Inventory

_cache: dict[str, tuple[tuple[int, int], Any]] = {}
_cache_lock = threading.Lock()


class SSHConfigError(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def lookup(name: str, path: str | None) -> dict[str, object]:
    """What the config file at `path` says for `name` (keys lower-case; identityfile: the first that exists)."""
    if not path:
        return {}
    found: dict[str, object] = dict(_parsed(path).lookup(name))
    files = found.get("identityfile")
    if isinstance(files, list):
        existing = [f for f in files if os.path.exists(os.path.expanduser(f))]
        found["identityfile"] = os.path.expanduser((existing or files)[0]) if files else None
    if str(found.get("hostname", "")) == name:
        del found["hostname"]  # paramiko fills in the name itself: that is no HostName line
    return found


def _parsed(path: str) -> Any:
    # paramiko.config is imported by provisioner.remote.ssh with the optional `invoke` kept out (see there)
    from provisioner.remote.ssh import paramiko

    try:
        st = os.stat(path)
    except OSError as e:
        raise SSHConfigError(path, f"cannot read ssh config_file {path}: {e.strerror}") from None
    stamp = (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    try:
        parsed = paramiko.SSHConfig.from_path(path)
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError, ValueError) as e:
        raise SSHConfigError(path, f"cannot parse ssh config_file {path}: {e}") from None
    with _cache_lock:
        _cache[path] = (stamp, parsed)
    return parsed


def with_ssh_config(inv: Inventory) -> Inventory:
    """The inventory with each host's ssh: settings completed from its config_file (hosts without one as they are).

    The Host pattern is matched against the host's `address`, as `ssh ADDRESS` would; a HostName line replaces
    the address connected to (and looked up in known_hosts, as OpenSSH does). SSHConfigError if a file is bad.
    """
    if not any(h.ssh.config_file for h in inv.hosts):
        return inv
    return dataclasses.replace(inv, hosts=tuple(_complete(h) for h in inv.hosts))


def _complete(h: Host) -> Host:
    ssh = h.ssh
    if not ssh.config_file or h.connection != "ssh" or not h.address:
        return h
    opts = lookup(h.address, ssh.config_file)
    changes: dict[str, Any] = {}
    explicit = set(ssh.explicit)
    if "user" not in explicit and opts.get("user"):
        changes["user"] = str(opts["user"])
    if "port" not in explicit and str(opts.get("port", "")).isdigit():
        changes["port"] = int(str(opts["port"]))
    if "identity_file" not in explicit and opts.get("identityfile"):
        changes["identity_file"] = str(opts["identityfile"])
        explicit.add("identity_file")  # named by the config: that key only, as with the inventory's
    if "proxy_jump" not in explicit and opts.get("proxyjump"):
        changes["proxy_jump"] = jump_hops(str(opts["proxyjump"]))
    elif "proxy_jump" not in explicit and opts.get("proxycommand") and str(opts["proxycommand"]) != "none":
        changes["proxy_command"] = str(opts["proxycommand"])
    changes["explicit"] = frozenset(explicit)
    address = str(opts["hostname"]) if opts.get("hostname") else h.address
    return dataclasses.replace(h, address=address, ssh=dataclasses.replace(ssh, **changes))
