"""Migrations: the user's own schema, in the user's own file or in the store's file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple, Union

from . import _cairn, _guard
from ._types import StrPath
from .errors import InvalidInputError

#: Migration steps: a list of SQL strings (step N takes the schema to version N), or the
#: path of a directory of ``NNN_name.sql`` files numbered from 001 without gaps.
Steps = Union[Iterable[str], StrPath]


@dataclass(frozen=True)
class MigrationReport:
    """What a migration run did."""

    #: The version found before the run.
    from_version: int
    #: The version after the run.
    to_version: int
    #: The versions this run applied (steps applied by a concurrent process are not listed).
    applied: List[int]


@dataclass(frozen=True)
class MigrationStatus:
    """Where a schema stands against a list of steps, without changing anything."""

    current: int
    latest: int

    @property
    def pending(self) -> List[int]:
        """The versions a run would apply, in order."""
        return list(range(self.current + 1, self.latest + 1))

    @property
    def is_ahead(self) -> bool:
        """True if the file is newer than the steps: a run would refuse it."""
        return self.current > self.latest


def report_from(raw: _cairn.RawMigrationReport) -> MigrationReport:
    """The extension's record of a run, as a :class:`MigrationReport`."""
    return MigrationReport(from_version=raw.from_version, to_version=raw.to_version, applied=raw.applied)


def status_from(raw: _cairn.RawMigrationStatus) -> MigrationStatus:
    """The extension's record of a status, as a :class:`MigrationStatus`."""
    return MigrationStatus(current=raw.current, latest=raw.latest)


def steps_args(steps: Steps) -> Tuple[Optional[List[str]], Optional[str]]:
    """``(sql_steps, directory)`` for the extension."""
    if isinstance(steps, (str, os.PathLike)):
        d = os.fspath(steps)
        if not os.path.isdir(d):
            raise InvalidInputError(
                f"invalid input: migration steps given as a str or path must name a directory of NNN_name.sql "
                f"files, and {d!r} is not one; give a list of SQL strings (one per step) instead"
            )
        return None, d
    if isinstance(steps, (bytes, bytearray)):
        raise TypeError("migration steps are a list of SQL strings or a directory path, not bytes")
    out = list(steps)
    for i, s in enumerate(out):
        if not isinstance(s, str):
            raise TypeError(f"migration step {i + 1} is {type(s).__name__}, not a str of SQL")
    return out, None


def migrate_file(path: StrPath, steps: Steps) -> MigrationReport:
    """Bring a SQLite file of your own (not a cairn store) to the latest version of `steps`,
    creating it if missing (mode 0600). The version is ``PRAGMA user_version``, as most SQLite
    tools expect. Each step runs in its own transaction with its version bump, so a crash
    leaves the file at a clean version; re-running is a no-op; several processes may run the
    same list at once. A file whose version is ahead of the list raises
    :class:`SchemaTooNewError`; a failing step raises :class:`MigrationError` (the file stays
    at the version before it).

    The file must not be open in this process through the ``sqlite3`` module meanwhile
    (:class:`SQLiteCopyError`)."""
    sql, d = steps_args(steps)
    with _guard.holding(path):
        raw = _cairn.migrate_file(os.fspath(path), sql, d)
    return report_from(raw)


def migration_status_of_file(path: StrPath, steps: Steps) -> MigrationStatus:
    """Where a file of your own stands against `steps` (a missing file is at version 0 and is
    not created)."""
    sql, d = steps_args(steps)
    with _guard.holding(path):
        raw = _cairn.migration_status_of_file(os.fspath(path), sql, d)
    return status_from(raw)
