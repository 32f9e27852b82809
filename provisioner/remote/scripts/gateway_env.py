"""What a running gateway's own environment says: is OpenClaw's managed-config switch on in the process itself?

The unit sets OPENCLAW_CONFIG_READONLY=1, but the process is the truth (an env file read after it, a
drop-in, or a gateway started by hand can say otherwise). The gateway is found by its unit's MainPID, else by
the process listening on its port; root reads `/proc/PID/environ` (procfs: nothing there follows a link the
service user planted) and prints one word per instance. No other variable of that environment, where the
gateway token lives, ever leaves the host.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.remote.command import q
from provisioner.remote.scripts.shell import sh_script

READONLY = "RO"  # result word: `RO <index> yes|no|-`


def readonly_script(targets: Sequence[tuple[str, int]]) -> str:
    """For each (system unit or "", port): `RO <i> yes` if the gateway's process has OPENCLAW_CONFIG_READONLY=1,
    `RO <i> no` if it runs without it, `RO <i> -` if no gateway process was found."""
    lines = []
    for i, (unit, port) in enumerate(targets):
        find = "p=0"
        if unit:
            find = f"p=$(systemctl show -p MainPID --value -- {q(unit)} 2>/dev/null || echo 0)"
        # `ss` prints the listener's name (which the user chooses) before its pid: the last pid= is the real one
        lines += [
            find,
            f'case $p in ""|0|*[!0-9]*) p=$(ss -Hltnp {q(f"sport = :{port}")} 2>/dev/null '
            "| sed -n 's/.*pid=\\([0-9][0-9]*\\).*/\\1/p' | head -n 1) ;; esac",
            f'if [ -z "$p" ] || [ ! -r "/proc/$p/environ" ]; then echo "{READONLY} {i} -"; '
            f"elif tr '\\000' '\\n' <\"/proc/$p/environ\" | grep -qx 'OPENCLAW_CONFIG_READONLY=1'; then "
            f'echo "{READONLY} {i} yes"; else echo "{READONLY} {i} no"; fi',
        ]
    return sh_script(lines, errexit=False)


def parse_readonly(text: str, count: int) -> list[str]:
    """One of yes / no / - per target ("?" if the script did not say)."""
    out = ["?"] * count
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == READONLY and parts[1].isdigit() and parts[2] in ("yes", "no", "-"):
            i = int(parts[1])
            if i < count:
                out[i] = parts[2]
    return out
