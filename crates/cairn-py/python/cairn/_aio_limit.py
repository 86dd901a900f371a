"""Rate limits of an :class:`AsyncStore`: ``async with store.limiter("api", "10/s"):``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Optional, Tuple, Type, TypeVar

from ._aio_lock import Gate
from ._limit import check_args
from ._lock import _timeout_seconds
from ._types import Duration

if TYPE_CHECKING:
    from ._aio_store import AsyncStore
    from ._store import Store

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _take(store: Store, name: str, rate: str, burst: int) -> Optional[float]:
    """On a worker: None if a slot was taken, else the seconds until the next one frees."""
    return store._conn().limit_take(name, rate, burst)


class AsyncLimiter:
    """A rate limit shared by every process (and host) using the store, from
    :meth:`AsyncStore.limiter`: :class:`Limiter`'s guarantee and arguments, with every wait an
    ``await asyncio.sleep`` of the exact time until the next slot (on a
    :class:`~cairn.testing.ManualClock`, the clock is moved instead).

    ``async with lim:`` and a coroutine function decorated with ``@lim`` wait for a slot (as
    long as it takes); :meth:`acquire` waits up to a timeout, :meth:`try_acquire` not at all.
    A slot that could not be had at once is waited for in a queue of this store's waiters for
    the limit, in order: one of them at a time asks the database.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         api = store.limiter("api", "10/s", burst=2)
    ...         return [await api.try_acquire() for _ in range(3)]
    >>> asyncio.run(main())
    [True, True, False]
    """

    __slots__ = ("_astore", "_name", "_rate", "_burst")

    def __init__(self, astore: AsyncStore, name: str, rate: str, burst: int = 1) -> None:
        check_args(name, rate, burst)
        self._astore = astore
        self._name = name
        self._rate = rate
        self._burst = burst

    @property
    def name(self) -> str:
        """The limit's name."""
        return self._name

    @property
    def rate(self) -> str:
        """The rate, as given (``"10/s"``)."""
        return self._rate

    @property
    def burst(self) -> int:
        """How many slots may be taken at once after a quiet spell."""
        return self._burst

    async def _take(self, store: Store) -> Optional[float]:
        retry: Optional[float] = await self._astore._submit(_take, (store, self._name, self._rate, self._burst))
        return retry

    async def try_acquire(self) -> bool:
        """Take a slot if one is free now; False at once otherwise."""
        store = await self._astore._store()
        return await self._take(store) is None

    async def acquire(self, timeout: Optional[Duration] = None) -> bool:
        """Take a slot, waiting until one frees; False if none can be had within `timeout`
        (None or ``math.inf``: no limit; a duration, see :func:`cairn.parse_duration`). When
        the next slot is beyond the timeout, False comes at once rather than after waiting in
        vain. A cancelled wait has taken nothing (a slot taken as the cancellation arrived is
        spent: a slot is used when taken)."""
        wait = _timeout_seconds(timeout, "a limiter's timeout")
        store = await self._astore._store()
        clock = store._clock
        now: Callable[[], float] = time.monotonic if clock is None else clock.now
        deadline = None if wait is None else now() + wait
        retry = await self._take(store)
        if retry is None:
            return True
        if deadline is not None and now() + retry > deadline:
            return False
        gate = self._gate()
        # In line behind this store's other waiters for the limit (each of which takes a slot
        # before this one can): only the first asks the database.
        if not await gate.acquire(None if deadline is None else max(deadline - now(), 0.0)):
            return False
        try:
            while True:
                if clock is None:
                    await asyncio.sleep(retry)
                else:
                    clock.advance(max(retry, 0.001))
                    await asyncio.sleep(0)
                retry = await self._take(store)
                if retry is None:
                    return True
                if deadline is not None and now() + retry > deadline:
                    return False
        finally:
            gate.release()

    def _gate(self) -> Gate:
        gates: Dict[Tuple[str, str, int], Gate] = self._astore.__dict__.setdefault("_limit_gates", {})
        key = (self._name, self._rate, self._burst)
        gate = gates.get(key)
        if gate is None:
            gate = gates[key] = Gate(1)
        return gate

    async def __aenter__(self) -> AsyncLimiter:
        """Wait for a slot, as long as it takes."""
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Nothing to give back: a slot is used when taken."""

    def __call__(self, fn: F) -> F:
        """Decorate the coroutine function `fn` so that each call first waits for a slot. Plain
        functions are refused with ``TypeError`` (use the sync :class:`Limiter` for them)."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"an AsyncLimiter decorates coroutine functions (async def), not {fn!r}; "
                "for a plain function use store.sync.limiter(...)"
            )

        @functools.wraps(fn)
        async def limited(*args: Any, **kwargs: Any) -> Any:
            await self.acquire()
            return await fn(*args, **kwargs)

        return limited  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<cairn.AsyncLimiter {self._name!r} {self._rate} burst {self._burst}>"
