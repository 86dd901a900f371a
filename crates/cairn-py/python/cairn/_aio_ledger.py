"""The ledger and work queue of an :class:`AsyncStore`: :class:`AsyncLedger` and
:class:`AsyncClaim`.

Calls that do not wait run on the store's shared workers, like the cache's. Calls that wait
for work (``claim_next(wait=...)``, ``claims(wait=...)``, ``wait_drained``) run the library's
own blocking wait (woken by other processes' commits, not polling) on a leased lane, with a
stop flag that a cancelled task sets: the lane's thread is back within the library's 100 ms
slice, and a claim taken meanwhile is given back without spending an attempt.

One thread per waiting coroutine would not scale (a thousand coroutines waiting on an empty
queue), so only one coroutine per (store, namespace) waits in the library at a time; the others
queue behind it on an ``asyncio.Lock``, on the loop, costing nothing. When the one in the
library gets an item it returns it and the next in line enters the library, whose first step
is a claim: a burst of items reaches the queued coroutines one lane call each. Before queueing,
every waited call first tries a claim on the shared workers, so that workers of a busy queue
never line up behind each other.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import weakref
from collections.abc import Set as AbstractSet
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _cairn
from ._aio_runner import Lane, RunnerClosed
from ._ledger import (
    DEFAULT_LEASE,
    Claim,
    Item,
    ItemState,
    Ledger,
    LedgerCounts,
    LedgerPolicy,
    QueueItem,
    _limit,
    _wait_seconds,
    default_worker,
)
from ._types import Duration, Id
from .errors import ClosedError, InvalidInputError, LeaseLostError, NothingDueError

if TYPE_CHECKING:
    from ._aio_store import AsyncStore, AsyncTransaction

I = TypeVar("I", bound=Id)  # noqa: E741 - the ids' own type comes back from filter_new
T = TypeVar("T")

_CLOSED = "the store is closed; open a new cairn.AsyncStore to use the file again"


def _ids(ids: Iterable[Any]) -> Any:
    """`ids` as given if it can be read from another thread as it is (a list, a str the sync
    code refuses with its own message...), else its items in a list: an iterator of the caller's
    runs on the loop's thread, not a worker's."""
    if isinstance(ids, (str, bytes, Sequence, AbstractSet, dict)):
        return ids
    return list(ids)


async def _until_done(fut: "asyncio.Future[Any]") -> None:
    """Wait for `fut` to end, whatever cancellations this task receives meanwhile."""
    while not fut.done():
        try:
            await asyncio.wait({fut})
        except asyncio.CancelledError:
            continue


async def _taken(
    fut: "asyncio.Future[T]",
    give_back: Callable[[T], Optional["asyncio.Future[Any]"]],
    stop: Optional[threading.Event] = None,
) -> T:
    """The result of `fut`, a call that may take something (claims). If this task is cancelled
    first, the call is told to `stop` (a wait in the library) and awaited to its end, what it
    took is given back (`give_back` returns the future of that call, awaited too), and the
    cancellation is raised: the task leaves nothing held, and what it leaves is known when
    its ``CancelledError`` arrives."""
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if stop is not None:
            stop.set()
        await _until_done(fut)
        if not fut.cancelled() and fut.exception() is None:
            back = give_back(fut.result())
            if back is not None:
                await _until_done(back)
                if not back.cancelled():
                    back.exception()  # best effort: a lease frees it anyway; retrieved, not logged
        raise


# One lock per (store, namespace, kind of wait), on the loop that made it: who waits in the
# library. Weak on the store, so that a store dropped without close leaves nothing here.
_wait_locks: "weakref.WeakKeyDictionary[AsyncStore, Dict[Tuple[str, str], Tuple[asyncio.AbstractEventLoop, asyncio.Lock]]]" = (
    weakref.WeakKeyDictionary()
)


def _wait_lock(astore: AsyncStore, kind: str, ns: str) -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    locks = _wait_locks.setdefault(astore, {})
    held = locks.get((kind, ns))
    if held is None or held[0] is not loop:
        held = (loop, asyncio.Lock())
        locks[(kind, ns)] = held
    return held[1]


async def _acquire(lock: asyncio.Lock, timeout: Optional[float]) -> bool:
    """Take `lock` within `timeout` seconds (None: no limit); False if it stayed held. A
    cancellation never leaves the lock taken (asyncio.wait_for could, before 3.12)."""
    if timeout is None or not lock.locked():
        await lock.acquire()
        return True
    if timeout <= 0:
        return False
    task = asyncio.ensure_future(lock.acquire())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        if task.done() and not task.cancelled():
            lock.release()
        else:
            task.cancel()  # a cancelled Lock.acquire never takes the lock
        raise
    if done:
        return True
    task.cancel()
    return False


class AsyncLedger:
    """One namespace of the ledger and work queue, from :meth:`AsyncStore.ledger` (each call
    its own transaction) or :meth:`AsyncTransaction.ledger` (calls join the transaction): the
    methods of :class:`Ledger` as coroutines, with the same ids, states, values and errors.

    Waits never block the loop: ``await ledger.claim_next(wait="30s")``, ``async for claim in
    ledger.claims(wait="5m")`` and ``await ledger.wait_drained()`` are woken within
    milliseconds of another process's commit, and a cancelled wait gives back a claim it took
    meanwhile, without spending an attempt.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         urls = store.ledger("urls")
    ...         await urls.enqueue(["a", "b"])
    ...         async for claim in urls.claims(lease=60):
    ...             async with claim:          # completed when the block succeeds
    ...                 pass                   # crawl claim.id
    ...         return await urls.filter_new(["a", "b", "c"])
    >>> asyncio.run(main())
    ['c']
    """

    __slots__ = ("_astore", "_txn", "_ns", "_h", "_policy")

    def __init__(
        self,
        astore: AsyncStore,
        txn: Optional[AsyncTransaction],
        ns: str,
        max_attempts: Optional[int] = None,
        retry_delay: Optional[Duration] = None,
    ) -> None:
        # Checked now, as the sync handle does; written (a read and maybe a write) on the first
        # call, off the loop.
        if max_attempts is not None:
            if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
                raise TypeError(f"max_attempts must be an int, not {type(max_attempts).__name__}")
            max_attempts = _limit(max_attempts, "max_attempts", 2**32 - 1)
        if retry_delay is not None:
            _cairn.duration_seconds(retry_delay, "a retry delay")
        self._astore = astore
        self._txn = txn
        self._ns = ns
        self._policy: Optional[Tuple[Optional[int], Optional[Duration]]] = (
            None if max_attempts is None and retry_delay is None else (max_attempts, retry_delay)
        )
        self._h: Optional[Ledger] = None
        if self._policy is None:
            store = astore._sync
            self._h = txn._tx().ledger(ns) if txn is not None else None if store is None else store.ledger(ns)

    @property
    def namespace(self) -> str:
        """The namespace's name."""
        return self._ns

    # ---- running calls --------------------------------------------------------------------

    async def _handle(self) -> Ledger:
        """The sync handle the calls run on: made on the first call when the store was not
        open yet, or when a policy was given (keeping it reads the store)."""
        h = self._h
        if h is not None:
            return h
        txn, ns, policy = self._txn, self._ns, self._policy
        if policy is None:
            made = txn._tx().ledger(ns) if txn is not None else (await self._astore._store()).ledger(ns)
        else:
            m, d = policy
            if txn is not None:
                tx = txn._tx()
                made = await txn._submit(lambda: tx.ledger(ns, max_attempts=m, retry_delay=d))
            else:
                store = await self._astore._store()
                made = await self._astore._submit(lambda: store.ledger(ns, max_attempts=m, retry_delay=d))
        self._h = made
        return made

    def _run(self, fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        txn = self._txn
        return (txn._submit if txn is not None else self._astore._submit)(fn, args)

    async def _later(self, method: str, *args: Any) -> Any:
        """A call made before the handle was made: once it is, as usual."""
        h = await self._handle()
        return await self._run(getattr(h, method), *args)

    def _call(self, method: str, *args: Any) -> Awaitable[Any]:
        h = self._h
        if h is None:
            return self._later(method, *args)
        return self._run(getattr(h, method), *args)

    def _give_back(self, claims: Union[None, Claim, List[Claim]]) -> Optional["asyncio.Future[Any]"]:
        """Release what a cancelled call claimed, on a worker (outside the transaction rules:
        the task that made the call is gone)."""
        if claims is None:
            return None
        many = claims if isinstance(claims, list) else [claims]
        if not many:
            return None
        txn = self._txn

        def release() -> None:
            for c in many:
                try:
                    c.release()
                except Exception:  # noqa: BLE001 - best effort: the lease frees it anyway
                    pass

        try:
            if txn is not None:
                return txn._submit(release)
            return self._astore._runner.submit(release)
        except (RunnerClosed, InvalidInputError):
            return None

    async def _claiming(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` (a sync call that returns a claim, claims or None), given back if this
        task is cancelled before it has it."""
        return await _taken(self._run(fn, *args), self._give_back)

    # ---- policy ---------------------------------------------------------------------------

    def policy(self) -> Awaitable[LedgerPolicy]:
        """The namespace's policy as kept in the store (``None`` where the default applies)."""
        return self._call("policy")

    def set_policy(self, max_attempts: Optional[int] = None, retry_delay: Optional[Duration] = None) -> Awaitable[None]:
        """Keep the namespace's policy in the store, as :meth:`Ledger.set_policy`."""
        return self._call("set_policy", max_attempts, retry_delay)

    async def max_attempts(self) -> int:
        """How many attempts give an item up (:attr:`Ledger.max_attempts`; a coroutine here,
        since it reads the store)."""
        stored = (await self.policy()).max_attempts
        return _cairn.DEFAULT_MAX_ATTEMPTS if stored is None else stored

    async def retry_delay(self) -> float:
        """The base of a failed item's backoff in seconds (:attr:`Ledger.retry_delay`; a
        coroutine here)."""
        stored = (await self.policy()).retry_delay
        return _cairn.DEFAULT_RETRY_DELAY if stored is None else stored

    # ---- done or not ----------------------------------------------------------------------

    def len(self) -> Awaitable[int]:
        """How many items the ledger knows, in every state (``len(ledger)`` of the sync one)."""
        return self._call("__len__")

    def contains(self, id: object) -> Awaitable[bool]:
        """True if `id` is done (``id in ledger`` of the sync one)."""
        return self._call("__contains__", id)

    def __aiter__(self) -> AsyncIterator[str]:
        """``async for id in ledger``: the ids the ledger knows, in id order, a page at a time."""
        return self._ids()

    async def _ids(self) -> AsyncIterator[str]:
        after: Optional[str] = None
        while True:
            page = await self.list(after=after, limit=500)
            for item in page:
                yield item.id
            if len(page) < 500:
                return
            after = page[-1].id

    def filter_new(self, ids: Iterable[I]) -> Awaitable[List[I]]:
        """The ids that still need work, in input order, as the very objects given."""
        return self._call("filter_new", _ids(ids))

    async def each(self, ids: Iterable[I]) -> AsyncIterator[I]:
        """``async for id in ledger.each(ids):`` the ids that still need work, each marked done
        when the loop body for it finishes: an exception, a cancellation or a ``break`` leaves
        it undone."""
        for id in await self.filter_new(ids):
            yield id
            await self.mark_done(id)

    def mark_done(self, id: Id, result: Any = None) -> Awaitable[bool]:
        """Record `id` as done, with an optional small `result`; True if this call did it."""
        return self._call("mark_done", id, result)

    def mark_done_many(self, ids: Iterable[Id]) -> Awaitable[int]:
        """Record many ids as done in one transaction; how many were newly done."""
        return self._call("mark_done_many", _ids(ids))

    def is_done(self, id: Id) -> Awaitable[bool]:
        """True if `id` is done."""
        return self._call("is_done", id)

    def result(self, id: Id, default: Any = None) -> Awaitable[Any]:
        """The result recorded with a done item, or `default`."""
        return self._call("result", id, default)

    def item(self, id: Id) -> Awaitable[Optional[Item]]:
        """Everything recorded about `id`, or None if it was never seen."""
        return self._call("item", id)

    def fail(self, id: Id, error: Union[str, BaseException]) -> Awaitable[ItemState]:
        """Record a failure of `id` (:meth:`Ledger.fail`); its new state."""
        return self._call("fail", id, error)

    # ---- the queue ------------------------------------------------------------------------

    def enqueue(
        self,
        ids: Iterable[Id],
        *,
        delay: Optional[Duration] = None,
        not_before: Optional[Union[datetime.datetime, str]] = None,
        priority: int = 0,
        group: Optional[str] = None,
    ) -> Awaitable[int]:
        """Queue ids for :meth:`claim_next`, as :meth:`Ledger.enqueue`; how many were queued."""
        ids = _ids(ids)
        h = self._h
        if h is None:
            return self._later_enqueue(ids, delay, not_before, priority, group)
        return self._run(lambda: h.enqueue(ids, delay=delay, not_before=not_before, priority=priority, group=group))

    async def _later_enqueue(self, ids: Any, delay: Any, not_before: Any, priority: int, group: Any) -> int:
        h = await self._handle()
        n: int = await self._run(
            lambda: h.enqueue(ids, delay=delay, not_before=not_before, priority=priority, group=group)
        )
        return n

    def enqueue_items(self, items: Iterable[QueueItem]) -> Awaitable[int]:
        """Queue :class:`QueueItem` objects in one transaction, as :meth:`Ledger.enqueue_items`."""
        return self._call("enqueue_items", _ids(items))

    def retry(self, ids: Iterable[Id]) -> Awaitable[int]:
        """Put given-up (or cancelled) items back in the queue (:meth:`Ledger.retry`)."""
        return self._call("retry", _ids(ids))

    def retry_all_failed(self) -> Awaitable[int]:
        """:meth:`retry` every given-up item of the namespace; how many."""
        return self._call("retry_all_failed")

    def prune_done(self, older_than: Duration) -> Awaitable[int]:
        """Delete the items done more than `older_than` ago (:meth:`Ledger.prune_done`)."""
        return self._call("prune_done", older_than)

    async def claim(self, id: Id, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None) -> Optional[AsyncClaim]:
        """Claim `id` for `lease`; None if it is done, given up, or held by a live worker."""
        h = self._h if self._h is not None else await self._handle()
        name = worker or default_worker()
        c = await self._claiming(lambda: h.claim(id, lease=lease, worker=name))
        return None if c is None else AsyncClaim(self, c)

    async def claim_next(
        self, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None, wait: Optional[Duration] = 0
    ) -> Optional[AsyncClaim]:
        """Claim the next item for `lease`, as :meth:`Ledger.claim_next`; None if nothing is
        due. With `wait` (a duration; None: no limit) it waits up to that long for one, never
        blocking the loop: woken within milliseconds of another process's enqueue, a retry or
        delayed item coming due, a lease running out or a pause ending. A cancelled wait gives
        back a claim it took meanwhile (no attempt spent).

        >>> claim = await queue.claim_next(lease="5m", wait="30s")  # doctest: +SKIP
        """
        wait_s = _wait_seconds(wait)
        h = self._h if self._h is not None else await self._handle()
        # The worker's name is the loop thread's (host:pid:thread), not the worker thread's.
        name = worker or default_worker()
        if wait_s == 0 or self._txn is not None:
            # Inside a transaction a wait is refused by the library, with its message.
            c = await self._claiming(lambda: h.claim_next(lease=lease, worker=name, wait=wait_s))
            return None if c is None else AsyncClaim(self, c)
        loop = asyncio.get_running_loop()
        deadline = None if wait_s is None else loop.time() + wait_s
        # First a claim on the shared workers: on a busy queue nobody lines up.
        c = await self._claiming(lambda: h.claim_next(lease=lease, worker=name))
        if c is not None:
            return AsyncClaim(self, c)
        lock = _wait_lock(self._astore, "claim", self._ns)
        if not await _acquire(lock, None if deadline is None else deadline - loop.time()):
            return None
        try:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            raw = await self._in_library(
                lambda stop: h._src._conn().ledger_claim_next_wait(self._ns, name, lease, left, 0, stop),
                lambda raw: self._give_back(None if raw is None else Claim(h, raw)),
            )
        finally:
            lock.release()
        return None if raw is None else AsyncClaim(self, Claim(h, raw))

    async def _in_library(self, wait: Callable[[Callable[[], bool]], T], give_back: Callable[[T], Any]) -> T:
        """`wait(stop)`, a blocking wait of the library, on a lane of its own; a cancelled
        task sets the stop flag (asked every 100 ms) and gives back what the wait took."""
        from ._aio_store import _current_tx

        tx = _current_tx.get()
        if tx is not None and tx._open:
            raise InvalidInputError(
                "invalid input: a wait of the store's own ledger cannot run inside `async with "
                "store.transaction() as tx`: the transaction's write lock would keep every other "
                "process from the changes it waits for; wait outside the block"
            )
        astore = self._astore
        try:
            lane: Lane = astore._runner.lane()
        except RunnerClosed:
            raise ClosedError(_CLOSED) from None
        stop = threading.Event()

        def stopped() -> bool:
            # Also when the store is closing: its close waits for this lane's connection.
            return stop.is_set() or astore._closed

        try:
            result: T = await _taken(lane.submit(wait, (stopped,)), give_back, stop)
        except RunnerClosed:
            raise ClosedError(_CLOSED) from None
        finally:
            lane.release()
        if astore._closed and not result:
            raise ClosedError(_CLOSED)  # the wait was stopped by close(), not by its limit
        return result

    def wait_drained(self, timeout: Optional[Duration] = None) -> Awaitable[bool]:
        """Wait until no item of the namespace is pending or claimed (:meth:`Ledger.wait_drained`),
        without blocking the loop: True once drained, False if `timeout` passed first."""
        return self._wait_drained(_wait_seconds(timeout))

    async def _wait_drained(self, timeout: Optional[float]) -> bool:
        h = self._h if self._h is not None else await self._handle()
        if self._txn is not None:
            refused: bool = await self._run(h.wait_drained, timeout)  # refused, with its message
            return refused
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        # First a look on the shared workers (a zero wait does not block): drained already, or
        # no time to wait, answers without a lane.
        drained: bool = await self._run(h.wait_drained, 0)
        if drained or timeout == 0:
            return drained
        lock = _wait_lock(self._astore, "drain", self._ns)
        if not await _acquire(lock, None if deadline is None else deadline - loop.time()):
            return False
        try:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            return await self._in_library(
                lambda stop: h._src._conn().ledger_wait_drained(self._ns, left, 0, stop), lambda _: None
            )
        finally:
            lock.release()

    async def take(self, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None) -> AsyncClaim:
        """Claim the next item, or raise :class:`NothingDueError` when none is due (the form
        for ``async with await ledger.take():``)."""
        claim = await self.claim_next(lease=lease, worker=worker)
        if claim is None:
            raise NothingDueError(
                f"nothing is due in ledger {self._ns!r}: it is empty, or its items are claimed by"
                " other workers or not due yet; ledger.claim_next() returns None instead, and"
                " `async for claim in ledger.claims(wait=...)` waits for items"
            )
        return claim

    async def claim_next_many(
        self, n: int, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None
    ) -> List[AsyncClaim]:
        """Claim up to `n` items at once (:meth:`Ledger.claim_next_many`)."""
        _limit(n, "n", 2**32 - 1)
        h = self._h if self._h is not None else await self._handle()
        name = worker or default_worker()
        cs = await self._claiming(lambda: h.claim_next_many(n, lease=lease, worker=name))
        return [AsyncClaim(self, c) for c in cs]

    async def claims(
        self, *, lease: Duration = DEFAULT_LEASE, wait: Optional[Duration] = 0, worker: Optional[str] = None
    ) -> AsyncIterator[AsyncClaim]:
        """The worker loop, as :meth:`Ledger.claims`: claim items one at a time until none is
        due (with `wait`: until none came within `wait` of the last one), settling each.

        >>> async for claim in ledger.claims(worker="w1", lease=60, wait="5m"):  # doctest: +SKIP
        ...     async with claim:
        ...         await crawl(claim.id, claim.data)

        ``async with claim:`` completes the item when the block succeeds; an ``Exception``
        records the failure and the loop goes on; a cancellation (or ``KeyboardInterrupt``,
        ``SystemExit``) releases it without spending an attempt and ends the loop. A claim the
        body did not settle is completed when the loop moves on, and when the loop ends on it,
        released if its task was cancelled, else recorded as failed.
        """
        wait_s = _wait_seconds(wait)
        while True:
            claim = await self.claim_next(lease=lease, worker=worker, wait=wait_s)
            if claim is None:
                return
            claim._in_loop = True
            owner = asyncio.current_task()
            try:
                yield claim
            except GeneratorExit:
                if not claim._settled:
                    try:
                        if owner is not None and (owner.cancelled() or getattr(owner, "cancelling", lambda: 0)()):
                            await claim.release()
                        else:
                            await claim.fail("the worker loop ended before the item was settled")
                    except LeaseLostError:
                        pass
                raise
            if not claim._settled:
                await claim.complete()

    async def complete_many(self, claims: Sequence[AsyncClaim]) -> List[bool]:
        """Complete several claims at once, each fenced on its own (:meth:`Ledger.complete_many`)."""
        sync = []
        for c in claims:
            if not isinstance(c, AsyncClaim):
                raise TypeError(f"complete_many takes AsyncClaim objects, not {type(c).__name__}")
            sync.append(c._c)
        h = self._h if self._h is not None else await self._handle()
        done: List[bool] = await self._run(h.complete_many, sync)
        return done

    async def held_claim(self, id: Id, worker: str) -> Optional[AsyncClaim]:
        """The claim `worker` holds on `id`, for a process that did not make it; None if it
        holds none."""
        h = self._h if self._h is not None else await self._handle()
        c = await self._run(h.held_claim, id, worker)
        return None if c is None else AsyncClaim(self, c)

    def counts(self) -> Awaitable[LedgerCounts]:
        """How many items stand where."""
        return self._call("counts")

    def cancel(self, id: Id) -> Awaitable[bool]:
        """Cancel `id` (:meth:`Ledger.cancel`): never handed out again unless retried."""
        return self._call("cancel", id)

    def cancel_many(self, ids: Iterable[Id]) -> Awaitable[int]:
        """:meth:`cancel` several items, all or none; how many this call cancelled."""
        return self._call("cancel_many", _ids(ids))

    def pause(
        self, for_: Optional[Duration] = None, until: Optional[Union[datetime.datetime, str]] = None
    ) -> Awaitable[None]:
        """Pause the namespace (:meth:`Ledger.pause`): no claims handed out for `for_`, until
        `until`, or until :meth:`resume`."""
        return self._call("pause", for_, until)

    def resume(self) -> Awaitable[bool]:
        """End a pause; True if it was paused."""
        return self._call("resume")

    def is_paused(self) -> Awaitable[bool]:
        """Whether the namespace is paused now."""
        return self._call("is_paused")

    def paused_until(self) -> Awaitable[Optional[datetime.datetime]]:
        """When the pause ends (UTC); None if not paused or paused until :meth:`resume`."""
        return self._call("paused_until")

    def list(
        self, state: Optional[Union[ItemState, str]] = None, after: Optional[str] = None, limit: int = 100
    ) -> Awaitable[List[Item]]:
        """A page of items in id order, after the id `after`, only those in `state` if given."""
        return self._call("list", state, after, limit)

    def delete(self, id: Id) -> Awaitable[bool]:
        """Forget `id` entirely; True if it was known."""
        return self._call("delete", id)

    def clear(self) -> Awaitable[int]:
        """Forget every item of the namespace; how many."""
        return self._call("clear")

    def __repr__(self) -> str:
        return f"<cairn.AsyncLedger {self._ns!r}>"


class AsyncClaim:
    """A worker's hold on an item, from :meth:`AsyncLedger.claim_next` and friends: the
    properties of :class:`Claim`, and its methods as coroutines.

    ``async with claim:`` settles it: :meth:`complete` when the block succeeds, :meth:`fail`
    when it raises an ``Exception`` (which propagates, except in the loop of
    :meth:`AsyncLedger.claims`), and :meth:`release` (no attempt spent) when the task is
    cancelled or the block raises ``KeyboardInterrupt`` or ``SystemExit``. The settling call
    runs to its end even if the task is cancelled meanwhile. A claim taken over meanwhile
    raises :class:`LeaseLostError` from :meth:`complete`.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         queue = store.ledger("emails")
    ...         await queue.enqueue(["msg-1"])
    ...         claim = await queue.take(lease="5m")
    ...         async with claim:
    ...             await claim.extend("10m")  # a heartbeat for slow work
    ...         return (await queue.counts()).done
    >>> asyncio.run(main())
    1
    """

    __slots__ = ("_ledger", "_c")

    def __init__(self, ledger: AsyncLedger, claim: Claim) -> None:
        self._ledger = ledger
        self._c = claim

    @property
    def id(self) -> str:
        """The item's id."""
        return self._c.id

    @property
    def worker(self) -> str:
        """The worker holding it."""
        return self._c.worker

    @property
    def token(self) -> int:
        """The fencing token, bumped by every claim of the item."""
        return self._c.token

    @property
    def lease_until(self) -> datetime.datetime:
        """When the lease runs out (UTC)."""
        return self._c.lease_until

    @property
    def attempt(self) -> int:
        """Which attempt this is: 1 the first time, 2 after one failure..."""
        return self._c.attempt

    @property
    def data(self) -> Any:
        """What the item carries for its worker, with its type; None if nothing."""
        return self._c.data

    @property
    def _settled(self) -> bool:
        return self._c._settled

    @property
    def _in_loop(self) -> bool:
        return self._c._in_loop

    @_in_loop.setter
    def _in_loop(self, value: bool) -> None:
        self._c._in_loop = value

    def complete(self, result: Any = None) -> Awaitable[None]:
        """Record the item done, with an optional result; :class:`LeaseLostError` (recording
        nothing) if another worker claimed it since."""
        return self._ledger._run(self._c.complete, result)

    def fail(self, error: Union[str, BaseException]) -> Awaitable[ItemState]:
        """Record a failure (:meth:`Claim.fail`); the item's new state."""
        return self._ledger._run(self._c.fail, error)

    def release(self) -> Awaitable[None]:
        """Give the item back without spending an attempt: pending again at once."""
        return self._ledger._run(self._c.release)

    def snooze(self, delay: Duration) -> Awaitable[None]:
        """Give the item back due after `delay`, its attempts unchanged; the claim ends."""
        return self._ledger._run(self._c.snooze, delay)

    def extend(self, lease: Duration) -> Awaitable[None]:
        """Push the lease to `lease` from now (a heartbeat); :class:`LeaseLostError` if
        another worker claimed the item since."""
        return self._ledger._run(self._c.extend, lease)

    async def __aenter__(self) -> AsyncClaim:
        """The claim itself; the end of the block settles it."""
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Complete after a normal exit; record a failure after an ``Exception``; release after
        a cancellation or another ``BaseException``. The call runs to its end even if the task
        is cancelled meanwhile (its cancellation is raised after)."""
        from ._aio_runner import finish

        c = self._c
        swallow = c._in_loop and isinstance(exc, Exception)
        if c._settled:
            return swallow
        if exc is None:
            await finish(self._ledger._run(c.complete, None))
            return False
        try:
            if isinstance(exc, Exception):
                await finish(self._ledger._run(c.fail, exc))
            else:
                await finish(self._ledger._run(c.release))
        except LeaseLostError:
            pass  # another worker has the item now; the block's own exception matters
        return swallow

    def __repr__(self) -> str:
        return f"<cairn.AsyncClaim {self.id!r} by {self.worker!r} token {self.token}>"
