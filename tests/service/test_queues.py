import asyncio

import pytest

from spikegate.service.queues import BoundedQueue, FullPolicy


async def test_drop_newest_keeps_the_old_and_counts() -> None:
    q: BoundedQueue[int] = BoundedQueue(2, FullPolicy.DROP_NEWEST)
    assert [await q.put(i) for i in range(4)] == [True, True, False, False]
    assert q.dropped == 2
    assert [q.get_nowait(), q.get_nowait()] == [0, 1]


async def test_drop_oldest_keeps_the_new_and_counts() -> None:
    q: BoundedQueue[int] = BoundedQueue(2, FullPolicy.DROP_OLDEST)
    for i in range(5):
        await q.put(i)
    assert q.dropped == 3 and q.qsize() == 2
    assert [q.get_nowait(), q.get_nowait()] == [3, 4]
    assert q.put_count == 5 and q.high_water == 2


async def test_block_waits_for_room_and_drops_nothing() -> None:
    q: BoundedQueue[int] = BoundedQueue(1, FullPolicy.BLOCK)
    await q.put(0)
    waiter = asyncio.create_task(q.put(1))
    await asyncio.sleep(0)
    assert not waiter.done()
    assert q.get_nowait() == 0
    await waiter
    assert q.get_nowait() == 1 and q.dropped == 0


def test_put_nowait_under_block_counts_instead_of_waiting() -> None:
    async def scenario() -> None:
        q: BoundedQueue[int] = BoundedQueue(1, "block")
        assert q.put_nowait(1) and not q.put_nowait(2)
        assert q.dropped == 1
    asyncio.run(scenario())


def test_bad_size_and_policy_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BoundedQueue(0)
    with pytest.raises(ValueError):
        BoundedQueue(1, "drop-sometimes")
