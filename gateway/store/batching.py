"""Group commit: concurrent writers share one transaction, each answered after it committed.

Every write of the gateway is small (a case and its deliveries, an attempt's result) and costs
far less than the transaction around it: the write turn, the begin, a hop to the driver's thread
per statement, the commit and its fsync. Under load :class:`GroupCommit` gathers the writes that
arrive while a transaction is running and commits them together in the next one, so the cost of a
transaction is shared by everyone waiting for it. Nobody waits for a timer when the store is idle
(the first write goes at once); a write that arrives during a commit waits at most for that
commit to end. ``window`` adds an optional short wait to let a batch fill.

Durability is unchanged: :meth:`GroupCommit.submit` returns only once the transaction holding
the item has committed, and raises if it did not. A batch that fails as a whole (a value one
database refuses, a constraint nobody expected) is retried item by item, so one bad item fails
alone and the others are still committed.

A caller that gives up waiting (its request was cancelled) does not cancel the batch: the item is
committed or not with the others, and the caller's retry finds it (every write here is
idempotent by a natural key or fenced by a lease token).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("gateway.store")

#: A batch's committer: one result (or the exception for that item alone) per item, in order.
Committer = Callable[[Sequence[T]], Awaitable[Sequence["R | BaseException"]]]


class GroupCommit(Generic[T, R]):
    """Gathers concurrent items and hands them to ``commit`` in batches of up to ``max_batch``."""

    def __init__(self, commit: Committer[T, R], *, max_batch: int = 128, window: float = 0.0,
                 name: str = "write") -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit = commit
        self.max_batch = max_batch
        self.window = window
        self.name = name
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        #: batches committed and items in them, for metrics and tests
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Commit ``item`` with whatever else is waiting; its result once that has committed."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # a caller that stopped waiting never reads its failure: mark it read, no GC warning
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append((item, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"group-commit-{self.name}")
        # shielded: a cancelled caller leaves its item in the batch (see the module's docstring)
        return await asyncio.shield(fut)

    async def _flush(self) -> None:
        while self._queue:
            if self.window > 0 and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.window)
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                await self._run(batch)
            except asyncio.CancelledError:
                for _, fut in batch + self._queue:
                    if not fut.done():
                        fut.set_exception(RuntimeError(f"{self.name}: the store is closing"))
                self._queue = []
                raise

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results: Sequence[R | BaseException] = await self._commit(items)
        except Exception as e:  # noqa: BLE001 - the whole batch failed: find the item(s) why
            if len(batch) == 1:
                _settle(batch[0][1], e)
                return
            log.warning("%s: a batch of %d failed as a whole (%s); committing its items one by "
                        "one", self.name, len(batch), type(e).__name__)
            for one in batch:
                await self._run([one])
            return
        self.batches += 1
        self.items += len(batch)
        for (_, fut), res in zip(batch, results, strict=True):
            _settle(fut, res)


def _settle(fut: asyncio.Future[R], res: R | BaseException) -> None:
    if fut.done():  # only a cancelled shield's inner future is never cancelled: defensive
        return
    if isinstance(res, BaseException):
        fut.set_exception(res)
    else:
        fut.set_result(res)
