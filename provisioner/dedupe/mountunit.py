"""The systemd mount unit that makes the shared claim directory a persistent mount (nfs, sshfs or bind)."""

from __future__ import annotations

from provisioner.inventory.model import DedupeSettings

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")


def escape_path(path: str) -> str:
    """systemd's path escaping (`systemd-escape --path`): the only name systemd accepts for a mount unit."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "-"
    out = []
    for part in parts:
        chunk = []
        for i, b in enumerate(part.encode("utf-8")):
            c = chr(b)
            if c in _SAFE and not (i == 0 and c == "."):
                chunk.append(c)
            else:
                chunk.append(f"\\x{b:02x}")
        out.append("".join(chunk))
    return "-".join(out)


def unit_name(path: str) -> str:
    return escape_path(path) + ".mount"


def _value(v: str) -> str:
    # unit file values: a `%` starts a specifier; newlines are refused by the inventory schema
    return v.replace("%", "%%")


def render_mount_unit(dd: DedupeSettings) -> bytes:
    m = dd.mount
    assert m is not None
    options = list(m.options)
    if m.type == "nfs":
        fstype = "nfs"
        options.append("_netdev")
    elif m.type == "sshfs":
        fstype = "fuse.sshfs"
        options += ["_netdev", "allow_other", "reconnect", "ServerAliveInterval=15"]
        if m.identity_file:
            options.append(f"IdentityFile={m.identity_file}")
    else:
        fstype = "none"
        options.append("bind")
    seen: list[str] = []
    for o in options:  # keep the operator's order, drop repeats
        if o not in seen:
            seen.append(o)
    network = m.type in ("nfs", "sshfs")
    lines = [
        "# Managed by openclaw-provisioner: the shared inbound-dedupe claim directory of the HA gateways.",
        "[Unit]",
        f"Description=OpenClaw inbound-dedupe claim directory ({m.type})",
    ]
    if network:
        lines += ["After=network-online.target", "Wants=network-online.target"]
    lines += [
        "",
        "[Mount]",
        f"What={_value(m.source)}",
        f"Where={_value(dd.dir)}",
        f"Type={fstype}",
        f"Options={_value(','.join(seen))}",
        "DirectoryMode=0755",
        "",
        "[Install]",
        f"WantedBy={'remote-fs.target' if network else 'local-fs.target'}",
        "",
    ]
    return "\n".join(lines).encode("utf-8")
