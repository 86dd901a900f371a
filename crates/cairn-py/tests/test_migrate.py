"""Migrations from Python: the seed's user_version runner for your own file, and scoped
migrations inside the store's file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import cairn

STEPS = [
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "ALTER TABLE users ADD COLUMN email TEXT",
]


def _user_version(p: Path) -> int:
    con = sqlite3.connect(p)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def test_migrate_file_applies_each_step_once_and_sets_user_version(tmp_path: Path) -> None:
    p = tmp_path / "app.db"
    r = cairn.migrate_file(p, STEPS)
    assert (r.from_version, r.to_version, r.applied) == (0, 2, [1, 2])
    assert cairn.migrate_file(p, STEPS).applied == [], "re-running is a no-op"
    r = cairn.migrate_file(p, [*STEPS, "CREATE INDEX users_name ON users (name)"])
    assert (r.from_version, r.to_version, r.applied) == (2, 3, [3])
    assert _user_version(p) == 3
    status = cairn.migration_status_of_file(p, STEPS)
    assert (status.current, status.latest, status.is_ahead, status.pending) == (3, 2, True, [])
    with pytest.raises(cairn.SchemaTooNewError, match="version 3, newer than version 2"):
        cairn.migrate_file(p, STEPS)


def test_a_directory_of_numbered_sql_files_is_a_list_of_steps(tmp_path: Path) -> None:
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "001_users.sql").write_text(STEPS[0])
    (d / "002_email.sql").write_text(STEPS[1])
    (d / "README.md").write_text("ignored")
    p = tmp_path / "app.db"
    assert cairn.migration_status_of_file(p, d).pending == [1, 2]
    assert not p.exists(), "a status check creates nothing"
    assert cairn.migrate_file(p, str(d)).applied == [1, 2]
    (d / "004_gap.sql").write_text("SELECT 1")
    with pytest.raises(cairn.InvalidInputError, match="expected migration number 3"):
        cairn.migrate_file(p, d)


def test_a_failing_step_rolls_back_and_leaves_the_previous_version(tmp_path: Path) -> None:
    p = tmp_path / "app.db"
    with pytest.raises(cairn.MigrationError, match="step 2 failed"):
        cairn.migrate_file(p, [STEPS[0], "ALTER TABLE nope ADD COLUMN x"])
    assert _user_version(p) == 1


def test_steps_must_be_sql_strings_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(cairn.InvalidInputError, match="not one; give a list of SQL strings"):
        cairn.migrate_file(tmp_path / "a.db", "CREATE TABLE t (a)")
    with pytest.raises(TypeError, match="step 2"):
        cairn.migrate_file(tmp_path / "a.db", ["CREATE TABLE t (a)", 7])  # type: ignore[list-item]


def test_migrate_file_refuses_a_cairn_store(store: cairn.Store, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    cairn.Store(other).close()
    with pytest.raises(cairn.InvalidInputError, match="is a cairn store"):
        cairn.migrate_file(other, STEPS)


def test_store_migrate_versions_scopes_separately_inside_the_store(store: cairn.Store) -> None:
    r = store.migrate("app", STEPS)
    assert r.applied == [1, 2]
    assert store.migrate("reports", ["CREATE TABLE r (a)"]).applied == [1]
    assert store.migration_status("app", STEPS).current == 2
    store.execute("INSERT INTO users (name, email) VALUES (?1, ?2)", ["ada", None])
    assert store.query("SELECT name, email FROM users") == [("ada", None)]
    with pytest.raises(cairn.InvalidInputError, match="cairn_"):
        store.execute("DELETE FROM cairn_cache")
    with pytest.raises(cairn.InvalidInputError):
        store.query("INSERT INTO users (name) VALUES ('x')")
    with pytest.raises(TypeError, match="named parameters"):
        store.query("SELECT ?1", {"a": 1})  # type: ignore[arg-type]


def test_sql_values_come_back_with_their_storage_class(store: cairn.Store) -> None:
    store.migrate("app", ["CREATE TABLE v (a, b, c, d, e)"])
    store.execute("INSERT INTO v VALUES (?1, ?2, ?3, ?4, ?5)", (None, 1, 1.5, "t", b"\x00"))
    assert store.query("SELECT * FROM v") == [(None, 1, 1.5, "t", b"\x00")]
    with pytest.raises(TypeError):
        store.execute("INSERT INTO v VALUES (?1, 0, 0, 0, 0)", (object(),))
