"""One file, one SQLite per process: the sqlite3 module (a second copy of SQLite) and plain
descriptors are kept off a file a live cairn.Store has open, in either order, because either
loses committed writes (see cairn/_guard.py)."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

import pytest

import cairn

from conftest import Child


def test_sqlite3_connect_of_an_open_store_is_refused_by_every_name(
    store: cairn.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = store.path
    link = tmp_path / "link.db"
    link.symlink_to(p)
    monkeypatch.chdir(tmp_path)
    names = [
        p,
        Path(p),
        os.path.relpath(p),
        str(link),
        p.encode(),
        f"file:{p}?mode=ro",
        f"file://localhost{urllib.parse.quote(p)}",
    ]
    for name in names:
        with pytest.raises(cairn.SQLiteCopyError, match="second copy of SQLite"):
            sqlite3.connect(name, uri=isinstance(name, str) and name.startswith("file:"))  # type: ignore[arg-type]
    # Other files, and in-memory databases, are none of cairn's business.
    sqlite3.connect(":memory:").close()
    sqlite3.connect(tmp_path / "other.db").close()


def test_plain_opens_of_the_store_and_its_side_files_are_refused(store: cairn.Store) -> None:
    for suffix in ("", "-wal", "-shm"):
        with pytest.raises(cairn.SQLiteCopyError, match="drops every lock"):
            open(store.path + suffix, "rb")
        with pytest.raises(cairn.SQLiteCopyError):
            os.open(store.path + suffix, os.O_RDONLY)
    with pytest.raises(cairn.SQLiteCopyError):
        Path(store.path).read_bytes()


def test_other_names_of_the_store_file_are_refused_by_device_and_inode(
    store: cairn.Store, tmp_path: Path
) -> None:
    """Issue 19.11: a hard link, or a symbolic link whose name is not the store's, named the
    same file by another name, and the guard compared names."""
    hard = tmp_path / "hard-link"
    os.link(store.path, hard)
    named_otherwise = tmp_path / "notes.txt"
    named_otherwise.symlink_to(store.path)
    wal_named_otherwise = tmp_path / "log.txt"
    wal_named_otherwise.symlink_to(store.path + "-wal")
    for name in (hard, named_otherwise, wal_named_otherwise):
        with pytest.raises(cairn.SQLiteCopyError, match="drops every lock"):
            open(name, "rb")
        with pytest.raises(cairn.SQLiteCopyError, match="the same file as"):
            os.open(name, os.O_RDONLY)
    with pytest.raises(cairn.SQLiteCopyError, match="second copy of SQLite"):
        sqlite3.connect(hard)
    # Other files, beside it or elsewhere, are none of cairn's business.
    (tmp_path / "unrelated.txt").write_text("x")
    sqlite3.connect(tmp_path / "other.db").close()


def test_opening_a_store_whose_file_is_open_under_a_hard_link_is_refused(path: str, tmp_path: Path) -> None:
    """Issue 19.11, the other order: the descriptor was opened by another name first."""
    cairn.Store(path).close()
    hard = tmp_path / "hard-link.db"
    os.link(path, hard)
    with open(hard, "rb"):
        with pytest.raises(cairn.SQLiteCopyError, match="descriptor"):
            cairn.Store(path)
    con = sqlite3.connect(hard)
    con.execute("SELECT 1 FROM cairn_cache").fetchall()
    with pytest.raises(cairn.SQLiteCopyError, match="already open in this process outside cairn"):
        cairn.Store(path)
    con.close()
    cairn.Store(path).close()


def test_after_close_the_file_is_free_again(path: str) -> None:
    s = cairn.Store(path)
    s.cache().set("k", "v")
    s.close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM cairn_cache").fetchone() == (1,)
    con.close()
    Path(path).read_bytes()


def test_a_store_stays_guarded_while_any_store_object_of_the_path_lives(path: str) -> None:
    a, b = cairn.Store(path), cairn.Store(path)
    a.close()
    with pytest.raises(cairn.SQLiteCopyError):
        sqlite3.connect(path)
    b.close()
    sqlite3.connect(path).close()


def test_a_store_dropped_without_close_releases_the_file(path: str) -> None:
    import gc

    s = cairn.Store(path)
    s.cache().set("k", 1)
    del s
    gc.collect()
    sqlite3.connect(path).close()


def test_opening_a_store_the_sqlite3_module_already_has_open_is_refused(path: str) -> None:
    cairn.Store(path).close()
    con = sqlite3.connect(path)
    con.execute("SELECT 1 FROM cairn_cache").fetchall()
    with pytest.raises(cairn.SQLiteCopyError, match="already open in this process outside cairn"):
        cairn.Store(path)
    con.close()
    cairn.Store(path).close()


def test_opening_a_store_whose_file_is_open_for_reading_is_refused(path: str) -> None:
    cairn.Store(path).close()
    with open(path, "rb"):
        with pytest.raises(cairn.SQLiteCopyError, match="descriptor"):
            cairn.Store(path)


def test_migrate_file_refuses_a_file_the_sqlite3_module_has_open(tmp_path: Path) -> None:
    p = tmp_path / "app.db"
    con = sqlite3.connect(p)
    with pytest.raises(cairn.SQLiteCopyError):
        cairn.migrate_file(p, ["CREATE TABLE t (a)"])
    con.close()
    assert cairn.migrate_file(p, ["CREATE TABLE t (a)"]).applied == [1]


def test_in_separate_processes_sqlite3_and_cairn_share_a_file_without_losing_writes(
    path: str, children: list[Child]
) -> None:
    """The prototype's lost-writes scenario, across processes, where SQLite's locks work: a
    stdlib connection holds a write transaction while a cairn child writes; every write the
    child acknowledged is there at the end."""
    cairn.Store(path).close()
    con = sqlite3.connect(path, timeout=60, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    con.execute("CREATE TABLE mine (a)")
    con.executemany("INSERT INTO mine VALUES (?)", [(i,) for i in range(2000)])
    child = Child("write-acknowledged", path, "200")
    children.append(child)
    con.execute("COMMIT")  # the child's first write was waiting for this
    lines = child.all_lines()
    assert child.wait() == 0, child.stderr()
    assert lines == [str(i) for i in range(200)]
    assert con.execute("SELECT count(*) FROM mine").fetchone() == (2000,)
    assert con.execute("SELECT count(*) FROM cairn_cache WHERE ns = 'ack'").fetchone() == (200,)
    con.close()
