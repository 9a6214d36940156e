"""gateway/gctuning.py: the collector's settings while a gateway runs, and back after it."""

from __future__ import annotations

import asyncio
import gc

from gateway.gctuning import tuned_gc


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_tuned_gc_freezes_raises_the_threshold_and_restores_both() -> None:
    before = gc.get_threshold()
    async with tuned_gc(50_000, 0):
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_freeze_count() > 0  # what was alive at start is not walked again
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_threshold_zero_changes_nothing() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    async with tuned_gc(0, 0.01):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == frozen


async def test_cyclic_garbage_is_collected_by_the_periodic_collection() -> None:
    """With a threshold no test allocates up to, only the periodic full collection can free a
    reference cycle: it must, or a long run's memory would grow."""
    freed = asyncio.Event()

    async with tuned_gc(10_000_000, 0.05):
        c = _Cycle()
        import weakref
        ref = weakref.ref(c, lambda _: freed.set())
        del c
        assert ref() is not None  # a cycle: reference counting alone cannot free it
        await asyncio.wait_for(freed.wait(), 5)
