"""The gateway's one exception tree.

Foreign exceptions (aiohttp, SQLAlchemy and the database drivers, lxml, zeep, jsonschema) are
translated into these where they enter, with ``raise ... from``, so the worker, the HTTP layer and
the commands only ever handle ours::

    GatewayError
    ├── ConfigError            broken configuration, mapping or route table (found at load)
    ├── InputError             a caller sent something we refuse (names the field or line)
    │   ├── ValidationFailed   schema violations, one entry per failing JSON path
    │   ├── ConflictError      same application number, different body
    │   ├── NoRouteError       an item no route rule matches
    │   └── ParameterError     a header or query parameter (names each one)
    ├── NotFound               an id that does not exist
    ├── StoreError             the database failed or refused (gateway.store.db translates)
    └── DeliveryError          sending to a partner failed
        └── PermanentError     Sender faults, schema errors, business rejections

A send that may succeed later is not an exception: the protocol clients answer it with a
retryable :class:`gateway.outcome.Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Configuration (file, key, reason) that cannot be used. Raised at start-up or reload."""

    def __init__(self, reason: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        self.reason = reason
        self.file = file
        self.key = key
        self.line = line
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        keypart = f"{key}: " if key else ""
        super().__init__(f"{prefix}{keypart}{reason}")


@dataclass(frozen=True)
class FieldProblem:
    """One failing location in a caller's document (JSON pointer style path)."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class InputError(GatewayError):
    """The caller's input is refused; rendered as an RFC 9457 problem document."""

    status = 400
    title = "Bad request"
    type_ = "about:blank"

    def __init__(self, detail: str, problems: list[FieldProblem] | None = None) -> None:
        self.detail = detail
        self.problems = problems or []
        super().__init__(detail)

    def problem(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type_, "title": self.title, "status": self.status,
                               "detail": self.detail}
        if self.problems:
            doc["errors"] = [p.as_dict() for p in self.problems]
        return doc


class ValidationFailed(InputError):
    status = 422
    title = "Validation failed"
    type_ = "urn:gateway:problem:validation"


class ConflictError(InputError):
    status = 409
    title = "Conflict"
    type_ = "urn:gateway:problem:conflict"


class NoRouteError(InputError):
    status = 422
    title = "No route"
    type_ = "urn:gateway:problem:no-route"


@dataclass(frozen=True)
class ParameterProblem:
    """One refused header or query parameter, named the way OpenAPI does (``in`` and ``name``)."""

    where: str  # "header" | "query"
    name: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"in": self.where, "name": self.name, "message": self.message}


class ParameterError(InputError):
    """Headers or query parameters the caller must fix; the detail names each one."""

    type_ = "urn:gateway:problem:parameter"

    def __init__(self, problems: list[ParameterProblem]) -> None:
        self.parameters = problems
        super().__init__("; ".join(f"{p.where} {'parameter ' if p.where == 'query' else ''}"
                                   f"{p.name}: {p.message}" for p in problems))

    def problem(self) -> dict[str, Any]:
        doc = super().problem()
        doc["errors"] = [p.as_dict() for p in self.parameters]
        return doc


class NotFound(GatewayError):
    """An id that does not exist (404)."""


class StoreError(GatewayError):
    """The database could not do what the store asked: unreachable, a lost connection, a refused
    statement. The message names the operation and the error's class only (``store case:
    database error IntegrityError (UniqueViolationError)``): a driver's own text can quote the
    statement's values, i.e. case data, so it stays on ``__cause__`` and out of log lines."""

    def __init__(self, operation: str, error: str) -> None:
        self.operation = operation
        self.error = error
        super().__init__(f"{operation}: database error {error}")


@dataclass
class DeliveryError(GatewayError):
    """A send that did not succeed. ``partner_code`` and ``message`` are the partner's own."""

    message: str
    partner_code: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        code = f" [{self.partner_code}]" if self.partner_code else ""
        return f"{self.message}{code}"


class PermanentError(DeliveryError):
    """Sending the same message again cannot succeed; park it for an operator."""
