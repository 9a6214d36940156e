"""Asking a partner about one case: the status query every partner contract offers, as data.

Two callers need it. The poller (:mod:`gateway.statuses.poller`) asks about delivered cases no
callback spoke of lately; the worker asks before resending a case whose previous send has an
unknown outcome (the instance died mid-send, or the send timed out after the request was written):
a partner that has the case must not get it twice, even one that does not dedupe.

A partner's ``status_query`` block (``partners.<name>.status_query`` in the configuration) says
how its style asks: the operation or path, the request field that names the case by receipt and
the one that names it by idempotency key, and which business codes mean *found*, *not found*
(an answer, not an error: the partner holds no such case) and *try again*. Each protocol style
builds its query from that block (:data:`gateway.protocols.STATUS_QUERY_FACTORIES`); no partner
has Python of its own.

Every answer is a :class:`StatusAnswer`: ``found`` with the partner's document (a ``dict`` for a
JSON partner, the lxml element an inbound XML mapping reads for a SOAP one) and the partner's
receipt; ``not_found``; or ``failed`` with the :class:`~gateway.outcome.Outcome` of the exchange
(it never raises for partner behaviour).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import Field, model_validator

from gateway.errors import ConfigError
from gateway.outcome import Outcome, OutcomeKind, receipt_problem
from gateway.protocols.options import StyleOptions, parse_options


@dataclass(frozen=True)
class CaseRef:
    """How the gateway can name a case to its partner: the partner's receipt, when a send was
    answered, and always the idempotency key the gateway sent it with."""

    idempotency_key: str
    receipt_no: str | None = None


class AnswerKind(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusAnswer:
    """What one status query learned (module docstring). ``code``/``message``: the partner's."""

    kind: AnswerKind
    document: Any = None
    receipt_no: str | None = None
    code: str | None = None
    message: str = ""
    outcome: Outcome | None = None

    @classmethod
    def found(cls, document: Any, receipt_no: str | None, *, code: str | None = None,
              message: str = "") -> StatusAnswer:
        # a receipt we could not store is no receipt (it would point at nothing later)
        if receipt_no is not None and receipt_problem(receipt_no) is not None:
            receipt_no = None
        return cls(AnswerKind.FOUND, document, receipt_no, code, message)

    @classmethod
    def not_found(cls, *, code: str | None = None, message: str = "") -> StatusAnswer:
        return cls(AnswerKind.NOT_FOUND, code=code, message=message)

    @classmethod
    def failed(cls, outcome: Outcome) -> StatusAnswer:
        return cls(AnswerKind.FAILED, code=outcome.partner_code, message=outcome.message,
                   outcome=outcome)


@runtime_checkable
class StatusQuery(Protocol):
    """Asks one partner about one case."""

    async def query_status(self, ref: CaseRef, *, correlation_id: str) -> StatusAnswer:
        """The partner's answer about ``ref`` (never raises for partner behaviour)."""
        ...


class StatusQueryOptions(StyleOptions):
    """What every style's ``status_query`` block says; the styles add where things are.

    ``receipt_request_field`` / ``key_request_field``: the request field naming the case by the
    partner's receipt / by the idempotency key of the submission (at least one; the receipt is
    used when known and configured). ``found_codes``, ``not_found_codes``, ``retryable_codes``:
    business codes; any other code is a permanent failure of the query. ``receipt_field``: where
    a found answer keeps the partner's receipt (what the worker records when it finds a case it
    was unsure it had sent). ``timeout``: seconds (default: the partner's).
    """

    receipt_request_field: str | None = None
    key_request_field: str | None = None
    found_codes: tuple[str, ...] = Field(min_length=1)
    not_found_codes: tuple[str, ...] = Field(min_length=1)
    retryable_codes: tuple[str, ...] = ()
    code_field: str = Field(min_length=1)
    message_field: str = Field(min_length=1)
    receipt_field: str = Field(min_length=1)
    timeout: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _names_a_case(self) -> StatusQueryOptions:
        if not (self.receipt_request_field or self.key_request_field):
            raise ValueError("name receipt_request_field or key_request_field (or both)")
        return self

    def naming(self, ref: CaseRef) -> tuple[str, str]:
        """(request field, value) naming ``ref``: by receipt when known and the contract takes
        one, else by the idempotency key; ``ValueError`` when the contract cannot name it."""
        if ref.receipt_no and self.receipt_request_field:
            return self.receipt_request_field, ref.receipt_no
        if self.key_request_field:
            return self.key_request_field, ref.idempotency_key
        raise ValueError("the partner's status query names a case by receipt only, and this "
                         "delivery has none")

    def answer(self, code: str | None, message: str, *, document: Any, receipt: str | None,
               http_status: int | None) -> StatusAnswer:
        """The answer a business ``code`` means (class docstring)."""
        key = "" if code is None else str(code).strip()
        if code is None or key == "":
            return StatusAnswer.failed(Outcome.retryable(
                f"malformed status answer: no {self.code_field or 'code (code_path)'}",
                http_status=http_status))
        if key in _norm(self.found_codes):
            return StatusAnswer.found(document, receipt, code=key, message=message)
        if key in _norm(self.not_found_codes):
            return StatusAnswer.not_found(code=key, message=message)
        text = f"status query: {message or 'partner code ' + key}"
        if key in _norm(self.retryable_codes):
            return StatusAnswer.failed(Outcome.retryable(text, partner_code=key,
                                                         http_status=http_status))
        return StatusAnswer.failed(Outcome.permanent(text, partner_code=key,
                                                     http_status=http_status))


QueryOptionsT = TypeVar("QueryOptionsT", bound=StatusQueryOptions)


def parse_block(model: type[QueryOptionsT], partner: str,
                block: Mapping[str, Any] | None) -> QueryOptionsT:
    """``partners.<name>.status_query`` validated into ``model``; ``ConfigError`` naming
    ``partners.<name>.status_query.<key>``."""
    try:
        return parse_options(model, partner, block or {})
    except ConfigError as e:
        raise block_error(partner, (e.key or "").rpartition(".options.")[2], e.reason) from None


def block_error(partner: str, key: str, reason: str) -> ConfigError:
    """A ``ConfigError`` naming a key of the partner's ``status_query`` block."""
    return ConfigError(reason, key=f"partners.{partner}.status_query" + (f".{key}" if key else ""))


def _norm(codes: Iterable[str | int]) -> frozenset[str]:
    return frozenset(str(c).strip() for c in codes)


def status_query_of(client: object) -> StatusQuery | None:
    """The status query a partner client carries (:func:`gateway.protocols.create_client` sets
    it from ``partners.<name>.status_query``), or None when the partner offers none."""
    query = getattr(client, "status_query", None)
    return query if isinstance(query, StatusQuery) else None


#: Failures that say the request never reached the partner: nothing is in doubt after them.
_NOT_SENT = ("DNS lookup failed", "connection failed (ClientConnector",
             "connection failed (ConnectionRefused", "invalid URL", "TLS certificate rejected",
             "not sent:")


def in_doubt(outcome: Outcome) -> bool:
    """Whether the partner may hold the case although this send did not say so: a retryable
    outcome with no business code and no HTTP status that is not a failure to connect (a
    timeout, a connection dropped while the reply was awaited), or a 2xx reply that could not be
    read (too large, malformed). A resend after such an outcome asks first when it can."""
    if outcome.kind is not OutcomeKind.RETRYABLE or outcome.partner_code is not None:
        return False
    if outcome.http_status is None:
        return not outcome.message.startswith(_NOT_SENT)
    return 200 <= outcome.http_status < 300


__all__ = ["AnswerKind", "CaseRef", "StatusAnswer", "StatusQuery", "StatusQueryOptions",
           "block_error", "in_doubt", "parse_block", "status_query_of"]
