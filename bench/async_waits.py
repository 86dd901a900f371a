"""The event loop stays responsive while coroutines of a cairn.AsyncStore wait (issue 22):
a heartbeat task sleeping 1 ms records the longest gap between its ticks while 50 coroutines
wait on a lock a sync Store holds, on a rate limit, and on a durable run another attempt holds;
also how many tries of the lock the 50 waiters made (they queue in memory: one polls).

    target/py-venv/bin/python bench/async_waits.py [PATH_OR_POSTGRES_URL]

Without an argument, a store in a temporary directory. Prints one line per wait.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable, List

import cairn
import cairn._aio_lock as aio_lock

WAITERS = 50
HELD = 1.0  # seconds the lock and the run are held while the waiters wait


async def beat(stop: asyncio.Event, gaps: List[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def measured(what: str, body: Callable[[], Awaitable[str]]) -> None:
    stop = asyncio.Event()
    gaps: List[float] = []
    hb = asyncio.create_task(beat(stop, gaps))
    note = await body()
    stop.set()
    await hb
    gaps.sort()
    print(
        f"{what}: heartbeat max gap {gaps[-1] * 1000:.1f} ms, p99 {gaps[int(len(gaps) * 0.99)] * 1000:.1f} ms "
        f"({len(gaps)} ticks){note}"
    )


async def main(location: str) -> None:
    tries = [0]
    real_try = aio_lock._try

    def counting(*args: Any) -> Any:
        tries[0] += 1
        return real_try(*args)

    aio_lock._try = counting
    sync = cairn.Store(location)
    try:
        async with cairn.AsyncStore(location) as store:

            async def lock_wait() -> str:
                held = sync.lock("bench-hot", timeout=0)
                assert held.acquire()

                async def waiter() -> None:
                    async with store.lock("bench-hot", timeout=60):
                        pass

                waiters = [asyncio.create_task(waiter()) for _ in range(WAITERS)]
                await asyncio.sleep(HELD)
                polled = tries[0]
                held.release()
                await asyncio.gather(*waiters)
                return f"; {polled} tries in {HELD:g} s held, {tries[0]} with the {WAITERS} takes"

            async def limit_wait() -> str:
                lim = store.limiter("bench-limit", f"{WAITERS}/s")
                start = time.perf_counter()
                await asyncio.gather(*[lim.acquire() for _ in range(WAITERS)])
                return f"; {WAITERS} slots at {WAITERS}/s took {time.perf_counter() - start:.2f} s"

            async def run_wait() -> str:
                with sync.run("bench-run"):

                    async def waiter() -> None:
                        async with store.run("bench-run", wait=60):
                            pass

                    waiters = [asyncio.create_task(waiter()) for _ in range(WAITERS)]
                    await asyncio.sleep(HELD)
                await asyncio.gather(*waiters)
                return ""

            await measured(f"{WAITERS} waiting on a held lock", lock_wait)
            await measured(f"{WAITERS} waiting on a rate limit", limit_wait)
            await measured(f"{WAITERS} waiting on a held run", run_wait)
    finally:
        sync.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(main(os.path.join(d, "state.db")))
