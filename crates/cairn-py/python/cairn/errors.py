"""cairn's exceptions.

Every failure of the library is a :class:`cairn.Error`; each kind has its own subclass, which
also derives from the builtin exception a Python programmer would reach for (a busy store is a
:class:`TimeoutError`, a read-only one a :class:`PermissionError`, bad input a
:class:`ValueError`...), so ``except TimeoutError:`` keeps working. Messages are the Rust
library's own, with its API's names given as Python's (``tx.execute``, not ``Tx::execute``):
they name the file and say what to do next.

All of them pickle, so they cross ``multiprocessing`` boundaries intact.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "BusyError",
    "NotADatabaseError",
    "CorruptError",
    "ForeignDatabaseError",
    "SchemaError",
    "SchemaTooNewError",
    "SchemaTooOldError",
    "ReadOnlyError",
    "DiskFullError",
    "FileSystemError",
    "WalUnavailableError",
    "InvalidInputError",
    "SQLError",
    "DecodeError",
    "MigrationError",
    "LeaseLostError",
    "LockHeldError",
    "RunHeldError",
    "StepChangedError",
    "NothingDueError",
    "UnavailableError",
    "InternalError",
    "ClosedError",
    "ForkedError",
    "SQLiteCopyError",
]


def _rebuild(cls: type[Error], args: tuple[object, ...], errno: object, state: dict[str, object]) -> Error:
    e = cls(*args)
    if errno is not None:
        e.errno = errno  # type: ignore[attr-defined]
    e.__dict__.update(state)
    return e


class Error(Exception):
    """The base class of every cairn error. ``kind`` names the library's error kind."""

    kind: str = "error"

    def __reduce__(self) -> tuple[object, ...]:
        # OSError's own reduce drops an errno set after construction; keep it.
        errno = self.errno if isinstance(self, OSError) else None
        return (_rebuild, (type(self), self.args, errno, self.__dict__))


class BusyError(Error, TimeoutError):
    """Another process held the file's write lock for longer than the busy timeout."""

    kind = "busy"


class NotADatabaseError(Error):
    """The file exists but is not a SQLite database; cairn left it untouched."""

    kind = "not_a_database"


class CorruptError(Error):
    """The file is a damaged SQLite database, or a cairn store whose tables were altered."""

    kind = "corrupt"


class ForeignDatabaseError(Error):
    """The file is a SQLite database of another application; cairn will not modify it."""

    kind = "foreign_database"


class SchemaError(Error):
    """The file's schema version does not match this version of cairn (see the subclasses)."""

    kind = "schema"


class SchemaTooNewError(SchemaError):
    """The file's schema is newer than this program knows: upgrade the program."""

    kind = "schema_too_new"


class SchemaTooOldError(SchemaError):
    """A read-only open found a schema that needs migrating first: open it read-write once."""

    kind = "schema_too_old"


class ReadOnlyError(Error, PermissionError):
    """A write was refused: the file, its directory or the store is read-only."""

    kind = "read_only"


class DiskFullError(Error, OSError):
    """The disk is full; the transaction was rolled back and committed data is intact."""

    kind = "disk_full"


class FileSystemError(Error, OSError):
    """An operating-system error on the file or its directory (``errno`` is set)."""

    kind = "io"


class WalUnavailableError(Error):
    """WAL journal mode could not be enabled (a file system without shared memory)."""

    kind = "wal_unavailable"


class InvalidInputError(Error, ValueError):
    """An argument was out of range or malformed: an empty key, a zero TTL, a NaN..."""

    kind = "invalid_input"


class SQLError(InvalidInputError):
    """A statement of your own (``store.query``, ``store.execute``, ``tx.execute``) failed on
    its own terms: a syntax error, an unknown table or column, a constraint it broke, a
    parameter of the wrong type or count. The message gives SQLite's or the server's words and
    the statement; nothing of the statement was kept. An :class:`InvalidInputError`, and so a
    :class:`ValueError`: the statement is the input to fix. (A statement that cairn refuses
    before running it, one that reaches cairn's own tables, say, is a plain
    :class:`InvalidInputError`.) Its ``kind`` is ``"sql"``, a part of the library's
    ``invalid_input``."""

    kind = "sql"


class DecodeError(Error, ValueError):
    """A stored value could not be read as the type it claims to be."""

    kind = "decode"


class MigrationError(Error):
    """A migration step failed and was rolled back; ``__cause__`` is the step's own error."""

    kind = "migration"


class LeaseLostError(Error):
    """A claim or lock was taken over after its lease ran out: do not record the work."""

    kind = "lease_lost"


class LockHeldError(Error, TimeoutError):
    """A named lock was not acquired within the given timeout (0: not free at once)."""

    kind = "lock_held"


class RunHeldError(LockHeldError):
    """A durable run (:meth:`cairn.Store.run`) is held by another live attempt: another
    process, or another ``with store.run(...)`` of this one. One attempt at a time; pass
    ``wait=`` to wait for it."""

    kind = "run_held"


class StepChangedError(Error, ValueError):
    """A step a run recorded was asked for again with another ``version`` (for the CLI,
    another command): its recorded result would be stale. Reset the run from that step
    (``store.runs().reset(id, from_step=name)`` or ``cairn run reset ID --from NAME``) to run
    it again."""

    kind = "step_changed"


class NothingDueError(Error, LookupError):
    """:meth:`cairn.Ledger.take` found no item due: the queue is empty, or what it holds is
    claimed by other workers or not due yet. (:meth:`~cairn.Ledger.claim_next` returns None
    instead, and ``for claim in ledger.claims(wait=...)`` waits for items.)"""

    kind = "nothing_due"


class UnavailableError(Error, ConnectionError):
    """The database server (a ``postgres://`` store) could not be reached, or the connection
    to it was lost: check that it runs and is reachable, then retry. What was not committed
    was rolled back by the server. ``maybe_committed`` is True when the connection went after
    a commit was sent: it may or may not have taken effect, so check before redoing the work
    (completing the same claim again is safe). The message shows the server's URL without its
    password."""

    kind = "unavailable"
    #: True if the connection was lost after a commit was sent.
    maybe_committed: bool = False


class InternalError(Error):
    """Any other failure of SQLite or of the library."""

    kind = "internal"


class ClosedError(Error, ValueError):
    """The store was used after ``close()``."""

    kind = "closed"


class ForkedError(Error):
    """A connection opened by a parent process was used in a forked child."""

    kind = "forked"


class SQLiteCopyError(Error):
    """A second copy of SQLite (the ``sqlite3`` module, or a plain ``open()``) was about to
    open a store file that a live :class:`cairn.Store` of this process has open, or the
    reverse. Two SQLite libraries in one process do not see each other's locks, and closing
    any other descriptor of the file drops cairn's: committed writes can be lost. Use the
    store's own connection (``store.query``, ``tx.execute``), close the store first, or do it
    from another process."""

    kind = "sqlite_copy"
