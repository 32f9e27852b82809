"""The one place a host script's header is written: every script the tool sends starts here."""

from __future__ import annotations

from collections.abc import Iterable


def sh_script(lines: Iterable[str], *, errexit: bool = True) -> str:
    """Join already-quoted shell lines into a script. Unset variables are always an error; with errexit the
    script stops at the first failing command, without it (a probe that reports what it finds, failures
    included) it goes on. `+e` is explicit, not just absent: a script may run after another in the same shell
    (`lock_then`), and must not inherit its `-e`."""
    return ("set -eu\n" if errexit else "set +e -u\n") + "\n".join(lines) + "\n"
