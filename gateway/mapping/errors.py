"""Errors raised while *rendering* or *validating* a mapped message.

Load-time problems are ``gateway.errors.ConfigError`` (file, line, reason). Render-time problems
come from the data (an untranslatable code, a malformed date) and cannot be fixed by sending the
same message again, so they are :class:`~gateway.errors.PermanentError` subclasses: the worker
parks the delivery for an operator instead of retrying it.

Each names where the data came from: ``located`` holds one
:class:`~gateway.mapping.locate.SourceProblem` per problem (target field, the source fields as
JSON pointers, what the partner wants in words), and the message says the same in one line, so a
dead letter and a 422 at intake both name the field of the case to change.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.errors import FieldProblem, PermanentError
from gateway.mapping.locate import SourceProblem


class MappingError(PermanentError):
    """The source data cannot be mapped (names the target path, the source field and why)."""

    def __init__(self, message: str, *, path: str | None = None,
                 located: Iterable[SourceProblem] = ()) -> None:
        self.reason = message
        self.path = path
        self.located: tuple[SourceProblem, ...] = tuple(located)
        super().__init__(message=self._compose())

    def _compose(self) -> str:
        text = f"{self.path}: {self.reason}" if self.path else self.reason
        sources = [s for p in self.located for s in p.sources]
        return text + (f" (source field {', '.join(sources)})" if sources else "")

    def locate(self, sources: tuple[str, ...], target: str | None = None) -> None:
        """Attach where the failing value came from (called once, by ``render``)."""
        if target is not None and self.path is None:
            self.path = target
        self.located = (SourceProblem(self.path or "", self.reason, sources),)
        self.message = self._compose()


class OutputInvalid(MappingError):
    """The mapped message does not satisfy the partner schema; one problem per failing path.

    ``problems`` name output locations (a JSON pointer, or a readable XPath such as
    ``/PACKAGE/DATA/RECORD[2]/SXBM``); ``located`` the same problems by target and source
    field."""

    def __init__(self, mapping: str, problems: list[FieldProblem],
                 located: Iterable[SourceProblem] = ()) -> None:
        located = tuple(located)
        listed = "; ".join(p.text() for p in located) if located else \
            "; ".join(f"{p.path}: {p.message}" for p in problems)
        super().__init__(f"output of {mapping} violates the partner schema: {listed}")
        self.located = located
        self.problems = problems

    def _compose(self) -> str:
        return self.reason
