"""Named locks of an :class:`AsyncStore`: ``async with store.lock("nightly"):``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Deque, Dict, Optional, Tuple, Type, TypeVar

from . import _aio_runner
from ._aio_runner import _quietly
from ._lock import _timeout_seconds, held_error
from ._types import Duration
from .errors import InvalidInputError, LeaseLostError

if TYPE_CHECKING:
    from . import _cairn
    from ._aio_store import AsyncStore
    from ._store import Store

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
T = TypeVar("T")

#: What a try hands back: the held lock and its renewer, or None.
_Taken = Optional[Tuple["_cairn.HeldLock", Optional["_cairn.KeepAlive"]]]


def _try(store: Store, name: str, ttl: Duration, max: int, keep_alive: bool) -> _Taken:
    """On a worker: take a slot of the lock if one is free, with its renewer."""
    conn = store._conn()
    held = conn.lock_try(name, ttl, max)
    if held is None:
        return None
    renewer = None
    if keep_alive and not store._memory:
        try:
            renewer = conn.lock_keep_alive(held, ttl)
        except BaseException:
            conn.lock_release(held)
            raise
    return held, renewer


def _release(store: Store, taken: _Taken) -> bool:
    """On a worker: stop the renewer and release; LeaseLostError if the renewer lost it."""
    if taken is None:
        return False
    held, renewer = taken
    lost = None
    if renewer is not None:
        try:
            renewer.stop()
        except LeaseLostError as e:
            lost = e
    released = store._conn().lock_release(held)
    if lost is not None:
        raise lost
    return released


async def taking(
    astore: AsyncStore, fn: Callable[..., T], args: Tuple[Any, ...], give_back: Callable[[T], Any]
) -> T:
    """`fn(*args)` on a worker, for a call that takes something (a lock, a run): if this task
    is cancelled before it resumes with the result, the result is handed to `give_back` on a
    thread of its own. (The runner gives back a result that comes after the cancellation; this
    covers one that came first, its task cancelled before it could run again.)"""
    fut = astore._submit(fn, args, give_back)
    try:
        result: T = await fut
    except asyncio.CancelledError:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            threading.Thread(target=_quietly, args=(give_back, fut.result()), daemon=True).start()
        raise
    return result


class Gate:
    """A FIFO counting semaphore of the loop whose waits take a timeout, and whose permit,
    handed to a waiter that was cancelled meanwhile, goes on to the next (``asyncio.wait_for``
    around ``Semaphore.acquire`` can lose one on a cancellation). Its permit holders nap with
    :meth:`nap`, which :meth:`poke` cuts short (a release in this store: try again now)."""

    __slots__ = ("_free", "_waiters", "_napping")

    def __init__(self, permits: int) -> None:
        self._free = permits
        self._waiters: Deque[asyncio.Future[bool]] = deque()
        self._napping: "set[asyncio.Future[bool]]" = set()

    async def nap(self, seconds: float) -> None:
        """Sleep `seconds` on the loop, or until :meth:`poke`."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._napping.add(fut)
        timer = loop.call_later(seconds, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._napping.discard(fut)

    def poke(self) -> None:
        """Wake the permit holders' naps."""
        for fut in self._napping:
            if not fut.done():
                fut.set_result(True)

    def busy(self) -> bool:
        """True if an acquire would wait."""
        return self._free <= 0 or bool(self._waiters)

    async def acquire(self, timeout: Optional[float]) -> bool:
        """Take a permit, waiting up to `timeout` seconds (None: no limit); False if none came."""
        if not self.busy():
            self._free -= 1
            return True
        if timeout is not None and timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(fut)
        timer = None if timeout is None else loop.call_later(timeout, _expire, fut)
        try:
            got = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release()  # handed over as the cancellation came: to the next one
            raise
        finally:
            if timer is not None:
                timer.cancel()
            try:
                self._waiters.remove(fut)
            except ValueError:
                pass
        return got

    def release(self) -> None:
        """Give a permit back: to the longest waiter, else to the pool."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return
        self._free += 1


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


def _gate(astore: AsyncStore, name: str, max: int) -> Gate:
    """The queue of this store's waiters for lock `name` of `max` holders: only `max` of them
    try the database (a permit is held while trying and napping, not while holding the lock:
    a lock this store lost track of, expired, is still taken by the next in line); the others
    wait here, in memory. A release in this store wakes the ones napping."""
    gates: Dict[Tuple[str, int], Gate] = astore.__dict__.setdefault("_lock_gates", {})
    gate = gates.get((name, max))
    if gate is None:
        gate = gates[(name, max)] = Gate(max)
    return gate


class AsyncLock:
    """A named lock of an :class:`AsyncStore`, from :meth:`AsyncStore.lock`: :class:`Lock`'s
    semantics (not re-entrant, ``max=N`` holders, renewed by a thread of the library while
    held, :class:`LockHeldError` naming the holder, :class:`LeaseLostError` at the end of a
    block that lost it) with every wait on the event loop.

    The wait is a try on a thread of the store's, then a nap on the loop (2 ms doubling to
    100 ms, as :class:`Lock` naps; cut short when this store releases the lock) between tries.
    Coroutines of one store waiting for the same lock queue in memory: only `max` of them try
    the database at once, so fifty waiters cost what one does. Cancelling a task inside ``async with`` releases the lock; cancelling
    a waiting task leaves nothing held (a lock taken as the cancellation arrived is given
    back).

    It also decorates coroutine functions: each call holds a lock of its own.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         async with store.lock("nightly", ttl="10m", timeout=0):
    ...             holder = await store.lock_holder("nightly")
    ...         return holder is not None, await store.lock_holder("nightly")
    >>> asyncio.run(main())
    (True, None)
    """

    __slots__ = ("_astore", "_name", "_ttl", "_max", "_timeout", "_keep_alive", "_taken")

    def __init__(
        self,
        astore: AsyncStore,
        name: str,
        ttl: Duration,
        timeout: Optional[Duration],
        keep_alive: bool,
        max: int = 1,
    ) -> None:
        if isinstance(max, int) and not isinstance(max, bool) and max < 0:
            raise InvalidInputError(f"invalid input: a lock admits 1 or more holders at once; {max} was asked")
        self._astore = astore
        self._name = name
        self._ttl = ttl
        self._max = max
        self._timeout = _timeout_seconds(timeout)
        self._keep_alive = keep_alive
        self._taken: _Taken = None

    @property
    def name(self) -> str:
        """The lock's name."""
        return self._name

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and :meth:`release`."""
        return self._taken is not None

    async def acquire(self, timeout: Optional[Duration] = None) -> bool:
        """Take the lock, waiting up to `timeout` (0: not at all; ``math.inf``: without limit;
        None: the timeout given to :meth:`AsyncStore.lock`). True if it was taken."""
        if self._taken is not None:
            raise InvalidInputError(f"invalid input: this Lock object already holds {self._name!r}")
        wait = self._timeout if timeout is None else _timeout_seconds(timeout)
        store = await self._astore._store()
        deadline = None if wait is None else time.monotonic() + wait
        gate = _gate(self._astore, self._name, max(self._max, 1))
        gated = False
        try:
            if gate.busy() and wait == 0:
                # One try, as the sync lock makes: a waiter queued here may be napping
                # while the lock is free.
                return await self._try_once(store)
            if not await gate.acquire(None if deadline is None else max(deadline - time.monotonic(), 0.0)):
                return False
            gated = True
            nap = 0.002
            while True:
                if await self._try_once(store):
                    return True
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return False
                await gate.nap(nap if deadline is None else min(nap, deadline - now))
                nap = min(nap * 2, 0.1)
        finally:
            if gated:
                gate.release()

    async def _try_once(self, store: Store) -> bool:
        taken: _Taken = await taking(
            self._astore,
            _try,
            (store, self._name, self._ttl, self._max, self._keep_alive),
            functools.partial(_release, store),
        )
        if taken is None:
            return False
        self._taken = taken
        return True

    async def release(self) -> bool:
        """Release the lock. False if it had been taken over (or was not held);
        :class:`LeaseLostError` if the renewal found it lost. Runs to its end even if the task
        is cancelled meanwhile."""
        taken, self._taken = self._taken, None
        if taken is None:
            return False
        try:
            store = await self._astore._store()
            released: bool = await _aio_runner.finish(self._astore._submit(_release, (store, taken)))
        finally:
            _gate(self._astore, self._name, max(self._max, 1)).poke()  # the next in line: try now
        return released

    async def renew(self, ttl: Optional[Duration] = None) -> None:
        """Push the expiry to `ttl` (the lock's TTL when None) from now. :class:`LeaseLostError`
        if it expired and another process took it."""
        taken = self._taken
        if taken is None:
            raise InvalidInputError(f"invalid input: the lock {self._name!r} is not held by this Lock object")
        store = await self._astore._store()
        await self._astore._submit(lambda: store._conn().lock_renew(taken[0], self._ttl if ttl is None else ttl))

    async def __aenter__(self) -> AsyncLock:
        """Acquire within the lock's timeout, or raise :class:`LockHeldError` naming the
        holder."""
        if not await self.acquire():
            store = await self._astore._store()
            error = await self._astore._submit(held_error, (store, self._name, self._max, self._timeout))
            raise error
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Release (a cancellation included); raise :class:`LeaseLostError` if the lock was lost
        while held (unless the block raised)."""
        try:
            await self.release()
        except LeaseLostError:
            if exc is None:
                raise

    def __call__(self, fn: F) -> F:
        """Decorate the coroutine function `fn` so that each call runs holding the lock
        (:class:`LockHeldError` if it is not free within the timeout), a fresh acquisition per
        call."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"an AsyncStore's lock decorates coroutine functions (async def), not {fn!r}; "
                "for a plain function use store.sync.lock(...)"
            )

        @functools.wraps(fn)
        async def locked(*args: Any, **kwargs: Any) -> Any:
            async with AsyncLock(self._astore, self._name, self._ttl, self._timeout, self._keep_alive, self._max):
                return await fn(*args, **kwargs)

        return locked  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<cairn.AsyncLock {self._name!r} {'held' if self.held else 'not held'}>"


def holders_of(store: Store, name: str, max: Optional[int]) -> Any:
    """On a worker: :meth:`Store.lock_holder` (max None) or :meth:`Store.lock_holders`."""
    return store.lock_holder(name) if max is None else store.lock_holders(name, max)

