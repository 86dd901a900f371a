"""``cairn.AsyncStore``: the store for code written with async/await, never blocking the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
from types import TracebackType
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Type, TypeVar, overload

from . import _cairn
from ._aio_cache import AsyncCache, AsyncCheckpoint
from ._aio_job import AsyncJob
from ._aio_ledger import AsyncLedger
from ._aio_limit import AsyncLimiter
from ._aio_lock import AsyncLock, holders_of
from ._aio_memo import astore_memoize
from ._aio_run import AsyncRun, AsyncRuns
from ._aio_run import F as StepF
from ._aio_run import step_decorator as aio_step_decorator
from ._aio_runner import Group, Lane, Runner, RunnerClosed, finish, in_thread
from ._job import JobInfo
from ._lock import LockHolder
from ._migrate import MigrationReport, MigrationStatus, Steps
from ._store import Store, Transaction, _check_name
from ._types import Duration, StrPath
from .errors import ClosedError, InvalidInputError

T = TypeVar("T")

#: The transaction open in this task (and the tasks it starts), for the refusal of the store's
#: own shortcuts inside it: they would wait on the transaction's own write lock.
_current_tx: contextvars.ContextVar[Optional[AsyncTransaction]] = contextvars.ContextVar("cairn_async_tx", default=None)


class AsyncStore:
    """A cairn store for asyncio code: the same file (or PostgreSQL server), features, values
    and errors as :class:`Store`, with every call a coroutine that never blocks the event loop.

    ``path`` and the options are :class:`Store`'s (None: the CLI's default store; a
    ``postgres://`` URL: a server). The store opens on a thread of its own as soon as it is
    made; ``async with cairn.AsyncStore(path) as store:`` (or ``await store.open()``) waits for
    that and raises what opening raised; a store used without it opens on its first call.
    ``await store.close()`` (or the end of the ``async with``) closes it.

    The database work runs on threads of the store's own, never the loop's default executor:
    `workers` threads shared by the calls made outside transactions (a burst of calls from many
    coroutines runs in batches, one wake-up of the loop per batch), and one thread per open
    transaction or blocking wait. Every wait (a held lock, another process computing a value,
    a busy file, a claim waiting for work, a rate limit) is an ``await``: other tasks run
    meanwhile. A transaction stays on one connection, in the order of its calls. Cancelling a
    task inside ``async with store.transaction()`` rolls the transaction back; inside
    ``async with store.lock(...)`` releases the lock; while it waits for a claim, a lock or a
    limiter slot, gives back what the wait took.

    A sync :class:`Store`, the ``cairn`` CLI and Rust programs share the file with it.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         pages = store.cache("pages")
    ...         await pages.set("home", "<html>", ttl="1h")
    ...         return await pages.get("home")
    >>> asyncio.run(main())
    '<html>'
    """

    def __init__(
        self,
        path: Optional[StrPath] = None,
        *,
        busy_timeout: Duration = 5.0,
        durability: Literal["normal", "full"] = "normal",
        read_only: bool = False,
        read_only_if_unwritable: bool = False,
        read_missing_as_empty: bool = False,
        fill_timeout: Duration = 30.0,
        clock: Any = None,
        schema: Optional[str] = None,
        workers: int = 2,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers must be an int, not {type(workers).__name__}")
        if workers < 1:
            raise InvalidInputError(f"invalid input: workers is {workers}; an AsyncStore needs at least 1")
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        options = dict(
            busy_timeout=busy_timeout,
            durability=durability,
            read_only=read_only,
            read_only_if_unwritable=read_only_if_unwritable,
            read_missing_as_empty=read_missing_as_empty,
            fill_timeout=fill_timeout,
            clock=clock,
            schema=schema,
        )
        self._runner = Runner(workers)
        # The keys a task of this store is filling (get_or_set), for the others to wait on.
        self._fills: Dict[Tuple[str, str], asyncio.Future[Any]] = {}
        self._sync: Optional[Store] = None
        self._closed = False
        self._opening: concurrent.futures.Future[Store] = concurrent.futures.Future()

        def open_store() -> None:
            try:
                store = Store(path, **options)
            except BaseException as e:  # noqa: BLE001 - raised at the first await
                self._opening.set_exception(e)
                return
            self._sync = store
            self._opening.set_result(store)

        threading.Thread(target=open_store, name="cairn-async-open", daemon=True).start()

    # ---- opening, closing -----------------------------------------------------------------

    async def open(self) -> AsyncStore:
        """Wait until the store is open (raising what opening raised); the store itself."""
        await self._store()
        return self

    async def _store(self) -> Store:
        """The sync store underneath, once open."""
        store = self._sync
        if store is None:
            store = await asyncio.wrap_future(self._opening)
        if self._closed:
            raise ClosedError("the store is closed; open a new cairn.AsyncStore to use the file again")
        return store

    @property
    def sync(self) -> Store:
        """The :class:`Store` this one runs its calls on (open: see :meth:`open`), for code
        that must call the blocking API (from a thread, never from the loop)."""
        store = self._sync
        if store is None:
            raise InvalidInputError("invalid input: the AsyncStore is not open yet; `await store.open()` first")
        return store

    async def close(self) -> None:
        """Finish the calls already made, then close every connection (open transactions roll
        back). Later use raises :class:`ClosedError`. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        runner = self._runner
        opening = self._opening

        def shut() -> None:
            runner.close()
            runner.join()
            try:
                store = opening.result()
            except BaseException:  # noqa: BLE001 - never opened: nothing to close
                return
            store.close()

        await finish(in_thread(shut))

    async def __aenter__(self) -> AsyncStore:
        """Wait until the store is open; the end of the block closes it."""
        try:
            await self._store()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def path(self) -> str:
        """The database file (absolute), ``":memory:"``, or the server's URL without its
        password (once open)."""
        return self.sync.path

    @property
    def read_only(self) -> bool:
        """True if opened read-only (once open)."""
        return self.sync.read_only

    @property
    def is_missing(self) -> bool:
        """As :attr:`Store.is_missing` (once open)."""
        return self.sync.is_missing

    @property
    def journal_mode(self) -> str:
        """As :attr:`Store.journal_mode` (once open)."""
        return self.sync.journal_mode

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._sync is not None else "opening"
        where = f" {self._sync.path!r}" if self._sync is not None else ""
        return f"<cairn.AsyncStore{where} {state}>"

    # ---- running calls --------------------------------------------------------------------

    def _submit(self, fn: Callable[..., Any], args: Tuple[Any, ...] = (), cleanup: Optional[Callable[[Any], Any]] = None) -> "asyncio.Future[Any]":
        """`fn(*args)` on a worker, outside any transaction."""
        tx = _current_tx.get()
        if tx is not None and tx._open:
            raise InvalidInputError(
                "invalid input: the store's own handles cannot be used inside `async with store.transaction() "
                "as tx`: their call would wait for the transaction's own write lock; use tx.cache(...), "
                "tx.ledger(...), tx.checkpoint(...) inside the block"
            )
        try:
            return self._runner.submit(fn, args, cleanup)
        except RunnerClosed:
            raise ClosedError("the store is closed; open a new cairn.AsyncStore to use the file again") from None

    def _submit_group(self, group: Group, args: Tuple[Any, ...]) -> "asyncio.Future[Any]":
        """:meth:`_submit` of a :class:`Group` call (a cache get or set), by the shortest path."""
        tx = _current_tx.get()
        if tx is not None and tx._open:
            return self._submit(group, args)  # raises what it raises
        try:
            return self._runner.submit_group(group, args)
        except RunnerClosed:
            raise ClosedError("the store is closed; open a new cairn.AsyncStore to use the file again") from None

    async def _call(self, fn: Callable[[Store], T]) -> T:
        """`fn(store)` on a worker, with the sync store."""
        store = await self._store()
        result: T = await self._submit(fn, (store,))
        return result

    # ---- the store's features -------------------------------------------------------------

    def cache(self, ns: str = "default") -> AsyncCache:
        """The cache namespace `ns` (see :meth:`Store.cache`)."""
        _check_name("namespace", ns)
        return AsyncCache(self, None, ns)

    def checkpoint(self, job: str) -> AsyncCheckpoint:
        """The checkpoint of `job` (see :meth:`Store.checkpoint`)."""
        _check_name("job name", job)
        return AsyncCheckpoint(self, None, job)

    def transaction(self) -> AsyncTransaction:
        """A transaction across every feature, for ``async with store.transaction() as tx:``
        (see :meth:`Store.transaction`): ``BEGIN IMMEDIATE`` on a connection of its own on
        entry (waiting for the write lock without blocking the loop), ``COMMIT`` on a normal
        exit, ``ROLLBACK`` on an exception, a cancellation included. A cancellation that
        arrives while the ``COMMIT`` itself runs waits for it: the transaction is then
        committed, and the task's ``CancelledError`` raised after.

        Inside the block use the handles of ``tx``; the store's own raise
        :class:`InvalidInputError` (they would wait for this transaction's write lock).

        >>> import asyncio, cairn
        >>> async def main() -> object:
        ...     async with cairn.AsyncStore(":memory:") as store:
        ...         async with store.transaction() as tx:
        ...             await tx.cache("stock").set("apples", 3)
        ...             await tx.checkpoint("count").set({"done": 1})
        ...         return await store.cache("stock").get("apples")
        >>> asyncio.run(main())
        3
        """
        return AsyncTransaction(self)

    memoize = astore_memoize

    def _joined_cache(self, ns: str) -> AsyncCache:
        """The cache `ns` inside this task's open transaction of this store, if any."""
        tx = _current_tx.get()
        if tx is not None and tx._open and tx._astore is self:
            return tx.cache(ns)
        return self.cache(ns)
    # ---- helper A: the ledger and work queue (AsyncLedger, AsyncClaim) ----------------------

    def ledger(
        self, ns: str, *, max_attempts: Optional[int] = None, retry_delay: Optional[Duration] = None
    ) -> AsyncLedger:
        """The ledger namespace `ns` and its work queue (see :meth:`Store.ledger`; a given
        `max_attempts` or `retry_delay` becomes the namespace's stored policy on the first
        call). Its waits (``claim_next(wait=...)``, ``claims(wait=...)``, ``wait_drained``)
        never block the loop.

        >>> import asyncio, cairn
        >>> async def main() -> object:
        ...     async with cairn.AsyncStore(":memory:") as store:
        ...         pages = store.ledger("pages", max_attempts=5)
        ...         await pages.mark_done("https://example.com")
        ...         return await pages.filter_new(["https://example.com", "https://example.org"])
        >>> asyncio.run(main())
        ['https://example.org']
        """
        _check_name("namespace", ns)
        return AsyncLedger(self, None, ns, max_attempts, retry_delay)

    # ---- end of helper A's block ------------------------------------------------------------
    # ---- locks, limiters, durable runs, jobs (issue 22, part b) -----------------------------

    def lock(
        self,
        name: str,
        *,
        ttl: Duration = 60,
        timeout: Optional[Duration] = None,
        keep_alive: bool = True,
        max: int = 1,
    ) -> AsyncLock:
        """The named lock `name`, for ``async with store.lock(name, ttl=..., timeout=...):``
        (see :meth:`Store.lock` and :class:`AsyncLock`): the wait for it is on the loop."""
        _check_name("lock name", name)
        if isinstance(max, bool) or not isinstance(max, int):
            raise TypeError(f"max must be an int, not {type(max).__name__}")
        return AsyncLock(self, name, ttl, timeout, keep_alive, max)

    async def lock_holder(self, name: str) -> Optional[LockHolder]:
        """Who holds the lock `name` (slot 0 of a lock of several holders), or None."""
        return await self._call(lambda s: holders_of(s, name, None))

    async def lock_holders(self, name: str, max: int) -> List[LockHolder]:
        """Who holds the slots of the lock `name` of up to `max` holders, by slot."""
        return await self._call(lambda s: holders_of(s, name, max))

    def limiter(self, name: str, rate: str, *, burst: int = 1) -> AsyncLimiter:
        """The rate limit `name` (see :meth:`Store.limiter` and :class:`AsyncLimiter`)."""
        _check_name("limiter name", name)
        return AsyncLimiter(self, name, rate, burst)

    def run(self, id: str, *, lease: Duration = _cairn.DEFAULT_LEASE, wait: Optional[Duration] = 0) -> AsyncRun:
        """The durable run `id`, for ``async with store.run(id) as run:`` (see :meth:`Store.run`
        and :class:`AsyncRun`); another live attempt raises :class:`RunHeldError` after
        waiting up to `wait` (None: as long as it holds the run), on the loop."""
        return AsyncRun(self, id, lease, wait)

    def runs(self) -> AsyncRuns:
        """The runs of this store, for operators: list, inspect, reset, forget, prune."""
        return AsyncRuns(self)

    @overload
    def step(self, fn: StepF, *, version: Optional[str] = None, name: Optional[str] = None) -> StepF: ...

    @overload
    def step(
        self, fn: None = None, *, version: Optional[str] = None, name: Optional[str] = None
    ) -> Callable[[StepF], StepF]: ...

    def step(self, fn: Optional[Any] = None, *, version: Optional[str] = None, name: Optional[str] = None) -> Any:
        """Decorate a coroutine function so that, inside an ``async with store.run(...)`` block
        of this store (in its task, or a task it started), a call of it is a step of that run
        named after the function (see :meth:`Store.step`); outside a run (or inside the function
        of another step) it is a plain call. Usable as ``@store.step`` or
        ``@store.step(version=2)``."""
        decorate = aio_step_decorator(self, None if version is None else str(version), name)
        if fn is not None:
            return decorate(fn)
        return decorate

    def job(
        self,
        name: str,
        *,
        every: Optional[Duration] = None,
        cron: Optional[str] = None,
        tz: str = "UTC",
        catch_up: Literal["none", "all"] = "none",
        max_catch_up: int = _cairn.DEFAULT_MAX_CATCH_UP,
        retry: bool = True,
        keep: int = _cairn.DEFAULT_KEEP,
    ) -> AsyncJob:
        """The job `name`, run at most once per slot of its schedule (see :meth:`Store.job` and
        :class:`AsyncJob`); a bad schedule is refused here."""
        _check_name("job name", name)
        return AsyncJob(
            self,
            name,
            every=every,
            cron=cron,
            tz=tz,
            catch_up=catch_up,
            max_catch_up=max_catch_up,
            retry=retry,
            keep=keep,
        )

    async def jobs(self) -> List[JobInfo]:
        """Every job that ran in this store (from Python or ``cairn job run``), by name."""
        return await self._call(lambda s: s.jobs())

    # ---- end of part b ------------------------------------------------------------------------

    # ---- your own tables, maintenance -----------------------------------------------------

    async def migrate(self, scope: str, steps: Steps) -> MigrationReport:
        """:meth:`Store.migrate`."""
        return await self._call(lambda s: s.migrate(scope, steps))

    async def migration_status(self, scope: str, steps: Steps) -> MigrationStatus:
        """:meth:`Store.migration_status`."""
        return await self._call(lambda s: s.migration_status(scope, steps))

    async def query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        """:meth:`Store.query`."""
        return await self._call(lambda s: s.query(sql, params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """:meth:`Store.execute`."""
        return await self._call(lambda s: s.execute(sql, params))

    async def sweep(self) -> int:
        """:meth:`Store.sweep`."""
        return await self._call(lambda s: s.sweep())

    async def integrity_check(self) -> List[str]:
        """:meth:`Store.integrity_check`."""
        return await self._call(lambda s: s.integrity_check())

    async def flush_stats(self) -> None:
        """:meth:`Store.flush_stats` (the pending counts of every worker thread)."""

        def flush_all(s: Store) -> None:
            # Each thread's connection keeps its own pending counts, and a burst of gets may
            # have run on any worker: flush every connection of the store (each is safe to
            # use from this thread, one call at a time), but those inside a transaction,
            # whose counts go with its commit.
            with s._lock:
                conns = list(s._conns)
            for conn in conns:
                if conn.closed or conn.in_transaction:
                    continue
                try:
                    conn.flush_stats()
                except InvalidInputError:
                    pass  # a transaction began on it meanwhile: its commit writes them

        await self._call(flush_all)

    async def prometheus_metrics(self) -> str:
        """:meth:`Store.prometheus_metrics`."""
        return await self._call(lambda s: s.prometheus_metrics())

    async def cache_namespaces(self) -> List[str]:
        """:meth:`Store.cache_namespaces`."""
        return await self._call(lambda s: s.cache_namespaces())

    async def ledger_namespaces(self) -> List[str]:
        """:meth:`Store.ledger_namespaces`."""
        return await self._call(lambda s: s.ledger_namespaces())

    async def backup(self, dest: StrPath) -> None:
        """:meth:`Store.backup`."""
        await self._call(lambda s: s.backup(dest))

    async def vacuum(self) -> None:
        """:meth:`Store.vacuum`."""
        await self._call(lambda s: s.vacuum())


class AsyncTransaction:
    """An open write transaction of an :class:`AsyncStore`, from ``async with
    store.transaction() as tx:``: its handles join it, on its own connection, in call order."""

    __slots__ = ("_astore", "_lane", "_sync", "_open", "_token")

    def __init__(self, astore: AsyncStore) -> None:
        self._astore = astore
        self._lane: Optional[Lane] = None
        self._sync: Optional[Transaction] = None
        self._open = False
        self._token: Optional[contextvars.Token[Optional[AsyncTransaction]]] = None

    async def __aenter__(self) -> AsyncTransaction:
        if self._lane is not None:
            raise InvalidInputError("invalid input: an AsyncTransaction is used once; call store.transaction() again")
        store = await self._astore._store()
        try:
            lane = self._astore._runner.lane()
        except RunnerClosed:
            raise ClosedError("the store is closed; open a new cairn.AsyncStore to use the file again") from None
        self._lane = lane
        tx = Transaction(store)
        try:
            await lane.submit(tx.__enter__)
        except BaseException as e:
            # Cancelled while BEGIN waited (it may have begun since), or BEGIN failed: on the
            # lane, after it, whatever began is rolled back.
            lane.post(tx.__exit__, (type(e), e, None))
            lane.release()
            raise
        self._sync = tx
        self._open = True
        self._token = _current_tx.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        lane, tx = self._lane, self._sync
        assert lane is not None and tx is not None, "entered"
        self._open = False
        if self._token is not None:
            try:
                _current_tx.reset(self._token)
            except ValueError:  # exited in another context than entered: nothing to restore
                pass
            self._token = None
        try:
            await finish(lane.submit(tx.__exit__, (exc_type, exc, None)))
        finally:
            lane.release()

    def _submit(self, fn: Callable[..., Any], args: Tuple[Any, ...] = (), cleanup: Optional[Callable[[Any], Any]] = None) -> "asyncio.Future[Any]":
        lane = self._lane
        if not self._open or lane is None:
            raise InvalidInputError(
                "invalid input: this transaction is not open; use it as `async with store.transaction() as tx:`"
            )
        return lane.submit(fn, args, cleanup)

    def _tx(self) -> Transaction:
        tx = self._sync
        if not self._open or tx is None:
            raise InvalidInputError(
                "invalid input: this transaction is not open; use it as `async with store.transaction() as tx:`"
            )
        return tx

    def cache(self, ns: str = "default") -> AsyncCache:
        """The cache namespace `ns`, inside this transaction."""
        _check_name("namespace", ns)
        return AsyncCache(self._astore, self, ns)

    def checkpoint(self, job: str) -> AsyncCheckpoint:
        """The checkpoint of `job`, inside this transaction."""
        _check_name("job name", job)
        return AsyncCheckpoint(self._astore, self, job)

    # ---- helper A: the ledger and work queue -------------------------------------------------

    def ledger(
        self, ns: str, *, max_attempts: Optional[int] = None, retry_delay: Optional[Duration] = None
    ) -> AsyncLedger:
        """The ledger namespace `ns`, inside this transaction (see :meth:`AsyncStore.ledger`);
        waiting for work is refused inside a transaction, as in :meth:`Transaction.ledger`."""
        _check_name("namespace", ns)
        return AsyncLedger(self._astore, self, ns, max_attempts, retry_delay)

    # ---- end of helper A's block ------------------------------------------------------------

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """:meth:`Transaction.execute`: one statement on your own tables, in this transaction."""
        tx = self._tx()
        result: int = await self._submit(tx.execute, (sql, params))
        return result

    async def query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        """:meth:`Transaction.query`: it sees this transaction's own writes."""
        tx = self._tx()
        result: List[Tuple[Any, ...]] = await self._submit(tx.query, (sql, params))
        return result

    def __repr__(self) -> str:
        return f"<cairn.AsyncTransaction {'open' if self._open else 'not open'}>"


_ = _cairn  # the extension is loaded through the package
