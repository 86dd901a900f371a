"""Your own SQL on the store's connection (``store.query``, ``store.execute``,
``tx.execute``): a statement that fails on its own terms is a :class:`cairn.SQLError` (an
``InvalidInputError``, a ``ValueError``) naming the statement, on both engines, and the
messages name the Python API, not the Rust one."""

from __future__ import annotations

from typing import Callable

import pytest

import cairn


def _orders(store: cairn.Store) -> None:
    store.migrate("app", ["CREATE TABLE orders (id TEXT PRIMARY KEY, qty INTEGER)"])
    store.execute("INSERT INTO orders VALUES ('o-1', 1)")


def test_a_failing_statement_of_your_own_is_sql_error_a_value_error_naming_it(
    any_store: cairn.Store, engine: str, own_tables: None
) -> None:
    _orders(any_store)
    p = "$" if engine == "postgres" else "?"
    failures: list[tuple[str, Callable[[], object]]] = [
        ("SELEC 1", lambda: any_store.execute("SELEC 1")),
        ("no_such_table", lambda: any_store.query("SELECT * FROM no_such_table")),
        ("SELECT nope", lambda: any_store.query("SELECT nope FROM orders")),
        ("VALUES ('o-1', 2)", lambda: any_store.execute("INSERT INTO orders VALUES ('o-1', 2)")),
        (f"VALUES ({p}1, {p}2)", lambda: any_store.execute(f"INSERT INTO orders VALUES ({p}1, {p}2)", ("o-9",))),
    ]
    for statement, call in failures:
        with pytest.raises(cairn.SQLError) as e:
            call()
        assert isinstance(e.value, cairn.InvalidInputError) and isinstance(e.value, ValueError)
        assert "your SQL statement failed" in str(e.value) and statement in str(e.value), str(e.value)
    with pytest.raises(cairn.SQLError, match="fix the statement"):
        with any_store.transaction() as tx:
            tx.execute("INSERT INTO orders VALUES ('o-1', 3)")
    assert any_store.query("SELECT qty FROM orders") == [(1,)], "nothing of the failed statements was kept"


def test_refusals_name_the_python_api_not_the_rust_one(any_store: cairn.Store, own_tables: None) -> None:
    _orders(any_store)
    with pytest.raises(cairn.InvalidInputError) as e:
        any_store.query("INSERT INTO orders VALUES ('o-2', 1)")
    assert "tx.execute" in str(e.value) and "::" not in str(e.value), str(e.value)
    assert not isinstance(e.value, cairn.SQLError), "refused before it ran: not the statement's own failure"
    with any_store.transaction() as tx:
        with pytest.raises(cairn.InvalidInputError) as e:
            any_store.cache("c").set("k", 1)
        assert "the transaction's handles" in str(e.value) and "Tx" not in str(e.value), str(e.value)
        tx.cache("c").set("k", 1)


def test_transaction_control_in_your_sql_points_to_the_with_block(store: cairn.Store) -> None:
    with pytest.raises(cairn.InvalidInputError) as e:
        store.execute("BEGIN")
    assert "with store.transaction() as tx:" in str(e.value) and "::" not in str(e.value), str(e.value)


def test_migrating_a_store_as_a_file_of_your_own_points_to_store_migrate(path: str) -> None:
    cairn.Store(path).close()
    with pytest.raises(cairn.InvalidInputError) as e:
        cairn.migrate_file(path, ["CREATE TABLE t (a)"])
    assert "store.migrate(scope, steps)" in str(e.value) and "::" not in str(e.value), str(e.value)
