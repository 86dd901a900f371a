"""cairn: a memory for automation scripts that survives crashes.

One SQLite file (or a PostgreSQL server, for workers on several hosts) holding a TTL cache
computed once across processes, a ledger of processed items that is also a work queue
(claims with leases and fencing), checkpoints, named locks and migrations, shared with the
``cairn`` command-line tool and with Rust programs. Values keep their type across all three
(str, int, float, bool, None, bytes, and dicts and lists of JSON values); nothing is pickled.

Where to read next, with ``help()``:

- :class:`cairn.Store`: opening a store (``cairn.Store()`` is the CLI's default one), its
  handles, ``with store.transaction() as tx:``, your own tables (``store.migrate``,
  ``store.query``, ``tx.execute``), maintenance.
- :class:`cairn.Cache` (``store.cache("pages")``) and ``Store.memoize``: values with a TTL,
  computed once across processes.
- :class:`cairn.Ledger` (``store.ledger("invoices")``: name one per job) and
  :class:`cairn.Claim`: which items are done, and workers sharing a queue.
- :class:`cairn.Checkpoint` and :class:`cairn.Lock` (``with store.lock("nightly"):``).
- :class:`cairn.Job` (``@store.job("nightly", cron="0 3 * * *")``): a function run once per slot
  of a schedule across processes and hosts, with its history and health check.
- :class:`cairn.Limiter` (``store.limiter("api", "10/s", burst=5)``): a rate limit shared by
  every process and host.
- :class:`cairn.Run` (``with store.run("deploy-1") as run: run.step("build", build)``):
  durable runs whose finished steps replay, so a re-run resumes where the last one stopped;
  ``store.runs()`` lists, resets and prunes them.
- :class:`cairn.AsyncStore` (``async with cairn.AsyncStore() as store:``): the same store for
  asyncio code, every call a coroutine that never blocks the event loop: its
  :class:`cairn.AsyncLedger` waits for work with ``async for claim in ledger.claims(wait="5m"):``,
  its locks (:class:`cairn.AsyncLock`), limiters (:class:`cairn.AsyncLimiter`), durable runs
  (:class:`cairn.AsyncRun`) and jobs (:class:`cairn.AsyncJob`) wait with ``await``.
- :mod:`cairn.errors`: every failure is a :class:`cairn.Error`, and also the builtin you
  would catch (``BusyError`` is a ``TimeoutError``, ``SQLError`` a ``ValueError``...).
- :mod:`cairn.testing`: ``ManualClock``, to test expiry and leases without sleeping.
- :func:`cairn.parse_duration`: how every duration (``ttl=``, ``lease=``, ``delay=``...) is
  written.
- The repository's README.md ("From Python") and docs/NAMES.md, which maps each operation's
  CLI, Python and Rust names.

A job that skips what a previous run finished, and workers sharing a queue:

>>> import cairn
>>> store = cairn.Store(":memory:")           # cairn.Store() opens the CLI's default store
>>> invoices = store.ledger("invoices")
>>> for id in invoices.each(["inv-1", "inv-2"]):  # marked done as each body finishes
...     pass                                  # the work
>>> invoices.filter_new(["inv-1", "inv-2", "inv-3"])
['inv-3']
>>> queue = store.ledger("emails")
>>> queue.enqueue(["msg-1", "msg-2"])
2
>>> while (claim := queue.claim_next(lease="5m")) is not None:
...     with claim:                           # complete() on success, fail() on an exception
...         pass                              # send claim.id
>>> queue.counts().done
2
>>> store.cache("pages").get_or_set("https://example.com", lambda: "<html>", ttl="1h")
'<html>'

In one process, open a store's file only through cairn (see :class:`SQLiteCopyError`).
"""

from __future__ import annotations

from . import _cairn, _guard
from ._cache import Cache, CacheLimits, CacheStats
from ._checkpoint import Checkpoint
from ._ledger import Claim, Item, ItemState, Ledger, LedgerCounts, LedgerPolicy, QueueItem
from ._job import Job, JobHealth, JobInfo, JobRun, Slot
from ._limit import Limiter
from ._lock import Lock, LockHolder
from ._migrate import MigrationReport, MigrationStatus, Steps, migrate_file, migration_status_of_file
from ._run import Run, RunInfo, Runs, StepInfo
from ._store import Store, Transaction
from ._aio_cache import AsyncCache, AsyncCheckpoint
from ._aio_ledger import AsyncClaim, AsyncLedger
from ._aio_store import AsyncStore, AsyncTransaction
from ._aio_job import AsyncJob
from ._aio_limit import AsyncLimiter
from ._aio_lock import AsyncLock
from ._aio_run import AsyncRun, AsyncRuns
from ._blocking import BlockingCallWarning
from ._types import Duration, Id, Value
from .errors import (
    BusyError,
    ClosedError,
    CorruptError,
    DecodeError,
    DiskFullError,
    Error,
    FileSystemError,
    ForeignDatabaseError,
    ForkedError,
    InternalError,
    InvalidInputError,
    LeaseLostError,
    LockHeldError,
    MigrationError,
    NotADatabaseError,
    NothingDueError,
    ReadOnlyError,
    RunHeldError,
    SchemaError,
    SchemaTooNewError,
    SchemaTooOldError,
    SQLError,
    SQLiteCopyError,
    StepChangedError,
    UnavailableError,
    WalUnavailableError,
)

__all__ = [
    "Store",
    "Transaction",
    "AsyncStore",
    "AsyncTransaction",
    "AsyncCache",
    "AsyncCheckpoint",
    "AsyncLedger",
    "AsyncClaim",
    "AsyncLock",
    "AsyncLimiter",
    "AsyncRun",
    "AsyncRuns",
    "AsyncJob",
    "BlockingCallWarning",
    "Cache",
    "CacheLimits",
    "CacheStats",
    "Ledger",
    "Claim",
    "Item",
    "ItemState",
    "LedgerCounts",
    "LedgerPolicy",
    "QueueItem",
    "Checkpoint",
    "Limiter",
    "Job",
    "JobHealth",
    "JobInfo",
    "JobRun",
    "Slot",
    "Lock",
    "LockHolder",
    "Run",
    "RunInfo",
    "Runs",
    "StepInfo",
    "MigrationReport",
    "MigrationStatus",
    "migrate_file",
    "migration_status_of_file",
    "default_path",
    "parse_duration",
    "Duration",
    "Id",
    "Steps",
    "Value",
    "SQLITE_VERSION",
    "Error",
    "BusyError",
    "ClosedError",
    "CorruptError",
    "DecodeError",
    "DiskFullError",
    "FileSystemError",
    "ForeignDatabaseError",
    "ForkedError",
    "InternalError",
    "InvalidInputError",
    "LeaseLostError",
    "LockHeldError",
    "MigrationError",
    "NotADatabaseError",
    "NothingDueError",
    "RunHeldError",
    "StepChangedError",
    "ReadOnlyError",
    "SchemaError",
    "SchemaTooNewError",
    "SchemaTooOldError",
    "SQLError",
    "SQLiteCopyError",
    "UnavailableError",
    "WalUnavailableError",
]

#: The version of the SQLite cairn carries (not the ``sqlite3`` module's).
SQLITE_VERSION: str = _cairn.SQLITE_VERSION


def default_path() -> str:
    """The store ``cairn.Store()`` opens, as the CLI does: ``$CAIRN_DB``, else
    ``$XDG_STATE_HOME/cairn/state.db``, else ``~/.local/state/cairn/state.db``."""
    return _cairn.default_path()


def parse_duration(text: str) -> float:
    """Seconds in a duration written as text. Every duration cairn takes (``ttl=``,
    ``lease=``, ``timeout=``, ``delay=``, ``retry_delay=``, ``older_than``, ``busy_timeout``,
    ``fill_timeout``: a :data:`cairn.Duration`) is seconds (an ``int`` or a ``float``), a
    ``datetime.timedelta``, or text in this grammar, the CLI's and Rust's too:

    - numbers with units, adding up: ``"90s"``, ``"10m"``, ``"1h30m"``, ``"1h 30m"``,
      ``"1.5h"`` (fractions are fine), ``"2d"``, ``"500ms"``, ``"5 minutes"``;
    - units in any case: ``w``, ``d``, ``h``, ``m``, ``s``, ``ms``, ``us``, ``ns``, or spelled
      out (``weeks``, ``day``, ``hr``, ``min``, ``secs``, ``milliseconds``...);
    - refused (:class:`InvalidInputError`): a bare number (``"10"``: write ``"10s"``), ``"M"``
      alone (minutes or months? write ``"m"``), and months and years in any spelling (write
      days: ``"30d"``).

    >>> import cairn
    >>> cairn.parse_duration("1h30m"), cairn.parse_duration("1.5H"), cairn.parse_duration("5 minutes")
    (5400.0, 5400.0, 300.0)
    """
    return _cairn.parse_duration(text)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("cairn-state")  # the distribution's name; the import is `cairn`
    except Exception:  # noqa: BLE001 - not installed as a distribution (a source tree)
        return "0+unknown"


__version__ = _version()

_guard.install()
