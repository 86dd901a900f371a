"""`with store.transaction() as tx:` across every feature, with the Rust semantics: tx
handles join it, store shortcuts and nesting are refused, handles end with the block."""

from __future__ import annotations

import threading

import pytest

import cairn


def test_a_block_that_ends_normally_commits_everything_together(
    any_store: cairn.Store, engine: str, own_tables: None
) -> None:
    any_store.migrate("app", ["CREATE TABLE orders (id TEXT PRIMARY KEY, qty INTEGER)"])
    p = "$" if engine == "postgres" else "?"  # the engine's own parameter syntax: $1 or ?1
    with any_store.transaction() as tx:
        assert any_store.in_transaction
        assert tx.cache("stock").incr("apples", -1) == -1
        tx.cache("orders")["o-17"] = "apples"
        assert tx.ledger("orders").mark_done("o-17")
        tx.checkpoint("export").set({"page": 3})
        assert tx.execute(f"INSERT INTO orders VALUES ({p}1, {p}2)", ("o-17", 2)) == 1
        assert tx.query("SELECT qty FROM orders") == [(2,)], "sees its own writes"
    assert not any_store.in_transaction
    assert any_store.cache("stock")["apples"] == -1
    assert any_store.cache("orders")["o-17"] == "apples"
    assert "o-17" in any_store.ledger("orders")
    assert any_store.checkpoint("export").get() == {"page": 3}
    assert any_store.query("SELECT id, qty FROM orders") == [("o-17", 2)]


def test_an_exception_rolls_everything_back_and_propagates(any_store: cairn.Store, own_tables: None) -> None:
    any_store.migrate("app", ["CREATE TABLE t (a INTEGER)"])
    any_store.cache("c")["k"] = "before"

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        with any_store.transaction() as tx:
            tx.cache("c")["k"] = "during"
            tx.ledger("l").mark_done("x")
            tx.checkpoint("j").set(1)
            tx.execute("INSERT INTO t VALUES (1)")
            raise Stop()
    assert any_store.cache("c")["k"] == "before"
    assert "x" not in any_store.ledger("l")
    assert any_store.checkpoint("j").get() is None
    assert any_store.query("SELECT count(*) FROM t") == [(0,)]


def test_keyboard_interrupt_rolls_back_too(any_store: cairn.Store) -> None:
    with pytest.raises(KeyboardInterrupt):
        with any_store.transaction() as tx:
            tx.cache().set("k", 1)
            raise KeyboardInterrupt
    assert "k" not in any_store.cache()


def test_store_shortcuts_inside_the_block_are_refused_and_say_to_use_tx(any_store: cairn.Store) -> None:
    with any_store.transaction() as tx:
        with pytest.raises(cairn.InvalidInputError, match="use the transaction.s handles"):
            any_store.cache().set("k", 1)
        with pytest.raises(cairn.InvalidInputError, match="already open"):
            with any_store.transaction():
                pass
        tx.cache().set("k", 2)
        assert any_store.cache().get("k") == 2, "reads through the store see the transaction"
    assert any_store.cache()["k"] == 2


def test_handles_of_an_ended_transaction_are_refused_not_joined_to_a_later_one(any_store: cairn.Store) -> None:
    with any_store.transaction() as tx:
        old = tx.cache()
    with pytest.raises(cairn.InvalidInputError, match="has ended"):
        old.set("k", 1)
    with any_store.transaction() as tx2:
        with pytest.raises(cairn.InvalidInputError, match="has ended"):
            old.set("k", 1)
        tx2.cache().set("k", 2)
    assert any_store.cache()["k"] == 2
    t = any_store.transaction()
    with pytest.raises(cairn.InvalidInputError, match="not open"):
        t.cache().get("k")
    with t:
        pass
    with pytest.raises(cairn.InvalidInputError, match="used once"):
        t.__enter__()


def test_memoized_calls_inside_a_block_join_it(any_store: cairn.Store) -> None:
    calls = []

    @any_store.memoize()
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    with pytest.raises(RuntimeError):
        with any_store.transaction():
            assert square(3) == 9
            raise RuntimeError
    assert square.cache_key(3) not in any_store.cache("memoize"), "rolled back with the block"  # type: ignore[attr-defined]
    with any_store.transaction():
        assert square(3) == 9
    assert square(3) == 9
    assert calls == [3, 3]


def test_a_transaction_in_one_thread_does_not_block_another_threads_reads(path: str) -> None:
    store = cairn.Store(path)
    store.cache()["k"] = "committed"
    inside = threading.Event()
    done = threading.Event()
    seen: list[object] = []

    def reader() -> None:
        assert inside.wait(timeout=60)
        seen.append(store.cache().get("k"))  # its own connection: reads the last commit (WAL)
        done.set()

    t = threading.Thread(target=reader)
    t.start()
    with store.transaction() as tx:
        tx.cache()["k"] = "uncommitted"
        inside.set()
        assert done.wait(timeout=60), "the reader was blocked by the open transaction"
    t.join(timeout=60)
    assert seen == ["committed"]
    assert store.cache()["k"] == "uncommitted"
    store.close()


def test_another_threads_write_waits_for_the_block_then_succeeds(path: str) -> None:
    store = cairn.Store(path, busy_timeout=60)
    started = threading.Event()
    results: list[int] = []

    def writer() -> None:
        started.set()
        results.append(store.cache().incr("n"))

    with store.transaction() as tx:
        tx.cache().incr("n")
        t = threading.Thread(target=writer)
        t.start()
        assert started.wait(timeout=60)
        # The writer is waiting for the file's write lock; the GIL is free meanwhile, or this
        # thread could not go on to commit.
        assert results == []
    t.join(timeout=60)
    assert results == [2]
    store.close()
