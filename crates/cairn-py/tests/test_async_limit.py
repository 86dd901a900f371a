"""AsyncStore limiters: the async twins of test_limit.py (on the manual clock where time
matters), the decorator for coroutine functions, waiters queued in memory, cancellation."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest

import cairn
import cairn._aio_limit as aio_limit
from cairn.testing import ManualClock

DEADLINE = 60.0


async def test_a_burst_is_taken_then_refused_until_the_next_slot(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    api = any_aclocked.limiter("api", "10/s", burst=3)
    assert [await api.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.099)
    assert not await api.try_acquire()
    clock.advance(0.001)
    assert await api.try_acquire()
    assert not await api.try_acquire()


async def test_acquire_waits_exactly_the_retry_after_or_gives_up_at_once(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    api = any_aclocked.limiter("api", "4/s")
    assert await api.acquire()
    before = clock.now()
    assert await api.acquire(timeout=0.2) is False, "the next slot is 250ms away"
    assert clock.now() == before, "no wait in vain"
    assert await api.acquire(timeout="250ms") is True
    assert clock.now() == pytest.approx(before + 0.25)
    async with api:
        pass
    assert clock.now() == pytest.approx(before + 0.5), "async with waits for the next slot"


async def test_a_decorated_coroutine_function_waits_for_a_slot_per_call(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    calls: List[float] = []

    @any_aclocked.limiter("api", "2/s")
    async def call(n: int) -> int:
        calls.append(clock.now())
        return n * 2

    assert [await call(i) for i in range(3)] == [0, 2, 4]
    assert [round(t - calls[0], 3) for t in calls] == [0.0, 0.5, 1.0]
    assert call.__name__ == "call"


async def test_a_plain_function_is_refused_by_the_async_decorator(astore: cairn.AsyncStore) -> None:
    def fetch() -> None:
        pass

    with pytest.raises(TypeError, match="coroutine functions"):
        astore.limiter("api", "1/s")(fetch)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "rate, says",
    [("0/s", "lets nothing through"), ("-1/s", "negative"), ("10/0s", "no period"), ("fast", "no '/'"),
     ("1/fortnight", "not a period"), ("1.5/s", "not a whole number")],
)
async def test_bad_rates_are_refused_when_the_limiter_is_made(astore: cairn.AsyncStore, rate: str, says: str) -> None:
    with pytest.raises(cairn.InvalidInputError, match=says):
        astore.limiter("api", rate)
    assert await astore.limiter("api", "1/h", burst=2).try_acquire(), "nothing was written"


async def test_bad_bursts_names_and_timeouts_are_refused(astore: cairn.AsyncStore) -> None:
    for burst in (0, -1, cairn._cairn.MAX_BURST + 1):
        with pytest.raises(cairn.InvalidInputError, match="burst is 1 to"):
            astore.limiter("api", "1/s", burst=burst)
    with pytest.raises(TypeError, match="burst must be an int"):
        astore.limiter("api", "1/s", burst=True)
    with pytest.raises(TypeError, match="rate must be text"):
        astore.limiter("api", 10)  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError, match="must not be empty"):
        astore.limiter("", "1/s")
    lim = astore.limiter("api", "1/s")
    with pytest.raises(cairn.InvalidInputError, match="a limiter's timeout of -1.0 seconds is negative"):
        await lim.acquire(timeout=-1)
    with pytest.raises(TypeError, match="timeout must be seconds"):
        await lim.acquire(timeout=[1])  # type: ignore[arg-type]


async def test_a_sync_store_and_an_async_one_share_the_limit(location: str, any_astore: cairn.AsyncStore) -> None:
    with cairn.Store(location) as sync:
        assert sync.limiter("api", "1/h").try_acquire()
        assert not await any_astore.limiter("api", "1/h").try_acquire()
        assert await any_astore.limiter("other", "1/h").try_acquire()
        assert not sync.limiter("other", "1/h").try_acquire()


async def test_other_tasks_run_while_one_waits(astore: cairn.AsyncStore) -> None:
    slow = astore.limiter("api", "5/s")
    assert await slow.try_acquire()
    ticks = 0
    stop = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    t = asyncio.create_task(tick())
    try:
        assert await slow.acquire(timeout=5)
    finally:
        stop.set()
        await t
    assert ticks > 10, "the loop was free while waiting"


async def test_many_waiters_queue_and_each_gets_a_slot_of_its_own(
    any_aclocked: cairn.AsyncStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    takes = 0
    real_take = aio_limit._take

    def counting_take(*args: Any) -> Any:
        nonlocal takes
        takes += 1
        return real_take(*args)

    monkeypatch.setattr(aio_limit, "_take", counting_take)
    api = any_aclocked.limiter("api", "10/s")
    start = clock.now()
    got: List[float] = []

    async def call() -> None:
        async with api:
            got.append(clock.now())

    await asyncio.wait_for(asyncio.gather(*[call() for _ in range(20)]), DEADLINE)
    assert len(got) == 20
    # 20 slots at 10/s: the last no earlier than 1.9 s after the first (the limit held).
    assert clock.now() - start >= 1.9 - 1e-6
    # Each tried once at once, then in line one at a time: about two tries each, not one per
    # waiter per slot (20 x 20).
    assert takes <= 20 + 2 * 20, takes


async def test_a_cancelled_wait_leaves_the_queue_usable(astore: cairn.AsyncStore) -> None:
    api = astore.limiter("api", "20/s")
    assert await api.try_acquire()
    waiters = [asyncio.create_task(api.acquire()) for _ in range(5)]
    await asyncio.sleep(0.01)
    for w in waiters:
        w.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert await asyncio.wait_for(api.acquire(timeout=5), DEADLINE) is True
