"""``INSERT … ON CONFLICT`` statements that SQLAlchemy compiles once, not on every execution.

SQLAlchemy 2.0's dialect ``insert()`` (SQLite's and PostgreSQL's) opts out of the statement
cache: its ON CONFLICT clause has no cache key (``inherit_cache = False``; sqlalchemy/sqlalchemy
#10445, given one in 2.1). So every execution compiled the statement again: about 0.6 ms of
CPU on this project's reference machine, paid by every group commit of new cases and every
nonce claim, a quarter of what storing one case costs when cases arrive one at a time.

:func:`cacheable` gives such a statement the cache key SQLAlchemy 2.1 gives it: every attribute
of the clause that shapes its SQL (the conflict target, its WHERE, the SET list and the update's
WHERE) is part of the key, and the values bound inside the clause (a WHERE's moment) are taken
from each statement as it is executed, as for any cached statement. Tests compare the SQL and
the parameters of cached and freshly compiled statements (tests/test_upsert_cache.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.dialects.postgresql import dml as pg_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.sql.visitors import InternalTraversal

S = TypeVar("S")

_TARGET = [("inferred_target_elements", InternalTraversal.dp_clauseelement_list),
           ("inferred_target_whereclause", InternalTraversal.dp_clauseelement)]
_UPDATE = [("update_values_to_set", InternalTraversal.dp_dml_ordered_values),
           ("update_whereclause", InternalTraversal.dp_clauseelement)]


class _SqliteInsert(sqlite_dml.Insert):
    inherit_cache = True


class _SqliteDoNothing(sqlite_dml.OnConflictDoNothing):
    _traverse_internals = _TARGET


class _SqliteDoUpdate(sqlite_dml.OnConflictDoUpdate):
    _traverse_internals = _TARGET + _UPDATE


class _PgInsert(pg_dml.Insert):
    inherit_cache = True


_PG_TARGET = [("constraint_target", InternalTraversal.dp_string), *_TARGET]


class _PgDoNothing(pg_dml.OnConflictDoNothing):
    _traverse_internals = _PG_TARGET


class _PgDoUpdate(pg_dml.OnConflictDoUpdate):
    _traverse_internals = _PG_TARGET + _UPDATE


_INSERTS: dict[type, type] = {sqlite_dml.Insert: _SqliteInsert, pg_dml.Insert: _PgInsert}
_CLAUSES: dict[type, type] = {
    sqlite_dml.OnConflictDoNothing: _SqliteDoNothing, sqlite_dml.OnConflictDoUpdate: _SqliteDoUpdate,
    pg_dml.OnConflictDoNothing: _PgDoNothing, pg_dml.OnConflictDoUpdate: _PgDoUpdate}


def cacheable(stmt: S) -> S:
    """``stmt`` (a finished dialect ``insert()``: its ON CONFLICT and RETURNING given) as a
    statement SQLAlchemy caches. Returned as it is when it holds anything the key would not
    cover: a conflict target given as a string, a SET value that is not an SQL expression."""
    ins_cls = _INSERTS.get(type(stmt))
    clause: Any = getattr(stmt, "_post_values_clause", None)
    clause_cls = _CLAUSES.get(type(clause)) if clause is not None else None
    if ins_cls is None or (clause is not None and clause_cls is None):
        return stmt
    if clause is not None:
        targets = getattr(clause, "inferred_target_elements", None) or ()
        sets = getattr(clause, "update_values_to_set", None) or ()
        if (any(not hasattr(t, "_gen_cache_key") for t in targets)
                or any(not hasattr(v, "_gen_cache_key") for _, v in sets)):
            return stmt
        clause.__class__ = clause_cls
    stmt.__class__ = ins_cls
    return stmt
