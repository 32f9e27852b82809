"""The program every gateway unit starts: it reads the instance's env files as the gateway's own user, then
execs OpenClaw.

Why not systemd's `EnvironmentFile=`: systemd (PID 1, root) reads those files itself, before it drops to the
unit's `User=`. `gateway.env` and the token file `gateway.auth.env` sit in the service user's state dir, so that
user could put a link there to any root-only file of `NAME=VALUE` lines (another instance's `gateway.env`, a
credentials file) and have root load it into its own gateway's environment at the next start, which a crash
it causes itself brings on. Here the reading happens after systemd dropped to `User=`, so the files are read
with exactly the user's rights: a link to a file the user cannot read is refused, and the gateway does not start.

The file lands at GATEWAY_EXEC (root's, 0755, in a directory the user cannot write), and units run it with
`/bin/sh`: `sh GATEWAY_EXEC [ENV_FILE ...] -- PROGRAM [ARG ...]`. Each env file is parsed as data by the same
awk program that the CLI calls use (ENV_AWK: systemd's EnvironmentFile rules, nothing in a value is ever run),
later files winning, as with several `EnvironmentFile=-` lines: a missing file is skipped; one that is there but
is not a regular file this user can read stops the start (exit 1, a line in the journal saying which).
"""

from __future__ import annotations

from provisioner.remote.command import q
from provisioner.remote.scripts.openclaw_cli import ENV_AWK, ENV_READ_CAP

GATEWAY_EXEC = "/usr/local/libexec/openclaw-provisioner/gateway-exec"


def gateway_exec_argv(env_files: tuple[str, ...], program: list[str]) -> list[str]:
    """The unit's ExecStart argv: the shell, this script, the env files in load order, `--`, the gateway."""
    return ["/bin/sh", GATEWAY_EXEC, *env_files, "--", *program]


def gateway_exec_script() -> bytes:
    lines = [
        "#!/bin/sh",
        "# Managed by openclaw-provisioner: do not edit by hand, `provision apply` overwrites this file.",
        "# Run by each gateway unit as the gateway's own user: reads the env files given before `--` as data (they",
        "# are the user's files: systemd's EnvironmentFile= would read them as root), then execs the rest.",
        "set -u",
        "ocp_all=",
        'while [ "$#" -gt 0 ] && [ "$1" != -- ]; do',
        '  if [ -e "$1" ] || [ -L "$1" ]; then',
        '    if [ -L "$1" ] || ! [ -f "$1" ] || ! [ -r "$1" ]; then',
        '      echo "gateway-exec: $1: not a regular file this user can read; not starting" >&2',
        "      exit 1",
        "    fi",
        f'    ocp_one=$(head -c {ENV_READ_CAP} -- "$1" | LC_ALL=C awk {q(ENV_AWK)}) || exit 1',
        '    ocp_all="$ocp_all',
        '$ocp_one"',
        "  fi",
        "  shift",
        "done",
        'if [ "$#" -lt 2 ]; then echo "gateway-exec: usage: gateway-exec [ENV_FILE ...] -- PROGRAM [ARG ...]" >&2;'
        " exit 2; fi",
        "shift",
        'eval "$ocp_all"',
        'exec "$@"',
    ]
    return ("\n".join(lines) + "\n").encode()
