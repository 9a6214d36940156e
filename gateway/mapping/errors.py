"""Errors raised while *rendering* or *validating* a mapped message.

Load-time problems are ``gateway.errors.ConfigError`` (file, line, reason). Render-time problems
come from the data (an untranslatable code, a malformed date) and cannot be fixed by sending the
same message again, so they are :class:`~gateway.errors.PermanentError` subclasses: the worker
parks the delivery for an operator instead of retrying it.
"""

from __future__ import annotations

from gateway.errors import FieldProblem, PermanentError


class MappingError(PermanentError):
    """The source data cannot be mapped (names the target path and the reason)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message=f"{path}: {message}" if path else message)
        self.path = path


class OutputInvalid(MappingError):
    """The mapped message does not satisfy the partner schema; one problem per failing path."""

    def __init__(self, mapping: str, problems: list[FieldProblem]) -> None:
        listed = "; ".join(f"{p.path}: {p.message}" for p in problems)
        super().__init__(f"output of {mapping} violates the partner schema: {listed}")
        self.problems = problems
