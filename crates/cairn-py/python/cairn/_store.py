"""The store: one file, opened once per process, one SQLite connection per thread."""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, List, Literal, Optional, Sequence, Tuple, Type, TypeVar

from . import _cairn, _guard
from ._cache import Cache
from ._checkpoint import Checkpoint
from ._ledger import DEFAULT_LEASE, Ledger
from ._job import Job, JobInfo, info_from
from ._limit import Limiter
from ._lock import Lock, LockHolder, holder_from
from ._memo import store_memoize as _store_memoize
from ._migrate import MigrationReport, MigrationStatus, Steps, report_from, status_from, steps_args
from ._run import Run, Runs, step_decorator
from ._types import Duration, StrPath
from .errors import ClosedError, ForkedError, InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from typing import Protocol

    from .testing import ManualClock

    class _Source(Protocol):
        """Where a handle gets its connection: the store (this thread's) or a transaction.
        ``_holder.conn``, when set, is that connection (the fast path of the handles)."""

        @property
        def _holder(self) -> Any: ...

        def _conn(self) -> _cairn.Connection: ...


#: Every open store of the process, for the fork hook.
_stores: weakref.WeakSet[Store] = weakref.WeakSet()


class Store:
    """A cairn store: a TTL cache, a ledger of processed items, checkpoints, named locks and
    migrations in one SQLite file, shared with the ``cairn`` CLI, Rust programs and other
    Python processes.

    ``path`` None opens the CLI's default store (``$CAIRN_DB``, else
    ``$XDG_STATE_HOME/cairn/state.db``, else ``~/.local/state/cairn/state.db``);
    ``":memory:"`` a private in-memory store for tests. Missing directories are created (0700)
    and a new file is created 0600.

    A ``postgres://`` (or ``postgresql://``) URL opens a store on a PostgreSQL server instead,
    for workers on several hosts: the same API, with cairn's tables in a schema of their own
    (``cairn``, or ``schema=``, or the URL's ``?cairn_schema=NAME``). A lost or unreachable
    server raises :class:`UnavailableError`. :attr:`path` and every message show the URL
    without its password; the store keeps the full URL to connect its other threads (and a
    pickled store carries it, so that a ``spawn`` worker can connect).

    Options: ``busy_timeout`` (how long a write waits for another process's lock before
    :class:`BusyError`), ``durability`` (``"normal"``: an application crash loses nothing
    committed; ``"full"``: every commit also survives a power loss, at an fsync each),
    ``read_only``, ``read_only_if_unwritable``, ``read_missing_as_empty`` (for a script that
    only reads: where no store exists yet, read as an empty one and create nothing, so a
    mistyped path is not a fresh store; :attr:`is_missing` says so, and a write raises
    :class:`ReadOnlyError`), ``fill_timeout`` (how long ``get_or_set``
    waiters wait for a computing process on another host before taking over) and ``clock``
    (:class:`cairn.testing.ManualClock`), and ``schema`` (the PostgreSQL schema; ignored for
    files). Durations, here and in every handle (``ttl=``, ``lease=``, ``timeout=``...), are
    seconds, a ``timedelta`` or text such as ``"5m"``: see :func:`cairn.parse_duration`.

    A ``Store`` may be shared by threads (each gets its own connection, opened on first use)
    and survives ``fork``: a child opens its own connection on first use and never touches
    the parent's. A child forked while another thread of the parent was inside a cairn call,
    or held a transaction open, inherits the database library's state in the middle of a
    change (a mutex or a lock held by a thread the child does not have): its first use of the
    store raises :class:`ForkedError` at once, saying what to do, rather than hang or fail with
    :class:`BusyError`. Fork before starting the threads that use the store, or use the
    ``spawn`` or ``forkserver`` start methods. It pickles by path and options, for
    ``multiprocessing`` spawn workers. Connections are per thread: a pool of long-lived
    threads is cheap, a new thread per call pays an open (about a millisecond) each time.

    Errors are :class:`cairn.Error` subclasses; every call that touches the file releases the
    GIL. ``close()`` (or a ``with`` block) closes every thread's connection.

    >>> import cairn
    >>> with cairn.Store(":memory:") as store:
    ...     store.cache("demo")["hello"] = "world"
    ...     store.cache("demo")["hello"]
    'world'
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
        clock: Optional[ManualClock] = None,
        schema: Optional[str] = None,
    ) -> None:
        for name, flag in (
            ("read_only", read_only),
            ("read_only_if_unwritable", read_only_if_unwritable),
            ("read_missing_as_empty", read_missing_as_empty),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
        if schema is not None and not isinstance(schema, str):
            raise TypeError(f"schema must be a str, not {type(schema).__name__}")
        if not isinstance(durability, str):
            raise TypeError(f"durability must be 'normal' or 'full', not {type(durability).__name__}")
        raw_clock = None
        if clock is not None:
            from .testing import ManualClock

            if not isinstance(clock, ManualClock):
                raise TypeError(f"clock must be a cairn.testing.ManualClock, not {type(clock).__name__}")
            raw_clock = clock._raw
        self._options: dict[str, Any] = dict(
            busy_timeout=busy_timeout,
            durability=durability,
            read_only=read_only,
            read_only_if_unwritable=read_only_if_unwritable,
            read_missing_as_empty=read_missing_as_empty,
            fill_timeout=fill_timeout,
            clock=raw_clock,
            schema=schema,
        )
        self._clock = clock
        self._memory = isinstance(path, str) and path == ":memory:"
        self._lock = threading.Lock()
        self._local = threading.local()
        self._holder = self._local
        self._conns: weakref.WeakSet[_cairn.Connection] = weakref.WeakSet()
        self._closed = False
        self._guard_key: Optional[str] = None
        location: Optional[str] = None
        if self._memory:
            conn = _cairn.Connection(None, memory=True, **self._options)
        else:
            if path is None:
                path = _cairn.default_path()
            elif not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
            if not _is_server_url(path):  # a server has no file in this process to guard
                self._guard_key = _guard.register(path)
            location = os.fspath(path)
            try:
                conn = _cairn.Connection(location, **self._options)
            except BaseException:
                if self._guard_key is not None:
                    _guard.unregister(self._guard_key)
                raise
        self._path = conn.path
        # Where other threads (and a pickled copy) connect: the absolute file, or the URL as
        # given, password included (the shown `_path` has none).
        self._location = location if location is not None and _is_server_url(location) else conn.path
        self._first = conn
        self._conns.add(conn)
        self._local.conn = conn
        self._release = weakref.finalize(self, _guard.unregister, self._guard_key) if self._guard_key else None
        _stores.add(self)

    # ---- connections --------------------------------------------------------------------

    def _conn(self) -> _cairn.Connection:
        try:
            conn: _cairn.Connection = self._local.conn
            return conn
        except AttributeError:
            return self._connect()

    def _connect(self) -> _cairn.Connection:
        """This thread's first use (or the first after a fork): open its connection."""
        if self._closed:
            raise ClosedError("the store is closed; open a new cairn.Store to use the file again")
        if self._memory:
            if self._first.pid != os.getpid():
                raise ForkedError(
                    "an in-memory store lives in the process that created it and cannot be used in a forked "
                    "child; use a file"
                )
            conn = self._first
        else:
            conn = _cairn.Connection(self._location, **self._options)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._conns.add(conn)
            if closed:
                conn.close()
                raise ClosedError("the store is closed; open a new cairn.Store to use the file again")
        self._local.conn = conn
        return conn

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        # Cleared in place (handles keep a reference to it): this thread opens a connection
        # of the child's own on its next call. Other threads do not exist in the child.
        self._local.__dict__.clear()
        # The parent's connections stay referenced by nothing of ours: when collected, each
        # lets go of its SQLite state without touching the file (it belongs to the parent).
        self._conns = weakref.WeakSet()

    # ---- the store's features -----------------------------------------------------------

    def cache(self, ns: str = "default") -> Cache:
        """The cache namespace `ns`. Each call on it is its own transaction; inside
        ``with store.transaction() as tx`` use ``tx.cache``.

        Name one per job (``store.cache("pages")``): left out, it is ``"default"``, the one
        ``cairn cache`` uses without ``-n``, shared by every script that names none, where two
        jobs that both cache a ``"token"`` read each other's."""
        _check_name("namespace", ns)
        return Cache(self, ns, 0)

    def ledger(
        self, ns: str, *, max_attempts: Optional[int] = None, retry_delay: Optional[Duration] = None
    ) -> Ledger:
        """The ledger namespace `ns`: name one per job (``store.ledger("invoices")``). It has no
        default, since jobs sharing a namespace skip each other's ids: one that marks ``"1"``
        done makes every other skip its own ``"1"``. (The CLI's namespace when ``-n`` is not
        given is ``"default"``: ``store.ledger("default")`` is that one.)

        Items are given up after `max_attempts` attempts (failures, and claims lost because their
        worker died or hung), and a failed item is handed out again after a backoff based on
        `retry_delay` (a duration, see :func:`cairn.parse_duration`; 0: at once). Given, they
        become the namespace's policy, kept in the store (one write, when it changes:
        :meth:`Ledger.set_policy`), so that ``tx.ledger(ns)``, other processes and ``cairn
        ledger`` apply the same; left out, the stored policy applies (default 3 attempts, a 1 s
        backoff base). See :class:`Ledger`."""
        _check_name("namespace", ns)
        return Ledger(self, ns, 0, max_attempts, retry_delay)

    def checkpoint(self, job: str) -> Checkpoint:
        """The checkpoint of `job`."""
        _check_name("job name", job)
        return Checkpoint(self, job, 0)

    def transaction(self) -> Transaction:
        """A transaction across every feature, for a ``with`` block: ``BEGIN IMMEDIATE`` on
        entry (the write lock is taken at once, waiting up to the busy timeout), ``COMMIT`` on
        a normal exit, ``ROLLBACK`` on any exception (which propagates).

        Inside the block use the handles of ``tx`` (``tx.cache(ns)``, ``tx.ledger(ns)``,
        ``tx.checkpoint(job)``, ``tx.execute(sql)``); the store's own shortcuts would need a
        second transaction and raise :class:`InvalidInputError`, and so does a nested
        ``transaction()`` on the same thread. Other threads and processes wait for the block
        to end before they write, so keep it short.

        >>> import cairn
        >>> store = cairn.Store(":memory:")
        >>> with store.transaction() as tx:
        ...     _ = tx.cache("stock").incr("apples", -1)
        ...     tx.ledger("orders").mark_done("o-17")
        True
        """
        return Transaction(self)

    def run(self, id: str, *, lease: Duration = DEFAULT_LEASE, wait: Optional[Duration] = 0) -> Run:
        """The durable run `id`, for ``with store.run(id) as run:``: its steps execute until
        they succeed once and replay after, so a re-run carries on where the last one
        stopped. The id is the run's idempotency key (``deploy-<commit>``,
        ``backfill-2026-11-30``). One attempt holds a run at a time, for `lease` (renewed by
        a thread while the block runs; a dead holder on this host is taken over at once);
        another live attempt raises :class:`RunHeldError` after waiting up to `wait` (None: as
        long as it holds the run). See :class:`Run`.

        >>> import cairn
        >>> store = cairn.Store(":memory:")
        >>> with store.run("export-2026-12-07") as run:
        ...     rows = run.step("count", lambda: 42)
        >>> rows
        42
        """
        return Run(self, id, lease, wait)

    def runs(self) -> Runs:
        """The runs of this store, for operators: list, inspect, reset, forget, prune."""
        return Runs(self)

    def step(self, fn: Optional[F] = None, *, version: Optional[str] = None, name: Optional[str] = None) -> Any:
        """Decorate a function so that, inside a ``with store.run(...)`` block of this store, a
        call of it is a step of that run named after the function (``fetch``, ``fetch#2``...;
        `name` to choose another), with `version` as its version; outside a run (or inside the
        function of another step) it is a plain call. Usable as ``@store.step`` or
        ``@store.step(version=2)``.

        >>> import cairn
        >>> store = cairn.Store(":memory:")
        >>> @store.step(version="1")
        ... def fetch(page: int) -> str:
        ...     return f"page {page}"
        >>> with store.run("crawl") as run:
        ...     first = fetch(1)
        >>> first
        'page 1'
        """
        decorate = step_decorator(self, None if version is None else str(version), name)
        if fn is not None:
            return decorate(fn)
        return decorate

    def lock(
        self,
        name: str,
        *,
        ttl: Duration = 60,
        timeout: Optional[Duration] = None,
        keep_alive: bool = True,
        max: int = 1,
    ) -> Lock:
        """The named lock `name`, for ``with store.lock(name, ttl=..., timeout=...):``.

        `timeout` is how long entering the block waits for the lock (None: as long as it
        takes; 0: not at all) before raising :class:`LockHeldError`; it and `ttl` are durations
        (see :func:`cairn.parse_duration`). With ``max=N`` up to N
        holders have it at once (a counting semaphore; give every user of the name the same
        N). See :class:`Lock` for `ttl` and `keep_alive`.

        >>> import cairn
        >>> store = cairn.Store(":memory:")
        >>> with store.lock("downloads", max=2, timeout=0), store.lock("downloads", max=2, timeout=0):
        ...     [h.slot for h in store.lock_holders("downloads", max=2)]
        [0, 1]
        """
        _check_name("lock name", name)
        if isinstance(max, bool) or not isinstance(max, int):
            raise TypeError(f"max must be an int, not {type(max).__name__}")
        return Lock(self, name, ttl, timeout, keep_alive, max)

    def lock_holder(self, name: str) -> Optional[LockHolder]:
        """Who holds the lock `name` (slot 0 of a lock of several holders), or None."""
        h = self._conn().lock_holder(name)
        return None if h is None else holder_from(h)

    def lock_holders(self, name: str, max: int) -> list[LockHolder]:
        """Who holds the slots of the lock `name` of up to `max` holders, by slot."""
        return [holder_from(h) for h in self._conn().lock_holders(name, max)]

    def limiter(self, name: str, rate: str, *, burst: int = 1) -> Limiter:
        """The rate limit `name`, shared by every process (and host) using this store: at most
        `rate` (``"10/s"``, ``"100/min"``, ``"5000/h"``, ``"1/d"``, or a count per duration:
        ``"5/10s"``), with `burst` slots at once after a quiet spell. See :class:`Limiter`.

        >>> import cairn
        >>> store = cairn.Store(":memory:")
        >>> api = store.limiter("github", "5000/h", burst=100)
        >>> with api:  # waits for a slot
        ...     pass   # the call
        """
        _check_name("limiter name", name)
        return Limiter(self, name, rate, burst)

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
    ) -> Job:
        """The job `name`: a function run at most once per slot of a schedule, ``every`` a
        duration (``"1h"``, seconds: see :func:`cairn.parse_duration`) or ``cron`` a five-field expression in the time zone
        ``tz``, across processes and hosts; the same jobs as ``cairn job run``. ``catch_up="all"``
        runs the slots missed since the last done one (at most `max_catch_up`), ``retry=False``
        marks a failed slot done, `keep` is how many runs the history keeps. See :class:`Job`.

        >>> import cairn
        >>> store = cairn.Store(":memory:")
        >>> @store.job("nightly", cron="0 3 * * *", tz="Europe/Berlin")
        ... def nightly(slot: cairn.Slot) -> None:
        ...     pass
        >>> nightly(), nightly()
        (True, False)
        """
        _check_name("job name", name)
        return Job(
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

    def jobs(self) -> List[JobInfo]:
        """Every job that ran in this store (from Python or ``cairn job run``), by name."""
        return [info_from(j) for j in self._conn().jobs()]

    memoize = _store_memoize

    def _joined_cache(self, ns: str) -> Cache:
        """The cache `ns` inside this thread's open transaction, if any."""
        tx: Optional[Transaction] = getattr(self._local, "tx", None)
        if tx is not None and tx._n:
            return Cache(tx, ns, tx._n)
        return Cache(self, ns, 0)

    # ---- migrations and the user's own tables ---------------------------------------------

    def migrate(self, scope: str, steps: Steps) -> MigrationReport:
        """Apply your own migrations to this store's file, versioned under `scope` (a name of
        your choosing; the file's ``user_version`` belongs to cairn). `steps` is a list of SQL
        strings or a directory of ``NNN_name.sql`` files. Each step commits with its version
        bump; re-running is a no-op. Read and write the tables with :meth:`query`,
        :meth:`execute` and ``tx.execute``."""
        sql, d = steps_args(steps)
        return report_from(self._conn().migrate(scope, sql, d))

    def migration_status(self, scope: str, steps: Steps) -> MigrationStatus:
        """Where `scope` stands in this file against `steps`, without changing anything."""
        sql, d = steps_args(steps)
        return status_from(self._conn().migration_status(scope, sql, d))

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        """Rows of one reading statement (``SELECT``) on your own tables, through cairn's own
        connection (never open the store's file with the ``sqlite3`` module in the same
        process: see :class:`SQLiteCopyError`). Parameters bind to ``?1``, ``?2``... Statements
        that write, touch cairn's tables (``cairn_*``), control transactions, attach files or
        set pragmas raise :class:`InvalidInputError`."""
        return self._conn().query(sql, params, 0)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement on your own tables in a transaction of its own; returns how many
        rows it changed. The refusals of :meth:`query` apply, except that it may write."""
        return self._conn().execute(sql, params, 0)

    # ---- maintenance ----------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove every expired cache entry in every namespace. Returns how many."""
        return self._conn().sweep()

    def integrity_check(self) -> List[str]:
        """``PRAGMA integrity_check``: ``["ok"]`` when the file is sound."""
        return self._conn().integrity_check()

    def flush_stats(self) -> None:
        """Write this thread's pending hit and miss counts now (done anyway with its next
        write and at close)."""
        self._conn().flush_stats()

    def prometheus_metrics(self) -> str:
        """The whole store's figures in the Prometheus text format, as ``cairn stats --format
        prometheus`` prints them: per ledger namespace its items by state, the age of its
        oldest queued item and whether it is paused; per cache namespace its entries, bytes,
        hits and misses; the locks held. To serve from a scrape handler or write for
        node_exporter's textfile collector."""
        return self._conn().prometheus_metrics()

    def cache_namespaces(self) -> List[str]:
        """The cache namespaces that hold entries or statistics, sorted."""
        return self._conn().cache_namespaces()

    def ledger_namespaces(self) -> List[str]:
        """The ledger namespaces that hold items, sorted."""
        return self._conn().ledger_namespaces()

    def backup(self, dest: StrPath) -> None:
        """A consistent copy of the store at `dest`, taken while it is in use."""
        self._conn().backup(os.fspath(dest))

    def vacuum(self) -> None:
        """Rebuild the file to give free pages back to the file system."""
        self._conn().vacuum()

    # ---- the handle itself ----------------------------------------------------------------

    @property
    def path(self) -> str:
        """The database file (absolute), ``":memory:"``, or the server's URL without its
        password."""
        return self._path

    @property
    def journal_mode(self) -> str:
        """``"wal"``, ``"memory"``, or a fallback rollback journal."""
        return self._first.journal_mode

    @property
    def read_only(self) -> bool:
        """True if opened read-only."""
        return self._first.read_only

    @property
    def is_missing(self) -> bool:
        """True if opened with ``read_missing_as_empty=True`` where no store existed: it reads as
        an empty store and nothing was created."""
        return self._first.missing

    @property
    def in_transaction(self) -> bool:
        """True while this thread is inside a ``with store.transaction()`` block."""
        tx: Optional[Transaction] = getattr(self._local, "tx", None)
        return tx is not None and tx._n != 0

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Close every thread's connection: pending statistics are written, open
        transactions rolled back. Later use raises :class:`ClosedError`. Closing twice is fine."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
        for c in conns:
            c.close()
        self._first.close()
        if self._release is not None:
            self._release()

    def __enter__(self) -> Store:
        """The store itself; the end of the ``with`` block closes it."""
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Close the store."""
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        if self._memory:
            raise TypeError("an in-memory cairn.Store cannot be pickled: other processes cannot reach it")
        if self._clock is not None:
            raise TypeError("a cairn.Store with a ManualClock cannot be pickled: the clock lives in this process")
        opts = {k: v for k, v in self._options.items() if k != "clock"}
        return (_reopen, (self._location, opts))

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<cairn.Store {self._path!r} {state}>"


def _reopen(path: str, options: dict[str, Any]) -> Store:
    return Store(path, **options)


def _is_server_url(path: StrPath) -> bool:
    return isinstance(path, str) and path.lower().startswith(("postgres://", "postgresql://"))


def _check_name(what: str, name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a {what} must be a str, not {type(name).__name__}")


class Transaction(_cairn.TransactionBase):
    """An open write transaction, from ``with store.transaction() as tx:``. Its handles join
    it: everything done through them commits together, or not at all.

    ``with`` is safe against Ctrl-C at any point: entering (``BEGIN IMMEDIATE`` on this
    thread's connection, waiting up to the busy timeout for the file's write lock) and leaving
    (``COMMIT`` after a normal exit, a failed commit having rolled back and raising;
    ``ROLLBACK`` after an exception, which propagates) run no Python code once the transaction
    is open, so a ``KeyboardInterrupt`` arrives inside the block, whose end rolls back, or after
    it: never leaving a transaction open that nothing owns."""

    __slots__ = ()

    @property
    def _holder(self) -> Transaction:
        return self

    def _conn(self) -> _cairn.Connection:
        c = self._c
        if c is None:
            raise InvalidInputError("invalid input: this transaction is not open; use it as `with store.transaction() as tx:`")
        return c

    def cache(self, ns: str = "default") -> Cache:
        """The cache namespace `ns`, inside this transaction (see :meth:`Store.cache`)."""
        _check_name("namespace", ns)
        return Cache(self, ns, self._n)

    def ledger(
        self, ns: str, *, max_attempts: Optional[int] = None, retry_delay: Optional[Duration] = None
    ) -> Ledger:
        """The ledger namespace `ns`, inside this transaction (see :meth:`Store.ledger`)."""
        _check_name("namespace", ns)
        return Ledger(self, ns, self._n, max_attempts, retry_delay)

    def checkpoint(self, job: str) -> Checkpoint:
        """The checkpoint of `job`, inside this transaction."""
        _check_name("job name", job)
        return Checkpoint(self, job, self._n)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement on your own tables inside this transaction (see
        :meth:`Store.execute`); returns how many rows it changed."""
        return self._conn().execute(sql, params, self._n)

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        """:meth:`Store.query` inside this transaction: it sees the transaction's own writes."""
        return self._conn().query(sql, params, self._n)

    def __repr__(self) -> str:
        return f"<cairn.Transaction {'open' if self._n else 'not open'} on {self._store.path!r}>"


def _after_fork_in_child() -> None:
    _cairn.after_fork_in_child()
    _guard.after_fork_in_child()
    for store in list(_stores):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
