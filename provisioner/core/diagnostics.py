"""Findings about the inventory, located in its source (`file:line:col`), and the error that carries them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceSpan:
    """Where a node of the inventory came from (1-based line and column)."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding about the inventory, located in its source."""

    severity: Severity
    message: str
    span: SourceSpan | None
    code: str = ""  # stable identifier of the rule, e.g. "port-overlap"
    related: tuple[SourceSpan, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        where = str(self.span) if self.span else "<inventory>"
        return f"{where}: {self.severity.value}: {self.message}"


class ProvisionError(Exception):
    """An error the user can act on; carries diagnostics when it comes from the inventory."""

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...] = ()) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics
