"""Terminal styling that honours --no-color, NO_COLOR and non-terminals."""

from __future__ import annotations

import os
import sys
from typing import TextIO


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO, no_color: bool = False) -> Style:
        enabled = not no_color and "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()
        return cls(enabled)

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def red(self, t: str) -> str:
        return self._wrap("31", t)

    def green(self, t: str) -> str:
        return self._wrap("32", t)

    def yellow(self, t: str) -> str:
        return self._wrap("33", t)

    def cyan(self, t: str) -> str:
        return self._wrap("36", t)

    def bold(self, t: str) -> str:
        return self._wrap("1", t)

    def dim(self, t: str) -> str:
        return self._wrap("2", t)


def stderr_style(no_color: bool = False) -> Style:
    return Style.for_stream(sys.stderr, no_color)
