"""The garbage collector set for a long-running gateway process (``server.gc_*``).

CPython collects its youngest generation every 700 container allocations and, now and then, all
of them. A gateway process holds a few hundred thousand long-lived objects (the app, compiled
mappings and schemas, SQLAlchemy's caches) and allocates in bursts: a back-flow page is ~25,000
dicts, a batch of results a few thousand. With the interpreter's defaults those bursts set off
collections that walk the bursts and, every few seconds, the whole heap: 20 % of the back-flow
puller's CPU at 200,000 records (``bench/bench_backflow.py`` reports it as ``gc_seconds``).

So, once the process is built: everything alive is frozen (``gc.freeze``: never walked again),
the youngest generation is collected every ``gc_threshold`` allocations instead of 700, and a
full collection runs every ``gc_collect_every`` seconds, which bounds the cyclic garbage a
larger threshold lets stand (without it the back-flow process grew ~30 MiB over a million
records; with it, RSS stays flat). ``gc_threshold: 0`` leaves the interpreter's settings alone.

Objects are still freed by reference counting the moment they are unused; only reference
cycles wait for a collection."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

#: the older generations' thresholds, as CPython's defaults
_OLDER = (10, 10)


@contextlib.asynccontextmanager
async def tuned_gc(threshold: int, collect_every: float) -> AsyncIterator[None]:
    """Freeze what is alive, collect the youngest generation every ``threshold`` allocations
    and everything every ``collect_every`` seconds, while the block runs; the previous settings
    come back after it. ``threshold`` 0: nothing changes."""
    if threshold <= 0:
        yield
        return
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, *_OLDER)

    async def collect() -> None:
        while True:
            await asyncio.sleep(collect_every)
            gc.collect()
    task = asyncio.create_task(collect(), name="gc-collect") if collect_every > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        gc.set_threshold(*before)
        gc.unfreeze()


__all__ = ["tuned_gc"]
