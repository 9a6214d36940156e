"""The dialect's ``INSERT … ON CONFLICT``, compiled once by SQLAlchemy, not on every execution.

SQLAlchemy 2.0's dialect ``insert()`` (SQLite's and PostgreSQL's) opts out of the statement
cache: its ON CONFLICT clause has no cache key (``inherit_cache = False``; sqlalchemy/sqlalchemy
#10445, given one in 2.1). So every execution compiled the statement again: about 0.6 ms of
CPU on this project's reference machine, paid by every group commit of new cases and every
nonce claim, a quarter of what storing one case costs when cases arrive one at a time.

:func:`insert_for` is the store's one INSERT … ON CONFLICT factory. Its statements give the
clause the cache key SQLAlchemy 2.1 gives it: every attribute of the clause that shapes its SQL
(the conflict target, its WHERE, the SET list and the update's WHERE) is part of the key, and
the values bound inside the clause (a WHERE's moment) are taken from each statement as it is
executed, as for any cached statement. A clause holding what the key would not cover (a target
named by a string, a SET value that is not an SQL expression) leaves its statement as the
dialect made it: compiled per execution, as before. Tests compare the SQL and the parameters of
cached and freshly compiled statements (tests/test_upsert_cache.py). Drop this module with
SQLAlchemy 2.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import dml as pg_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.sql.visitors import InternalTraversal

_TARGET = [("inferred_target_elements", InternalTraversal.dp_clauseelement_list),
           ("inferred_target_whereclause", InternalTraversal.dp_clauseelement)]
_PG_TARGET = [("constraint_target", InternalTraversal.dp_string), *_TARGET]
_UPDATE = [("update_values_to_set", InternalTraversal.dp_dml_ordered_values),
           ("update_whereclause", InternalTraversal.dp_clauseelement)]


class _SqliteDoNothing(sqlite_dml.OnConflictDoNothing):
    _traverse_internals = _TARGET


class _SqliteDoUpdate(sqlite_dml.OnConflictDoUpdate):
    _traverse_internals = _TARGET + _UPDATE


class _PgDoNothing(pg_dml.OnConflictDoNothing):
    _traverse_internals = _PG_TARGET


class _PgDoUpdate(pg_dml.OnConflictDoUpdate):
    _traverse_internals = _PG_TARGET + _UPDATE


_KEYED: dict[type, type] = {
    sqlite_dml.OnConflictDoNothing: _SqliteDoNothing, sqlite_dml.OnConflictDoUpdate: _SqliteDoUpdate,
    pg_dml.OnConflictDoNothing: _PgDoNothing, pg_dml.OnConflictDoUpdate: _PgDoUpdate}


def _keyed(stmt: Any, uncached: type) -> Any:
    """``stmt`` after ``on_conflict_do_*``: its clause given a cache key, or ``stmt`` turned
    back into the dialect's own (uncached) insert when the key would not cover the clause."""
    clause = stmt._post_values_clause  # noqa: SLF001 - the clause on_conflict_do_* just set
    targets = clause.inferred_target_elements or ()
    sets = getattr(clause, "update_values_to_set", None) or ()
    if (any(not hasattr(t, "_gen_cache_key") for t in targets)
            or any(not hasattr(v, "_gen_cache_key") for _, v in sets)):
        stmt.__class__ = uncached
    else:
        clause.__class__ = _KEYED[type(clause)]
    return stmt


def _keyed_insert(base: Any) -> Any:
    """The dialect insert ``base`` with each ``on_conflict_do_*`` clause keyed by
    :func:`_keyed` (``base`` itself for a clause the key would not cover)."""

    class KeyedInsert(base):  # type: ignore[misc]
        inherit_cache = True

        def on_conflict_do_nothing(self, *args: Any, **kw: Any) -> Any:
            return _keyed(super().on_conflict_do_nothing(*args, **kw), base)

        def on_conflict_do_update(self, *args: Any, **kw: Any) -> Any:
            return _keyed(super().on_conflict_do_update(*args, **kw), base)

    return KeyedInsert


_SqliteInsert: Callable[[Table], Any] = _keyed_insert(sqlite_dml.Insert)
_PgInsert: Callable[[Table], Any] = _keyed_insert(pg_dml.Insert)


def insert_for(dialect_name: str) -> Callable[[Table], Any]:
    """The ``insert(table)`` of the engine named ``dialect_name`` (``postgresql`` or
    ``sqlite``), with ``on_conflict_do_nothing``/``on_conflict_do_update`` and ``excluded``
    as the dialect's, statements cached."""
    return _PgInsert if dialect_name == "postgresql" else _SqliteInsert
