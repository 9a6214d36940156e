"""Structured logs (structlog) for the gateway's own records and the standard library's.

Logs carry correlation ids, partner names and delivery ids — never identity numbers, names,
phone numbers or credentials. Three rules keep it so, whatever the level and the renderer:

* tracebacks are plain text without frame locals: rich's pretty tracebacks (structlog's default
  when ``rich`` is installed) print every local, i.e. whole cases and the admin token;
* database drivers, SQLAlchemy and zeep are pinned at WARNING (aiosqlite logs each statement
  with its parameters at DEBUG, zeep each SOAP envelope), and a handler filter drops their lower
  records even if someone lowers the level again;
* every event — ours and foreign stdlib records — passes :func:`gateway.observability.redaction.redact_event`
  last, after the exception has been formatted.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable
from typing import Any

import structlog

from gateway.observability.redaction import add_secrets, redact_event, scrub

# Loggers that print SQL parameters or whole messages below WARNING (zeep's transports log every
# SOAP envelope at DEBUG, WS-Security header included).
QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "zeep")
_NOISY = ("aiohttp.access", "alembic")


class _DriverFilter(logging.Filter):
    """Drops records below WARNING from the database loggers, whatever their level says."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(QUIET_LOGGERS)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose failure report names the logger, not the raw message and
    arguments (the standard ``handleError`` prints both, unredacted, to stderr)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if logging.raiseExceptions and sys.stderr:
            exc = sys.exc_info()[1]
            text = scrub("".join(traceback.format_exception_only(exc)).strip()[:300])
            sys.stderr.write(f"--- logging error in {record.name}: {text}\n")


def configure(level: str = "INFO", *, json: bool = False) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,  # correlation id, delivery id, partner
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # plain traceback text, no locals
        redact_event,                          # last: sees the message and the traceback text
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json
        else structlog.dev.ConsoleRenderer(colors=False,
                                           exception_formatter=structlog.dev.plain_traceback))
    handler = _Handler(sys.stderr)
    handler.addFilter(_DriverFilter())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in (*_NOISY, *QUIET_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        # a line below the logger's level is dropped before any processor runs (a busy intake
        # at WARNING spent ~6 % of its time building case events nobody would see)
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def protect_secrets(settings: Any) -> None:
    """Redact the configured credentials, inbound secrets, callers' tokens and the admin token
    literally from every later log line (patterns cannot recognise an arbitrary secret)."""
    values: list[str | None] = [settings.server.admin_token]
    for p in settings.partners.values():
        values.extend(p.credentials.values())
        if p.inbound is not None:  # what partners present when they call the gateway
            values.extend([p.inbound.auth_code, p.inbound.password])
    values.extend(c.token for c in getattr(settings, "callers", {}).values())  # x-tif callers
    values.extend(_url_password(settings.database.url))
    add_secrets(values)


def _url_password(url: str) -> Iterable[str | None]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        return [make_url(url).password]
    except ArgumentError:  # an unparsable URL fails later, with its own message
        return []
