"""Every error kind reachable from Python arrives as its own class, with the natural builtin
base, the library's message text, and survives pickling (multiprocessing)."""

from __future__ import annotations

import errno
import os
import pickle
import sqlite3
import threading
from pathlib import Path

import pytest

import cairn
from cairn.testing import ManualClock

BASES = [
    (cairn.BusyError, TimeoutError),
    (cairn.ReadOnlyError, PermissionError),
    (cairn.DiskFullError, OSError),
    (cairn.FileSystemError, OSError),
    (cairn.InvalidInputError, ValueError),
    (cairn.DecodeError, ValueError),
    (cairn.ClosedError, ValueError),
    (cairn.LockHeldError, TimeoutError),
    (cairn.UnavailableError, ConnectionError),
    (cairn.SchemaTooNewError, cairn.SchemaError),
    (cairn.SchemaTooOldError, cairn.SchemaError),
    (cairn.SQLError, cairn.InvalidInputError),
]


@pytest.mark.parametrize("cls, base", BASES, ids=lambda c: c.__name__)
def test_each_class_derives_from_cairn_error_and_its_builtin(cls: type, base: type) -> None:
    assert issubclass(cls, cairn.Error)
    assert issubclass(cls, base)


def test_every_exported_error_class_has_a_docstring_and_a_kind() -> None:
    classes = [getattr(cairn, n) for n in cairn.__all__ if n.endswith("Error")]
    assert len(classes) >= 20
    kinds = set()
    for cls in classes:
        assert cls.__doc__, cls
        kinds.add(cls.kind)
    assert len(kinds) == len(classes), "each class names its own kind"


@pytest.mark.parametrize(
    "cls", [getattr(cairn, n) for n in cairn.__all__ if n.endswith("Error")], ids=lambda c: c.__name__
)
def test_every_class_pickles_with_its_message_and_attributes(cls: type) -> None:
    e = cls("the message")
    if isinstance(e, OSError):
        e.errno = errno.ENOSPC
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls
    assert str(back) == "the message"
    if isinstance(e, OSError):
        assert back.errno == errno.ENOSPC


def test_an_unavailable_errors_maybe_committed_survives_pickling() -> None:
    e = cairn.UnavailableError("postgres://db/jobs: the database server is unavailable")
    assert e.maybe_committed is False, "False unless the library said a commit was sent"
    e.maybe_committed = True
    back = pickle.loads(pickle.dumps(e))
    assert back.maybe_committed is True and str(back) == str(e)


def test_a_file_that_is_not_sqlite_is_not_a_database_and_left_untouched(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    content = b"this is a text file, not SQLite, and long enough to be checked" * 10
    p.write_bytes(content)
    with pytest.raises(cairn.NotADatabaseError) as e:
        cairn.Store(p)
    assert str(e.value) == (
        f"{p} is not a SQLite database (or it is encrypted); cairn left it untouched: choose another path"
    )
    assert p.read_bytes() == content


def test_another_applications_database_is_foreign(tmp_path: Path) -> None:
    p = tmp_path / "app.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(cairn.ForeignDatabaseError, match="another application"):
        cairn.Store(p)


def _user_version(p: Path, v: int) -> None:
    con = sqlite3.connect(p)
    con.execute(f"PRAGMA user_version = {v}")
    con.commit()
    con.close()


def test_a_store_from_a_newer_cairn_is_schema_too_new(tmp_path: Path) -> None:
    p = tmp_path / "s.db"
    cairn.Store(p).close()
    _user_version(p, 999)
    with pytest.raises(cairn.SchemaTooNewError, match="version 999, newer than"):
        cairn.Store(p)


def test_a_read_only_open_of_an_older_schema_is_schema_too_old(tmp_path: Path) -> None:
    p = tmp_path / "s.db"
    cairn.Store(p).close()
    _user_version(p, 1)
    with pytest.raises(cairn.SchemaTooOldError, match="open it read-write once"):
        cairn.Store(p, read_only=True)


def test_a_damaged_store_is_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "s.db"
    s = cairn.Store(p)
    s.cache().set("k", "v" * 10_000)
    s.close()
    data = bytearray(p.read_bytes())
    data[4096:8192] = b"\xa5" * 4096  # the second page: cairn's tables
    p.write_bytes(bytes(data))
    with pytest.raises(cairn.CorruptError):
        s = cairn.Store(p)
        s.integrity_check()
        s.cache().get("k")


def test_writing_a_read_only_store_is_read_only_and_a_permission_error(path: str) -> None:
    cairn.Store(path).close()
    s = cairn.Store(path, read_only=True)
    with pytest.raises(PermissionError, match="opened read-only"):
        s.cache().set("k", 1)
    assert s.read_only
    s.close()


def test_a_path_below_a_file_is_a_file_system_error_with_errno(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(cairn.FileSystemError, match="cannot create directory") as e:
        cairn.Store(f / "sub" / "s.db")
    assert e.value.errno == errno.EEXIST
    assert isinstance(e.value, OSError)


def test_a_write_waiting_past_the_busy_timeout_is_busy_and_a_timeout_error(path: str) -> None:
    holder = cairn.Store(path)
    waiter = cairn.Store(path, busy_timeout=0.05)
    with holder.transaction() as tx:
        tx.cache().set("k", 1)
        with pytest.raises(TimeoutError, match="still locked by another process") as e:
            waiter.cache().set("k", 2)
        assert isinstance(e.value, cairn.BusyError)
    waiter.cache().set("k", 2)
    holder.close()
    waiter.close()


def test_a_failed_migration_step_is_migration_error_caused_by_the_steps_own_error(store: cairn.Store) -> None:
    with pytest.raises(cairn.MigrationError, match="step 2 failed and was rolled back") as e:
        store.migrate("app", ["CREATE TABLE t (a)", "THIS IS NOT SQL"])
    assert isinstance(e.value.__cause__, cairn.Error)
    assert "syntax error" in str(e.value.__cause__)
    assert store.migration_status("app", ["CREATE TABLE t (a)"]).current == 1


def test_a_claim_completed_after_another_worker_took_it_over_is_lease_lost(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    ledger = any_clocked.ledger("jobs")
    ledger.enqueue(["a"])
    first = ledger.claim_next(lease=10, worker="w1")
    assert first is not None
    clock.advance(11)
    second = ledger.claim_next(lease=10, worker="w2")
    assert second is not None and second.id == "a" and second.token > first.token
    with pytest.raises(cairn.LeaseLostError, match="'a' held by 'w1' was taken over"):
        first.complete()
    second.complete(result=7)
    second.complete(result=7)  # again, as after a lost commit: changes nothing
    assert ledger.is_done("a") and ledger.result("a") == 7


def test_bad_arguments_are_exceptions_not_crashes(store: cairn.Store) -> None:
    with pytest.raises(TypeError):
        cairn.Store(store.path, no_such_option=1)  # type: ignore[call-arg]
    with pytest.raises(cairn.InvalidInputError, match="durability"):
        cairn.Store(":memory:", durability="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cairn.Store(":memory:", read_only="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cairn.Store(42)  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        cairn.Store(":memory:", busy_timeout=-1)
    with pytest.raises(TypeError):
        store.cache("c").set("k")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        store.ledger("l").filter_new("one-str")
    with pytest.raises(TypeError):
        store.ledger("l").mark_done(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.ledger("l").mark_done(True)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        store.cache("c").incr("k", 2**70)


def test_a_closed_store_raises_closed_error_everywhere(path: str) -> None:
    s = cairn.Store(path)
    c = s.cache("c")
    s.close()
    s.close()  # twice is fine
    assert s.closed
    for call in (
        lambda: c.get("k"),
        lambda: c.set("k", 1),
        lambda: s.ledger("l").is_done("x"),
        lambda: s.checkpoint("j").get(),
        lambda: s.sweep(),
        lambda: s.transaction().__enter__(),
    ):
        with pytest.raises(cairn.ClosedError, match="closed"):
            call()
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            c.get("k")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(timeout=60)
    assert len(errors) == 1 and isinstance(errors[0], cairn.ClosedError)
    # The file is free again, even for the sqlite3 module.
    sqlite3.connect(path).close()


def test_closing_from_inside_a_compute_callback_is_refused(store: cairn.Store) -> None:
    def compute() -> int:
        store._conn().close()
        return 1

    with pytest.raises(cairn.InvalidInputError, match="inside one of its own callbacks"):
        store.cache().get_or_set("k", compute)
    assert store.cache().get_or_set("k", lambda: 2) == 2


def test_read_only_if_unwritable_opens_a_writable_store_read_write(path: str) -> None:
    s = cairn.Store(path, read_only_if_unwritable=True)
    assert not s.read_only
    s.cache().set("k", "v")
    s.close()


def test_a_postgres_url_opens_a_server_not_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # Nothing listens on port 1: the attempt says the server is unavailable.
    with pytest.raises(cairn.UnavailableError, match="the database server is unavailable"):
        cairn.Store("postgres://127.0.0.1:1/jobs")
    monkeypatch.setenv("CAIRN_DB", "postgresql://127.0.0.1:1/jobs")
    assert cairn.default_path() == "postgresql://127.0.0.1:1/jobs"
    with pytest.raises(cairn.UnavailableError, match="postgresql://127.0.0.1:1/jobs"):
        cairn.Store()
    assert list(tmp_path.iterdir()) == [], "nothing was created for it"


def test_a_negative_duration_is_named_in_the_duration_grammar() -> None:
    """A `timedelta(days=-2)` TTL was reported as "-172800 seconds": say "-2d" too, as the
    user wrote it, and keep small or fractional ones in seconds."""
    import datetime

    with cairn.Store(":memory:") as store:
        c = store.cache("c")
        for ttl in (datetime.timedelta(days=-2), -172800, -172800.0):
            with pytest.raises(cairn.InvalidInputError, match=r"a TTL of -2d \(-172800 seconds\) is negative"):
                c.set("k", "v", ttl=ttl)
        with pytest.raises(cairn.InvalidInputError, match=r"a TTL of -1.5 seconds is negative"):
            c.set("k", "v", ttl=-1.5)
        assert "k" not in c
