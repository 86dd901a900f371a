"""One Store shared by threads: each thread gets its own connection, and the GIL is released
while a call waits, so other threads run meanwhile."""

from __future__ import annotations

import sys
import threading
import time

import cairn


def test_eight_threads_of_mixed_operations_on_one_store_lose_nothing(path: str) -> None:
    store = cairn.Store(path, busy_timeout=60)
    n_threads, ops = 8, 1000
    start = threading.Barrier(n_threads, timeout=60)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            c, ledger = store.cache("threads"), store.ledger("threads")
            for i in range(ops):
                match = i % 10
                if match == 0:
                    c.incr("shared")
                elif match == 1:
                    ledger.mark_done(f"{t}-{i}")
                elif match == 2:
                    with store.transaction() as tx:
                        tx.cache("threads").set(f"own-{t}", i)
                        tx.checkpoint(f"t{t}").set(i)
                else:
                    assert c.get(f"own-{t}", -1) in (-1, *range(i))
                    assert ledger.is_done(f"{t}-{i - match + 1}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()
    assert errors == []
    assert store.cache("threads")["shared"] == n_threads * ops // 10
    assert store.ledger("threads").counts().done == n_threads * ops // 10
    for t in range(n_threads):
        assert store.checkpoint(f"t{t}").get() == ops - 8
    assert store.integrity_check() == ["ok"]
    store.close()


def test_each_thread_has_its_own_connection_and_close_closes_them_all(path: str) -> None:
    store = cairn.Store(path)
    conns = []
    got = threading.Event()

    def use() -> None:
        conns.append(store._conn())
        store.cache().set("k", 1)
        got.set()

    t = threading.Thread(target=use)
    t.start()
    t.join(timeout=60)
    assert got.is_set()
    assert conns[0] is not store._conn()
    store.close()
    assert conns[0].closed and store._conn().closed


def test_a_call_waiting_for_the_write_lock_lets_other_threads_run(path: str) -> None:
    holder = cairn.Store(path)
    waiter = cairn.Store(path, busy_timeout=60)
    outcome: list[object] = []
    entered = threading.Event()

    def wait_for_lock() -> None:
        entered.set()
        try:
            waiter.cache().set("k", "waiter")  # waits inside the extension
            outcome.append("written")
        except BaseException as e:  # noqa: BLE001
            outcome.append(e)

    with holder.transaction() as tx:
        tx.cache().set("k", "holder")
        t = threading.Thread(target=wait_for_lock)
        t.start()
        assert entered.wait(timeout=60)
        # Wait (with a deadline) until the other thread is inside the extension's set call;
        # that this thread keeps running Python meanwhile is the point.
        deadline = time.monotonic() + 60
        while True:
            frame = sys._current_frames().get(t.ident or 0)
            if frame is not None and frame.f_code.co_name == "set":
                break
            assert time.monotonic() < deadline, "the waiting thread never reached the call"
            time.sleep(0.001)
        spins = sum(1 for _ in range(100_000))  # Python work while the other thread waits
        assert spins == 100_000 and outcome == []
    t.join(timeout=60)
    assert outcome == ["written"]
    assert holder.cache()["k"] == "waiter"
    holder.close()
    waiter.close()


def test_an_in_memory_store_is_shared_by_threads_through_one_connection() -> None:
    store = cairn.Store(":memory:")
    store.cache()["k"] = "main"
    seen: list[object] = []
    t = threading.Thread(target=lambda: seen.append(store.cache()["k"]))
    t.start()
    t.join(timeout=60)
    assert seen == ["main"]
