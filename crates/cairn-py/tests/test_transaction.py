"""`with store.transaction() as tx:` across every feature, with the Rust semantics: tx
handles join it, store shortcuts and nesting are refused, handles end with the block."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

import cairn

from conftest import Child


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


def test_ctrl_c_while_begin_waits_for_the_write_lock_leaves_no_transaction_open(
    path: str, children: list[Child]
) -> None:
    """Issue 19.4: the interrupt, seen when BEGIN returned, cut `__enter__` short after the
    transaction had begun; `with` never called `__exit__`, and the transaction stayed open,
    holding the file's write lock, with nothing to end it."""
    store = cairn.Store(path, busy_timeout=30)
    holder = Child("tx-then-block", path)
    children.append(holder)
    holder.expect("inside")
    main = threading.get_ident()

    def interrupt_then_release() -> None:
        # Not a timing assertion: by then the main thread waits in BEGIN (were it earlier or
        # later, the outcome must be the same, as the SIGINT flood test checks).
        time.sleep(0.3)
        signal.pthread_kill(main, signal.SIGINT)
        holder.send("")  # its transaction ends

    t = threading.Thread(target=interrupt_then_release)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            with store.transaction() as tx:
                tx.cache("c").set("k", 1)
                time.sleep(30)  # the interrupt ends this at the latest
    finally:
        t.join()
    assert holder.wait() == 0
    assert not store.in_transaction
    assert not store._conn().in_transaction, "no transaction open on the connection"
    assert "k" not in store.cache("c"), "rolled back"
    store.cache("c").set("after", 1)  # this thread writes again
    other = Child("incr", path, "1")
    children.append(other)
    other.expect("done")  # another process writes: no write lock held
    assert other.wait() == 0
    store.close()


@pytest.mark.parametrize("rounds", [int(os.environ.get("CAIRN_PY_SIGINTS", "1000"))])
def test_a_sigint_flood_at_any_point_of_transactions_leaves_none_open(
    location: str, children: list[Child], rounds: int
) -> None:
    """Issue 19.4: a flood of SIGINT against a process running transaction after transaction
    (wedged at round 512 on a file, 46 on PostgreSQL). After every interrupt nothing is open,
    the process writes on, and once it stops another process writes at once."""
    cairn.Store(location).close()
    c = Child("tx-flood", location)
    children.append(c)
    c.expect("ready")
    rng = random.Random(19)
    for _ in range(rounds):
        time.sleep(rng.random() * 0.002)
        if c.proc.poll() is not None:
            break
        c.proc.send_signal(signal.SIGINT)
    if c.proc.poll() is None:
        c.proc.send_signal(signal.SIGTERM)
    line = c.line()
    assert line is not None and line.startswith("stopped"), f"{line!r}; stderr: {c.stderr()}"
    _, commits, interrupts = line.split()
    assert int(interrupts) > 0, "the flood interrupted transactions"
    c.expect("wrote")
    with cairn.Store(location, busy_timeout=5) as other:
        other.cache("flood").set("other", 1)
        assert other.cache("flood")["after"] == int(commits)
        assert other.cache("flood")["n"] >= int(commits)
    c.send("")
    assert c.wait() == 0


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
