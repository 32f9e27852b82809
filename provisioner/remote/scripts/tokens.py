"""Gateway tokens made on the host: created once by the service user, kept across applies, read only when asked.

An instance whose inventory gives no OPENCLAW_GATEWAY_TOKEN gets one at its first apply: the service user (its
tree, so `as_user`, see remote/scripts/trust.py) writes 32 random bytes from the host's /dev/urandom, as hex,
into `gateway.auth.env` (0600) in its state dir, which its unit loads through gateway-exec. A file that already
holds a non-empty token is left alone, so applies and rotations of other secrets keep it. The controller never
generates, probes, hashes or receives it: the only way back is `provision status --show-token`, which prints it
on request and leaves a line in the host's journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from provisioner.core.desired import DesiredToken
from provisioner.inventory.model import TOKEN_VAR
from provisioner.remote.command import q
from provisioner.remote.scripts.openclaw_cli import env_export_lines
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, REFUSED, as_user, user_output

TOKEN_HEADER = ("# Made on this host by openclaw-provisioner at the first apply; kept by later ones. Mode 0600.\n"
                "# Never sent to the controller: `provision status --show-token HOST/INSTANCE` prints it.")
SHOWN = "TOKEN"  # result word of show_token_script (printed by the user side, so it arrives prefixed)


def _ensure(path: str) -> list[str]:
    f = f'"$R"{q(path)}'
    return [
        f"ocp_t={f}",
        # a link or another kind of file where the token belongs: refused, never followed or replaced
        'if [ -L "$ocp_t" ] || { [ -e "$ocp_t" ] && [ ! -f "$ocp_t" ]; }; then '
        f'echo "{REFUSED} {path}: not a regular file" >&2; exit 3; fi',
        f'if ! {{ [ -f "$ocp_t" ] && grep -q {q(f"^{TOKEN_VAR}=.")} -- "$ocp_t"; }}; then',
        "  umask 077",
        "  ocp_v=$(od -An -vtx1 -N32 /dev/urandom | tr -d ' \\n')",
        '  [ "${#ocp_v}" -eq 64 ] || { echo "no randomness from /dev/urandom" >&2; exit 1; }',
        f'  printf \'%s\\n{TOKEN_VAR}=%s\\n\' {q(TOKEN_HEADER)} "$ocp_v" >"$ocp_t.ocp-tmp"',
        '  mv -fT -- "$ocp_t.ocp-tmp" "$ocp_t"',
        "fi",
    ]


def ensure_token_lines(tokens: Sequence[DesiredToken], root: str = "") -> list[str]:
    """Lines (for a script that defines HELPERS and R) that give each token file a token unless it has one."""
    lines: list[str] = []
    for (owner, group), mine in groupby(sorted(tokens, key=lambda t: (t.owner, t.group, t.path)),
                                        key=lambda t: (t.owner, t.group)):
        lines += as_user(owner, group, [line for t in mine for line in _ensure(t.path)], root)
    return lines


def ensure_tokens_script(tokens: Sequence[DesiredToken], root: str = "") -> str:
    """ensure_token_lines as a script of its own (an apply that restarts gateways without writing files)."""
    return sh_script([f"R={q(root)}", HELPERS, *ensure_token_lines(tokens, root), "echo TOKENS-OK"])


def show_token_script(user: str, group: str, files: Sequence[str], address: str, root: str = "") -> str:
    """The gateway token an instance's unit would load (its files read as data by the service user, later files
    winning as in systemd), printed as `TOKEN <value>`; the host's journal records that it was shown."""
    sub: list[str] = []
    for i, path in enumerate(files):
        sub += env_export_lines(path, f"ocp_e{i}")
    evals = "; ".join(f'eval "$ocp_e{i}"' for i in range(len(files)))
    # a subshell: the files' variables cannot touch this script's own
    sub.append(f"( {evals}; v=${{{TOKEN_VAR}-}}; [ -n \"$v\" ] || exit 4; printf '{SHOWN} %s\\n' \"$v\" )")
    note = f"gateway token of {address} shown to the controller (provision status --show-token)"
    return sh_script([f"R={q(root)}", HELPERS, *as_user(user, group, sub, root),
                      f'[ -n "$R" ] || logger -t openclaw-provisioner -- {q(note)} 2>/dev/null || true'])


def parse_shown(text: str) -> str | None:
    """The token the user side printed, or None."""
    for line in user_output(text).splitlines():
        if line.startswith(SHOWN + " ") and len(line) > len(SHOWN) + 1:
            return line[len(SHOWN) + 1:]
    return None
