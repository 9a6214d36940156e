"""The keys in use against the keyring at start, and re-sealing every value with the newest key
(:mod:`gateway.store.sealing` explains sealing and the rotation these serve)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, Connection, Table, bindparam, select, type_coerce, update

from gateway.errors import ConfigError
from gateway.store import sealing
from gateway.store.models import backflow_records, cases, deliveries, inbound_cases, seal_keys
from gateway.store.repository import Store
from gateway.store.types import utcnow

#: the sealed columns: (table, column); each table is walked in the order of its one-column
#: string primary key (``id``, or ``rkey`` for back-flow records)
SEALED: tuple[tuple[Table, str], ...] = ((cases, "body"), (deliveries, "payload"),
                                        (inbound_cases, "body"), (backflow_records, "body"))


async def check_keys(store: Store) -> None:
    """At start: every key the database still uses must be in the keyring (else one line naming
    it); the keyring's newest key is recorded as in use before it seals anything."""
    keyring = sealing.active()
    async with store.db.read("read sealing keys") as conn:
        used = list((await conn.execute(select(seal_keys.c.kid).where(
            seal_keys.c.retired_at.is_(None)).order_by(seal_keys.c.first_used_at))).scalars())
    missing = [k for k in used if keyring is None or keyring.key(k) is None]
    if missing:
        raise ConfigError(
            f"values in the database are sealed with key {missing[0]!r}, which the keyring "
            f"does not hold" + ("" if keyring is not None else " (sealing is off: set "
                                f"{sealing.ENV_FILE})"), key=sealing.ENV_FILE)
    if keyring is not None and keyring.newest not in used:
        await _record(store, keyring.newest)


async def _record(store: Store, kid: str) -> None:
    ins = store._insert(seal_keys)  # noqa: SLF001 - the store's INSERT … ON CONFLICT
    async with store.db.write("record sealing key") as conn:
        await conn.execute(ins.values(kid=kid, first_used_at=utcnow(), retired_at=None)
                           .on_conflict_do_update(index_elements=[seal_keys.c.kid],
                                                  set_={"retired_at": None}))


@dataclass(frozen=True)
class Resealed:
    examined: int
    resealed: int
    retired: list[str]


def _reseal_batch(conn: Connection, *, table: Table, name: str, after: str, batch: int,
                  keyring: sealing.Keyring) -> tuple[str | None, int, int]:
    """One transaction: the next ``batch`` rows by primary key after ``after``; each value not
    sealed with the newest key written back (the column seals it). (last key, rows read,
    rewritten)."""
    column: Column[Any] = table.c[name]
    [pk] = table.primary_key.columns  # one string column: id, or rkey
    raw = type_coerce(column, JSON).label("raw")  # the stored document, not opened
    label = f"{table.name}.{name}"
    rows = conn.execute(select(pk.label("pk"), raw).where(pk > after)
                        .order_by(pk).limit(batch)).all()
    todo = [{"b_pk": r.pk, "b_value": (sealing.unseal(r.raw, label, keyring)
                                  if sealing.is_sealed(r.raw) else r.raw)}
            for r in rows if r.raw is not None and not (
                sealing.is_sealed(r.raw) and r.raw.get("kid") == keyring.newest)]
    if todo:
        conn.execute(update(table).where(pk == bindparam("b_pk"))
                     .values({name: bindparam("b_value", type_=column.type)}), todo)
    return (rows[-1].pk if rows else None), len(rows), len(todo)


async def reseal(store: Store, *, batch: int = 500) -> Resealed:
    """Seal every value not sealed with the newest key with it, ``batch`` rows a transaction;
    then retire every other key in ``seal_keys``. Needs sealing on (a keyring)."""
    keyring = sealing.active()
    if keyring is None:
        raise ConfigError(f"sealing is off: set {sealing.ENV_FILE} (or {sealing.ENV_KEYS})",
                          key=sealing.ENV_FILE)
    await check_keys(store)
    examined = resealed = 0
    for table, name in SEALED:
        after = ""
        while True:
            last, seen, done = await store.db.write_sync(
                f"reseal {table.name}.{name}",
                functools.partial(_reseal_batch, table=table, name=name, after=after,
                                  batch=batch, keyring=keyring))
            examined, resealed = examined + seen, resealed + done
            if last is None or seen < batch:
                break
            after = last
    async with store.db.write("retire sealing keys") as conn:
        retired = list((await conn.execute(
            update(seal_keys).where(seal_keys.c.kid != keyring.newest,
                                    seal_keys.c.retired_at.is_(None))
            .values(retired_at=utcnow()).returning(seal_keys.c.kid))).scalars())
    return Resealed(examined, resealed, sorted(retired))


__all__ = ["SEALED", "Resealed", "check_keys", "reseal"]
