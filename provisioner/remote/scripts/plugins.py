"""Host-side scripts for pinned plugins under the plugin prefix: report which are in place, unpack a pushed one.

A plugin's directory and everything in it is root's and writable by root only: the gateway, running as the
service user, loads and runs that code, so that user must not be able to change it.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.remote.command import q
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, safe_lines

STAMP = ".ocp-plugin"


def plugins_probe_lines(dirs: Sequence[str]) -> list[str]:
    """`G <index> <stamp>` for each plugin directory in place (a link there is not a plugin of ours)."""
    return [f'd={q(d)}; if [ -d "$R$d" ] && [ ! -L "$R$d" ] && [ -f "$R$d/{STAMP}" ]; then '
            f'echo "G {i} $(head -c 300 "$R$d/{STAMP}" | tr -d \'\\n\')"; fi' for i, d in enumerate(dirs)]


def parse_plugin_line(dirs: Sequence[str], rest: str, out: dict[str, str]) -> None:
    """A `G` record of the probe: the stamp of the plugin directory at that index."""
    idx, _, stamp = rest.partition(" ")
    if idx.isdigit() and int(idx) < len(dirs):
        out[dirs[int(idx)]] = stamp


def plugin_install_script(final: str, incoming: str, sha256: str, stamp: str, run_id: str) -> str:
    """Verify the pushed tarball, unpack it beside its final place as root's alone, then rename it in.

    A failure at any step leaves the plugin's directory as it was and removes what was unpacked."""
    parent = final.rsplit("/", 1)[0]
    tmp = f"{final}.tmp-{run_id}"
    return sh_script([
        "R=''", HELPERS, *safe_lines([final]),
        f"inc={q(incoming)}; tmp={q(tmp)}",
        "cleanup() { rm -rf -- \"$tmp\"; rm -f -- \"$inc\"; }",
        "trap cleanup EXIT",
        "trap 'exit 130' INT TERM HUP",
        "got=$(sha256sum < \"$inc\" | cut -c1-64)",
        f"if [ \"$got\" != {q(sha256)} ]; then echo \"checksum mismatch: got $got\" >&2; exit 3; fi",
        f"install -d -m 0755 {q(parent)}",
        "rm -rf -- \"$tmp\"; mkdir -m 0755 -- \"$tmp\"",
        "tar -xzf \"$inc\" -C \"$tmp\" --no-same-owner --no-same-permissions",
        # root's, readable by all, writable by root alone (a package may ship group- or world-writable modes)
        "chown -hR 0:0 -- \"$tmp\" && chmod -R u+rwX,go+rX,go-w -- \"$tmp\"",
        # npm's own links (node_modules/.bin) stay inside; one leading out could reach the service user's files
        "rt=$(readlink -f -- \"$tmp\")",
        "find \"$tmp\" -type l | while IFS= read -r l; do case $(readlink -f -- \"$l\") in \"$rt\"/*) ;; "
        "*) echo \"a link in the package leads out of it: ${l#\"$tmp\"/}\" >&2; exit 3 ;; esac; done",
        f"printf '%s\\n' {q(stamp)} > \"$tmp/{STAMP}\"",
        f"if [ -e {q(final)} ]; then rm -rf -- {q(final + '.old')}; mv -T -- {q(final)} {q(final + '.old')}; fi",
        f"mv -T -- \"$tmp\" {q(final)}",
        f"rm -rf -- {q(final + '.old')}",
        "echo INSTALLED",
    ])
