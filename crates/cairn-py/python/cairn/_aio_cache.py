"""The TTL cache and checkpoints of an :class:`AsyncStore`."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable, FrozenSet, Iterable, List, Mapping, Optional, Tuple, TypeVar, Union, overload

from ._aio_runner import Group, finish
from ._cache import _MISSING, Cache, CacheLimits, CacheStats, _check_key
from ._checkpoint import Checkpoint
from ._types import Duration
from .errors import InvalidInputError

if TYPE_CHECKING:
    from ._aio_store import AsyncStore, AsyncTransaction

T = TypeVar("T")

#: The (namespace, key) pairs whose value the current task is computing: one asked for again
#: from its own computation would wait for itself.
_filling: contextvars.ContextVar[FrozenSet[Tuple[str, str]]] = contextvars.ContextVar("cairn_filling", default=frozenset())


class _FillFailed(Exception):
    """The fill another task of this store made for a key failed: compute it yourself."""


async def _computed(compute: Callable[[], Any], ident: Tuple[str, str]) -> Any:
    """`compute()`'s value, awaited if it is awaitable, with `ident` marked as being filled."""
    token = _filling.set(_filling.get() | {ident})
    try:
        value = compute()
        if inspect.isawaitable(value):
            value = await value
        return value
    finally:
        _filling.reset(token)


def _retrieved(fut: "asyncio.Future[Any]") -> None:
    """Mark a fire-and-forget call's error as seen (it is best effort)."""
    if not fut.cancelled():
        fut.exception()


def _conn(h: Cache) -> Any:
    """The connection of the calling thread under the sync handle `h` (as its own calls find it)."""
    try:
        return h._holder.conn
    except AttributeError:
        return h._src._conn()


def _groups(h: Cache) -> Tuple[Group, Group]:
    """The get and the set of the store's handle `h` as :class:`Group` calls: a burst of them
    runs in one call of the extension on a worker (the sets committed together, each one all
    or nothing, one that fails failing alone)."""
    ns = h._ns

    def gets(calls: List[Tuple[Any, ...]]) -> List[Any]:
        # As the extension gives them: a value, `_MISSING` (the call's default) or an error.
        found: List[Any] = _conn(h).cache_get_each(ns, [c[0] for c in calls], _MISSING)
        return found

    def sets(calls: List[Tuple[Any, ...]]) -> List[Any]:
        done: List[Any] = _conn(h).cache_set_each(ns, calls)  # None, or a set's error
        return done

    return Group(("get", ns), h.get, gets, missing=_MISSING), Group(("set", ns), h.set, sets)


class _Forwarder:
    """What :class:`AsyncCache` and :class:`AsyncCheckpoint` share: a sync handle (`_h`) made
    when the store is open (else at the first call, once it is), and its methods run on the
    store's workers (or in the transaction's lane), each returning the future of its result."""

    __slots__ = ("_astore", "_txn", "_h")

    _astore: AsyncStore
    _txn: Optional[AsyncTransaction]
    _h: Any

    def _make(self, store: Any) -> Any:
        """The sync handle on the sync store (or transaction) `store`."""
        raise NotImplementedError

    def _bound(self, h: Any) -> None:
        """Called once the handle is made."""

    async def _handle(self) -> Any:
        h = self._h
        if h is None:
            h = self._h = self._make(await self._astore._store())
            self._bound(h)
        return h

    async def _later(self, method: str, *args: Any) -> Any:
        """A call made before the store was open: once it is, as usual."""
        h = await self._handle()
        return await self._run(getattr(h, method), *args)

    def _run(self, fn: Any, *args: Any) -> "asyncio.Future[Any]":
        txn = self._txn
        fut: "asyncio.Future[Any]" = (txn._submit if txn is not None else self._astore._submit)(fn, args)
        return fut

    def _call(self, method: str, *args: Any) -> Awaitable[Any]:
        """The handle's `method` with `args`, on a worker."""
        h = self._h
        if h is None:
            return self._later(method, *args)
        return self._run(getattr(h, method), *args)


class AsyncCache(_Forwarder):
    """One namespace of the TTL cache, from :meth:`AsyncStore.cache` (each call its own
    transaction) or :meth:`AsyncTransaction.cache` (calls join the transaction): the methods of
    :class:`Cache`, as coroutines, with the same values, TTLs and errors.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         c = store.cache("counters")
    ...         await c.incr("hits")
    ...         return await c.incr("hits", 2)
    >>> asyncio.run(main())
    3
    """

    __slots__ = ("_ns", "_get", "_set")

    def __init__(self, astore: AsyncStore, txn: Optional[AsyncTransaction], ns: str) -> None:
        self._astore = astore
        self._txn = txn
        self._ns = ns
        store = astore._sync
        # The sync handle the calls run on: made now when it can be (the usual case), else on
        # the first call, once the store is open.
        self._h: Optional[Cache] = txn._tx().cache(ns) if txn is not None else None if store is None else store.cache(ns)
        # What get and set run: outside transactions, groups (bursts batched on the workers).
        self._get: Any = None
        self._set: Any = None
        if self._h is not None:
            self._bound(self._h)

    def _bound(self, h: Cache) -> None:
        if self._txn is None:
            self._get, self._set = _groups(h)
        else:
            self._get, self._set = h.get, h.set

    @property
    def namespace(self) -> str:
        """The namespace's name."""
        return self._ns

    def _make(self, store: Any) -> Cache:
        h: Cache = store.cache(self._ns)
        return h

    def get(self, key: str, default: Any = None) -> Awaitable[Any]:
        """The value of `key` with its type, or `default` if missing or expired."""
        get = self._get
        if get is None:
            return self._later("get", key, default)
        txn = self._txn
        if txn is not None:
            return txn._submit(get, (key, default))
        return self._astore._submit_group(get, (key, default))

    def contains(self, key: str) -> Awaitable[bool]:
        """True if `key` holds a fresh value."""
        return self._call("__contains__", key)

    def len(self) -> Awaitable[int]:
        """How many fresh entries the namespace holds."""
        return self._call("__len__")

    def set(self, key: str, value: Any, ttl: Optional[Duration] = None) -> Awaitable[None]:
        """Store `value` under `key`, expiring after `ttl` (None: never)."""
        set_ = self._set
        if set_ is None:
            return self._later("set", key, value, ttl)
        txn = self._txn
        if txn is not None:
            return txn._submit(set_, (key, value, ttl))
        return self._astore._submit_group(set_, (key, value, ttl))

    def add(self, key: str, value: Any, ttl: Optional[Duration] = None) -> Awaitable[bool]:
        """Store `value` only if `key` holds no fresh value; True if stored."""
        return self._call("add", key, value, ttl)

    def delete(self, key: str) -> Awaitable[bool]:
        """Remove `key`; True if it was there."""
        return self._call("delete", key)

    def touch(self, key: str, ttl: Optional[Duration] = None) -> Awaitable[bool]:
        """Give a fresh `key` a new TTL; True if it was there."""
        return self._call("touch", key, ttl)

    def incr(self, key: str, by: int = 1, ttl: Optional[Duration] = None) -> Awaitable[int]:
        """Add `by` to the integer under `key` (missing: 0), atomically; the new value."""
        return self._call("incr", key, by, ttl)

    def decr(self, key: str, by: int = 1, ttl: Optional[Duration] = None) -> Awaitable[int]:
        """Subtract `by`, as :meth:`incr`."""
        return self._call("decr", key, by, ttl)

    def pop(self, key: str, default: Any = None) -> Awaitable[Any]:
        """Remove `key` and return its value (`default` if it held none), in one transaction."""
        return self._call("pop", key, default)

    def keys(self, prefix: str = "") -> Awaitable[List[str]]:
        """The fresh keys starting with `prefix`, sorted."""
        return self._call("keys", prefix)

    async def items(self) -> List[Tuple[str, Any]]:
        """The fresh entries, read in one transaction."""
        h = self._h if self._h is not None else await self._handle()
        result: List[Tuple[str, Any]] = await self._run(lambda: list(h.items()))
        return result

    def get_many(self, keys: Iterable[str], default: Any = None) -> Awaitable[List[Any]]:
        """The values of `keys` in order (`default` for each missing one), in one read."""
        return self._call("get_many", list(keys), default)

    async def set_many(
        self, items: Union[Mapping[str, Any], Iterable[Tuple[str, Any]]], ttl: Optional[Duration] = None
    ) -> None:
        """Store every pair in one transaction, with the same `ttl`."""
        h = self._h if self._h is not None else await self._handle()
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        await self._run(h.set_many, pairs, ttl)

    def sweep(self) -> Awaitable[int]:
        """Remove this namespace's expired entries; how many."""
        return self._call("sweep")

    def clear(self, prefix: Optional[str] = None) -> Awaitable[int]:
        """Remove every entry (or those whose key starts with `prefix`); how many."""
        return self._call("clear", prefix)

    def stats(self) -> Awaitable[CacheStats]:
        """Size and counters of the namespace."""
        return self._call("stats")

    def limits(self) -> Awaitable[CacheLimits]:
        """The namespace's size bounds."""
        return self._call("limits")

    async def set_limits(
        self, max_entries: Optional[int] = None, max_bytes: Optional[int] = None, eviction: str = "lrs"
    ) -> None:
        """Bound the namespace's size, as :meth:`Cache.set_limits`."""
        h = self._h if self._h is not None else await self._handle()
        await self._run(h.set_limits, max_entries, max_bytes, eviction)

    @overload
    async def get_or_set(
        self, key: str, compute: Callable[[], Awaitable[T]], ttl: Optional[Duration] = None
    ) -> T: ...

    @overload
    async def get_or_set(self, key: str, compute: Callable[[], T], ttl: Optional[Duration] = None) -> T: ...

    async def get_or_set(self, key: str, compute: Callable[[], Any], ttl: Optional[Duration] = None) -> Any:
        """The value of `key`; on a miss, ``compute()`` (a coroutine function, or a function
        returning an awaitable or a value), store its result with `ttl` and return it as
        stored (a tuple comes back as a list, as from any other process).

        Computed once across processes, tasks and threads: the first to miss computes; the
        others wait for its value, without blocking the loop (tasks of this store wait on the
        first one's result; other processes poll the store every 1 to 25 ms, as
        :meth:`Cache.get_or_set` does, and the two wait for each other). If `compute` raises,
        or its task is cancelled, nothing is stored, the marker is released at once, the
        exception propagates, and the next waiter computes. `compute` runs on the loop, in the
        calling task: give it an async function for slow work. Inside a transaction the value
        is simply computed and stored in it.

        >>> import asyncio, cairn
        >>> async def rate() -> float:
        ...     return 1.08                            # the slow call
        >>> async def main() -> object:
        ...     async with cairn.AsyncStore(":memory:") as store:
        ...         return await store.cache("fx").get_or_set("EUR", rate, ttl="10m")
        >>> asyncio.run(main())
        1.08
        """
        _check_key(key)
        if not callable(compute):
            raise TypeError(f"compute must be callable, not {type(compute).__name__}")
        astore = self._astore
        ident = (self._ns, key)
        if ident in _filling.get():
            raise InvalidInputError(
                f"invalid input: the value of key {key!r} in cache namespace {self._ns!r} was asked for again by "
                "its own computation (a get_or_set or memoized call for the same key inside its compute): it "
                "would wait for itself; compute the value without asking the cache for the same key"
            )
        txn = self._txn
        if txn is not None:
            h = txn._tx().cache(self._ns)
            found = await txn._submit(h.get, (key, _MISSING))
            if found is not _MISSING:
                return found
            value = await _computed(compute, ident)
            return await txn._submit(h.get_or_set, (key, lambda: value, ttl))
        fills = astore._fills
        # Tasks of this store asking for a key one of them is filling wait for its result: one
        # of them polls the store, not all.
        while (flight := fills.get(ident)) is not None:
            try:
                return await asyncio.shield(flight)
            except _FillFailed:
                continue  # its computation failed or was cancelled: the next one computes
        flight = asyncio.get_running_loop().create_future()
        fills[ident] = flight
        try:
            result = await self._fill(key, compute, ttl, ident)
        except BaseException:
            flight.set_exception(_FillFailed())
            flight.exception()  # retrieved: nobody may be waiting
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            if fills.get(ident) is flight:
                del fills[ident]

    async def _fill(self, key: str, compute: Callable[[], Any], ttl: Optional[Duration], ident: Tuple[str, str]) -> Any:
        """Compute once across processes: try, and wait (1 to 25 ms naps) while another
        process computes."""
        store = await self._astore._store()
        ns = self._ns
        again = False
        nap = 0.001

        def attempt(again: bool) -> Tuple[int, Any]:
            return store._conn().cache_fill_try(ns, key, again)

        def give_back(found: Tuple[int, Any]) -> None:
            if found[0] == 1:  # claimed as the task was cancelled
                store._conn().cache_fill_abandon(ns, found[1])

        while True:
            state, payload = await self._astore._submit(attempt, (again,), give_back)
            if state == 0:
                return payload
            if state == 1:
                claim = payload
                try:
                    value = await _computed(compute, ident)
                except BaseException:
                    # The marker goes at once (the next waiter computes); the abandon runs on
                    # a worker even if this task is cancelled again.
                    self._astore._submit(lambda: store._conn().cache_fill_abandon(ns, claim)).add_done_callback(_retrieved)
                    raise
                return await finish(
                    self._astore._submit(lambda: store._conn().cache_fill_complete(ns, claim, value, ttl))
                )
            again = True
            await asyncio.sleep(nap)
            nap = min(nap * 2, 0.025)

    def __repr__(self) -> str:
        return f"<cairn.AsyncCache {self._ns!r}>"


class AsyncCheckpoint(_Forwarder):
    """The checkpoint of one job, from :meth:`AsyncStore.checkpoint` or
    :meth:`AsyncTransaction.checkpoint`: :class:`Checkpoint`'s methods as coroutines."""

    __slots__ = ("_job",)

    def __init__(self, astore: AsyncStore, txn: Optional[AsyncTransaction], job: str) -> None:
        self._astore = astore
        self._txn = txn
        self._job = job
        store = astore._sync
        self._h: Optional[Checkpoint] = (
            txn._tx().checkpoint(job) if txn is not None else None if store is None else store.checkpoint(job)
        )

    @property
    def job(self) -> str:
        """The job's name."""
        return self._job

    def _make(self, store: Any) -> Checkpoint:
        h: Checkpoint = store.checkpoint(self._job)
        return h

    def get(self, default: Any = None) -> Awaitable[Any]:
        """The saved value, with its type, or `default`."""
        return self._call("get", default)

    def set(self, value: Any) -> Awaitable[None]:
        """Save `value`, replacing the previous one."""
        return self._call("set", value)

    def delete(self) -> Awaitable[bool]:
        """Remove the checkpoint; True if there was one."""
        return self._call("delete")

    def __repr__(self) -> str:
        return f"<cairn.AsyncCheckpoint {self._job!r}>"
