"""Host-side scripts of `dedupe verify`, built from quoted words: facts, nonce, writability, race, deletion."""

from __future__ import annotations

from provisioner.remote.command import q, sh_script


def facts_script(d: str, user: str) -> str:
    """Is it a directory, what is mounted there, free space, and can the service user write to it."""
    return sh_script([
        f"d={q(d)}",
        'if [ -d "$d" ]; then echo "DIR 1"; else echo "DIR 0"; exit 0; fi',
        'echo "MNT $(findmnt -n -o TARGET,FSTYPE,SOURCE --target "$d" 2>/dev/null | head -n1)"',
        'echo "FREE $(df -Pk "$d" | awk \'NR==2{print $4}\')"',
        f"if id -u {q(user)} >/dev/null 2>&1; then",
        # the path stays one word from "$d": never pasted into the script's text
        f"  if runuser -u {q(user)} -- sh -c 'echo ok > \"$1\" && rm -f -- \"$1\"' - \"$d/.ocp-verify-write-$$\" "
        "2>/dev/null; "
        'then echo "WRITE 1"; else echo "WRITE 0"; fi',
        'else echo "WRITE nouser"; fi',
    ]).replace("set -eu\n", "set -u\n", 1)


def write_script(path: str, content: str) -> str:
    return sh_script([f"printf '%s\\n' {q(content)} > {q(path)}.tmp", f"mv -f -- {q(path)}.tmp {q(path)}",
                      "echo WROTE"])


def read_script(path: str) -> str:
    return sh_script([f"if [ -f {q(path)} ]; then echo \"READ $(head -c 200 {q(path)})\"; else echo MISSING; fi"])


def race_script(path: str, host: str, at_ms: int) -> str:
    """Wait until the same wall-clock instant on every host, then create one file exclusively (O_EXCL).

    Over sshfs the loser usually gets EPERM, not EEXIST: any failed exclusive create is a loss."""
    return sh_script([
        f"while [ \"$(date +%s%3N)\" -lt {at_ms} ]; do sleep 0.005; done",
        f"if ( set -C; printf '%s\\n' {q(host)} > {q(path)} ) 2>/dev/null; then echo WON; else echo LOST; fi",
    ]).replace("set -eu\n", "set -u\n", 1)


def remove_script(*paths: str) -> str:
    return sh_script([f"rm -f -- {' '.join(q(p) for p in paths)}", "echo REMOVED"])


def wait_gone_script(path: str, timeout_s: float) -> str:
    """Poll until the path is gone; prints how long that took in ms (or TIMEOUT)."""
    return sh_script([
        "start=$(date +%s%3N)",
        f"end=$((start + {int(timeout_s * 1000)}))",
        f"while [ -e {q(path)} ]; do",
        '  if [ "$(date +%s%3N)" -gt "$end" ]; then echo TIMEOUT; exit 0; fi',
        "  sleep 0.05",
        "done",
        'echo "GONE $(( $(date +%s%3N) - start ))"',
    ]).replace("set -eu\n", "set -u\n", 1)
