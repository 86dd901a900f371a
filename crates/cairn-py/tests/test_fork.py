"""fork: a child never uses its parent's SQLite connection, opens its own through the same
Store, and is itself (its pid) in lock and claim records. Also: pickled stores reopen in
spawned processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import threading
from typing import Any, Callable

import pytest

import cairn

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")


def in_child(body: Callable[[], Any]) -> Any:
    """Run `body` in a forked child; return what it returned (JSON), or raise what it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(r)
            try:
                out = {"ok": body()}
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = {"error": type(e).__name__, "message": str(e)}
            os.write(w, json.dumps(out).encode())
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 60)
    assert ready, "the forked child said nothing for 60 s"
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return json.loads(data)


def test_a_store_used_before_a_fork_works_in_the_child_through_its_own_connection(store: cairn.Store) -> None:
    c = store.cache("fork")
    c["parent"] = "p"
    parent_conn = store._conn()

    def child() -> Any:
        assert store._conn() is not parent_conn
        c["child"] = os.getpid()
        with store.transaction() as tx:
            tx.ledger("fork").mark_done("from-child")
        return [c["parent"], c["child"]]

    out = in_child(child)
    assert out["ok"][0] == "p"
    assert c["child"] == out["ok"][1] != os.getpid()
    assert "from-child" in store.ledger("fork")
    assert store._conn() is parent_conn, "the parent keeps its connection"
    c["parent-after"] = 1
    assert store.integrity_check() == ["ok"]


def test_the_parents_raw_connection_refuses_in_the_child(store: cairn.Store) -> None:
    conn = store._conn()
    out = in_child(lambda: conn.cache_get("fork", "k", 0, None))
    assert out["error"] == "ForkedError"
    assert f"opened by process {os.getpid()}" in out["message"]
    assert conn.cache_get("fork", "k", 0, "still mine") == "still mine"


def test_a_transaction_open_at_the_fork_is_the_parents_alone(store: cairn.Store) -> None:
    with store.transaction() as tx:
        tx.cache().set("k", "parent")
        out = in_child(lambda: tx.cache().get("k"))
        assert out["error"] == "ForkedError"
    assert store.cache()["k"] == "parent"


def test_a_forked_childs_lock_names_the_child_not_the_parent(store: cairn.Store) -> None:
    with store.lock("warm-up", timeout=0):
        pass  # the parent's process identity is cached by now

    def child() -> Any:
        with store.lock("x", ttl=60, timeout=0):
            h = store.lock_holder("x")
            return [os.getpid(), h.pid if h else None]

    out = in_child(child)
    pid, holder = out["ok"]
    assert holder == pid != os.getpid()


def test_a_forked_childs_claims_are_its_own(store: cairn.Store) -> None:
    ledger = store.ledger("q")
    ledger.enqueue(["a", "b"])
    assert ledger.claim_next(lease=3600, worker="parent") is not None

    def child() -> Any:
        claim = ledger.claim_next(lease=3600, worker="child")
        assert claim is not None
        return claim.id

    assert in_child(child)["ok"] == "b"
    # The child exited holding "b": on this host its claim is taken over at once (by a
    # connection that has not looked for dead holders in the last 100 ms: a new store).
    with cairn.Store(store.path) as other:
        claim = other.ledger("q").claim_next(lease=60, worker="parent-2")
        assert claim is not None and claim.id == "b"


def test_an_in_memory_store_cannot_be_used_in_a_forked_child() -> None:
    s = cairn.Store(":memory:")
    s.cache()["k"] = 1
    out = in_child(lambda: s.cache()["k"])
    assert out["error"] == "ForkedError"
    assert s.cache()["k"] == 1


def _spawned_incr(store: cairn.Store) -> int:
    return store.cache("spawn").incr("n")


def test_a_pickled_store_reopens_by_path_in_spawned_workers(store: cairn.Store) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_spawned_incr, [store] * 6, chunksize=1)
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    assert store.cache("spawn")["n"] == 6


def _forked_incr(store: cairn.Store) -> int:
    return store.cache("forkpool").incr("n")


def test_multiprocessing_fork_workers_share_a_store_made_before_the_fork(store: cairn.Store) -> None:
    store.cache("forkpool").set("n", 0)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.map(_forked_incr, [store] * 6, chunksize=1)
    assert sorted(results) == [1, 2, 3, 4, 5, 6]


def test_stores_that_cannot_be_pickled_say_why(clock: Any) -> None:
    import pickle

    with pytest.raises(TypeError, match="in-memory"):
        pickle.dumps(cairn.Store(":memory:"))
    s = cairn.Store(":memory:", clock=clock)
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_a_child_forked_while_16_threads_write_works_or_refuses_at_once(location: str) -> None:
    """Issue 19.13: forking while threads were inside cairn calls left the child with SQLite's
    process-wide state mid-change (a mutex held by a thread the child does not have, a write
    lock recorded that no process holds): `BusyError` on every try, or a hang. A child forked
    mid-call now gets `ForkedError` at its first use of the store, at once; one forked while no
    call was in flight works. Neither may hang (the child's wait is bounded by `in_child`)."""
    store = cairn.Store(location, busy_timeout=30)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        c = store.cache("writers")
        i = 0
        try:
            while not stop.is_set():
                c.set(f"t{n}", i)
                i += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()

    def child() -> Any:
        try:
            store.cache("children").set(str(os.getpid()), 1)
        except cairn.ForkedError as e:
            assert "forked while a thread of its parent was inside a cairn call" in str(e)
            return "refused"
        return "wrote"

    outcomes: dict[str, int] = {}
    try:
        for _ in range(int(os.environ.get("CAIRN_PY_FORKS", "40"))):
            out = in_child(child)
            assert "ok" in out, out  # never BusyError, nor anything else
            outcomes[out["ok"]] = outcomes.get(out["ok"], 0) + 1
    finally:
        stop.set()
        for t in threads:
            t.join()
        store.close()
    assert not errors, errors
    assert sum(outcomes.values()) > 0, outcomes
    with cairn.Store(location) as s:
        assert len(s.cache("children")) == outcomes.get("wrote", 0)


def test_a_child_forked_while_no_call_is_in_flight_works_even_with_idle_threads(store: cairn.Store) -> None:
    ready, done = threading.Event(), threading.Event()

    def idle() -> None:
        store.cache("idle").set("k", 1)  # its connection is open, its call has returned
        ready.set()
        done.wait()

    t = threading.Thread(target=idle)
    t.start()
    try:
        assert ready.wait(timeout=60)
        assert in_child(lambda: store.cache("idle").incr("n")) == {"ok": 1}
    finally:
        done.set()
        t.join()
