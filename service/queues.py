"""Bounded queues with a named policy when full, and counters for every drop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class FullPolicy(StrEnum):
    """What ``put`` does when the queue is full."""

    BLOCK = "block"  # wait for room: backpressure upstream
    DROP_OLDEST = "drop-oldest"  # evict the oldest item, keep the new one
    DROP_NEWEST = "drop-newest"  # discard the new item


class BoundedQueue(Generic[T]):
    """An asyncio queue of at most ``maxsize`` items; ``dropped`` counts every loss.

    ``weigh`` (optional) gives an item's weight (a packet's events):
    ``dropped_weight`` sums the weights of the dropped items.
    """

    def __init__(self, maxsize: int, policy: FullPolicy | str = FullPolicy.BLOCK,
                 weigh: Callable[[T], int] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be at least 1, not {maxsize}")
        self.policy = FullPolicy(policy)
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self.put_count = 0
        self.dropped = 0
        self.dropped_weight = 0
        self.high_water = 0
        self._weigh = weigh

    def _drop(self, item: T) -> None:
        self.dropped += 1
        if self._weigh is not None:
            self.dropped_weight += self._weigh(item)

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    def qsize(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()

    async def put(self, item: T) -> bool:
        """Enqueue ``item`` by the policy; False when an item was dropped."""
        kept = True
        if self._queue.full():
            if self.policy is FullPolicy.BLOCK:
                await self._queue.put(item)
                self._counted()
                return True
            if self.policy is FullPolicy.DROP_NEWEST:
                self._drop(item)
                return False
            self._drop(self._queue.get_nowait())
            self._queue.task_done()
            kept = False
        self._queue.put_nowait(item)
        self._counted()
        return kept

    def put_nowait(self, item: T) -> bool:
        """Like ``put`` for the dropping policies; BLOCK counts a drop instead of waiting."""
        if self._queue.full():
            if self.policy is FullPolicy.DROP_OLDEST:
                self._drop(self._queue.get_nowait())
                self._queue.task_done()
                self._queue.put_nowait(item)
                self._counted()
                return False
            self._drop(item)
            return False
        self._queue.put_nowait(item)
        self._counted()
        return True

    def _counted(self) -> None:
        self.put_count += 1
        self.high_water = max(self.high_water, self._queue.qsize())

    async def get(self) -> T:
        return await self._queue.get()

    def get_nowait(self) -> T:
        return self._queue.get_nowait()

    def task_done(self) -> None:
        self._queue.task_done()

    async def join(self) -> None:
        await self._queue.join()

    def stats(self) -> dict[str, object]:
        return {
            "depth": self.qsize(),
            "capacity": self.maxsize,
            "policy": str(self.policy),
            "dropped": self.dropped,
            "dropped_weight": self.dropped_weight,
            "high_water": self.high_water,
        }
