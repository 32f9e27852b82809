"""Commands as values: every command sent to a host is built here from argument tuples and quoted in one place."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """An argv to run on a host; `sudo` wraps it with non-interactive sudo when the transport needs root."""

    argv: tuple[str, ...]

    def __init__(self, *argv: str) -> None:
        if not argv:
            raise ValueError("empty command")
        for a in argv:
            if not isinstance(a, str):
                raise TypeError(f"command argument must be str, got {type(a).__name__}")
            if "\x00" in a:
                raise ValueError("NUL byte in command argument")
        object.__setattr__(self, "argv", tuple(argv))

    def shell(self) -> str:
        """The one place argv becomes shell text: every argument quoted."""
        return " ".join(shlex.quote(a) for a in self.argv)

    def __str__(self) -> str:
        return self.shell()


def q(arg: str) -> str:
    """Quote one argument for inclusion in a generated shell script."""
    if "\x00" in arg:
        raise ValueError("NUL byte in shell argument")
    return shlex.quote(arg)


def join(argv: Sequence[str]) -> str:
    return Command(*argv).shell()


def with_sudo(argv: Sequence[str]) -> tuple[str, ...]:
    # -n: never prompt; a password prompt would hang an unattended run, so fail with a clear error instead
    return ("sudo", "-n", "--", *argv)
