"""Which keys log in, and logging in with them: the inventory's key alone, or the default key and the ssh-agent's.

Imported by provisioner.remote.ssh once paramiko is loaded (see there for why it is loaded that way).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import paramiko

from provisioner.remote.transport import ConnectError


def keys_to_offer(host: str, identity_file: str | None, explicit: bool) -> tuple[list[paramiko.PKey], Any]:
    """The keys to offer, and the agent connection to close after logging in (or None).

    A key the inventory (or its ssh_config) names is the only one offered. Otherwise: the default key file if it
    exists, then the keys of the ssh-agent at SSH_AUTH_SOCK, so that agent-only keys log in."""
    if explicit:
        return [_load_identity(host, identity_file)], None
    keys = []
    unusable = None  # the default key, when it cannot be loaded (a passphrase): the agent may still log in
    if identity_file and os.path.exists(os.path.expanduser(identity_file)):
        try:
            keys.append(_load_identity(host, identity_file))
        except ConnectError as e:
            unusable = e
    agent = None
    if os.environ.get("SSH_AUTH_SOCK"):
        try:
            agent = paramiko.Agent()
            keys += list(agent.get_keys())
        except (paramiko.SSHException, OSError) as e:
            raise ConnectError(host, f"cannot read the ssh-agent's keys (SSH_AUTH_SOCK): {e}") from None
    if not keys:
        if agent is not None:
            agent.close()
        if unusable is not None:
            raise unusable
        raise ConnectError(host, f"no key to log in with: no identity_file set, {identity_file or 'no default key'} "
                                 "does not exist, and no ssh-agent with keys (SSH_AUTH_SOCK)")
    return keys, agent


# Parsed keys by file identity: a fleet's hosts mostly share one key file, and parsing it costs ~1 ms of client
# CPU per connection. A file replaced or edited since has another identity and is read again.
_KEYS: dict[tuple[str, int, int, int, int], paramiko.PKey] = {}
_KEYS_LOCK = threading.Lock()


def _load_identity(host: str, identity_file: str | None) -> paramiko.PKey:
    if identity_file is None:
        raise ConnectError(host, "no identity_file configured")
    path = os.path.expanduser(identity_file)
    try:
        st = os.stat(path)
        ident = (path, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        with _KEYS_LOCK:
            key = _KEYS.get(ident)
        if key is None:
            key = paramiko.PKey.from_path(path)
            with _KEYS_LOCK:
                _KEYS[ident] = key
        return key
    except paramiko.PasswordRequiredException:
        raise ConnectError(host, f"identity file {path} is passphrase-protected (unsupported)") from None
    except (OSError, paramiko.SSHException, ValueError) as e:
        raise ConnectError(host, f"cannot load identity file {path}: {e}") from None


def authenticate(host: str, t: paramiko.Transport, address: str, port: int, user: str, keys: list[paramiko.PKey],
                  identity_file: str | None) -> None:
    for i, key in enumerate(keys):
        try:
            t.auth_publickey(user, key)
            return
        except paramiko.BadAuthenticationType as e:
            raise ConnectError(host, f"authentication failed for {user}@{address}:{port}: the server "
                                     f"accepts only {', '.join(e.allowed_types)}") from None
        except paramiko.AuthenticationException:
            if i + 1 < len(keys):
                continue
            which = f"key {identity_file}" if len(keys) == 1 and not isinstance(key, paramiko.AgentKey) \
                else f"any of {len(keys)} keys (identity file and ssh-agent)"
            raise ConnectError(host, f"authentication failed for {user}@{address}:{port} with {which} "
                                     "(not in the user's authorized_keys?)") from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectError(host, f"authentication with {address}:{port} broke off: {e}") from None


