"""The same package on a PostgreSQL server (``cairn.Store("postgres://...")``): a slice of every
feature, several processes sharing a queue, a lost connection, and URLs whose password never
shows. Each test has a fresh schema (conftest: `pg`, `pg_url`); without a server the tests skip,
saying why, and fail under CAIRN_NO_SKIP."""

from __future__ import annotations

import pickle
import threading
import time
from typing import Any, List

import pytest

import cairn
from cairn.testing import ManualClock

from conftest import DEADLINE, Child, pg_sql


def test_cache_values_keep_their_type_and_expire_on_the_manual_clock(pg: cairn.Store, clock: ManualClock) -> None:
    c = pg.cache("pages")
    values: List[Any] = ["text", 42, 1.5, b"\x00\xff", {"a": [1, None]}, None, True, [1, "x"]]
    for i, v in enumerate(values):
        c.set(f"k{i}", v, ttl=60)
    for i, v in enumerate(values):
        got = c.get(f"k{i}", "missing")
        assert got == v and type(got) is type(v), (v, got)
    clock.advance(59)
    assert "k0" in c
    clock.advance(1)
    assert "k0" not in c and c.get("k0") is None, "expired the moment its TTL passed"
    assert c.incr("n") == 1 and c.incr("n", 4) == 5
    calls: List[str] = []

    def compute(v: str) -> str:
        calls.append(v)
        return v

    assert c.get_or_set("once", lambda: compute("v"), ttl="1h") == "v"
    assert c.get_or_set("once", lambda: compute("w"), ttl="1h") == "v"
    assert calls == ["v"]


def test_the_ledger_skips_done_work_and_fences_a_claim_taken_over(pg: cairn.Store, clock: ManualClock) -> None:
    ledger = pg.ledger("jobs")
    assert ledger.filter_new(["a", "b", 3]) == ["a", "b", 3]
    assert ledger.mark_done("a", result={"rows": 2}) and not ledger.mark_done("a")
    assert ledger.filter_new(["a", "b", 3]) == ["b", 3]
    assert ledger.result("a") == {"rows": 2}

    assert ledger.enqueue(["q1", "q2"]) == 2
    first = ledger.claim_next(lease=10, worker="w1")
    assert first is not None and first.id == "q1"
    clock.advance(11)  # w1's lease runs out (it is this live process: only the lease frees it)
    second = ledger.claim("q1", lease=10, worker="w2")
    assert second is not None and second.token > first.token
    with pytest.raises(cairn.LeaseLostError):
        first.complete()
    second.complete(result=7)
    second.complete(result=7)  # again, as after a lost commit: changes nothing
    assert ledger.result("q1") == 7
    assert ledger.counts() == cairn.LedgerCounts(pending=1, claimed=0, done=2, failed=0)


def test_queue_items_carry_data_wait_until_due_and_back_off_after_a_failure(
    pg: cairn.Store, clock: ManualClock
) -> None:
    q = pg.ledger("queue", retry_delay=10, max_attempts=2)
    assert q.enqueue_items([cairn.QueueItem("later", data={"n": 1}, delay="1m"), cairn.QueueItem("now", data=b"\x00")]) == 2
    claim = q.claim_next(lease=600)
    assert claim is not None and (claim.id, claim.data, claim.attempt) == ("now", b"\x00", 1)
    assert q.claim_next(lease=600) is None, "later is not due"
    assert claim.fail("boom") is cairn.ItemState.PENDING
    item = q.item("now")
    assert item is not None and item.due is not None
    wait = item.due.timestamp() - clock.now()
    assert 5 <= wait <= 10, wait
    clock.advance(60)
    got = {c.id: (c.data, c.attempt) for c in q.claim_next_many(5, lease=600)}
    assert got == {"later": ({"n": 1}, 1), "now": (b"\x00", 2)}
    assert q.fail("now", "again") is cairn.ItemState.FAILED
    assert q.retry_all_failed() == 1
    q.mark_done("later")
    clock.advance("2d")
    assert q.prune_done("1d") == 1


def test_a_transaction_commits_everything_or_nothing(pg: cairn.Store) -> None:
    with pg.transaction() as tx:
        tx.cache("c")["k"] = "v"
        tx.ledger("l").mark_done("x")
        tx.checkpoint("job").set({"page": 1})
    with pytest.raises(RuntimeError):
        with pg.transaction() as tx:
            tx.cache("c")["k"] = "changed"
            tx.ledger("l").mark_done("y")
            tx.checkpoint("job").set({"page": 2})
            raise RuntimeError("abort")
    assert pg.cache("c")["k"] == "v"
    assert pg.ledger("l").filter_new(["x", "y"]) == ["y"]
    assert pg.checkpoint("job").get() == {"page": 1}


def test_a_lock_held_by_one_store_stops_another_until_released(pg: cairn.Store, pg_url: str, clock: ManualClock) -> None:
    with cairn.Store(pg_url, clock=clock) as other:
        with pg.lock("nightly", ttl=60, timeout=0):
            holder = other.lock_holder("nightly")
            assert holder is not None
            with pytest.raises(cairn.LockHeldError):
                with other.lock("nightly", ttl=60, timeout=0):
                    pass
        with other.lock("nightly", ttl=60, timeout=0):
            assert pg.lock_holder("nightly") is not None


def test_a_held_locks_keep_alive_renews_it_in_the_urls_schema(pg: cairn.Store, clock: ManualClock) -> None:
    # The library's renewing thread opens a connection of its own: it must reach the schema
    # named by the URL's ?cairn_schema=, not the default one.
    with pg.lock("long-job", ttl=0.3):
        holder = pg.lock_holder("long-job")
        assert holder is not None
        first = holder.expires_at
        clock.advance(0.2)  # still held; a renewal now pushes the expiry past `first`
        deadline = time.monotonic() + DEADLINE
        while (h := pg.lock_holder("long-job")) is not None and h.expires_at == first:
            assert time.monotonic() < deadline, "the lock was never renewed"
            time.sleep(0.01)
        assert h is not None and h.owner == holder.owner and h.expires_at > first


def test_workers_in_several_processes_drain_a_queue_exactly_once_and_take_over_a_killed_workers_item(
    pg_url: str, children: List[Child]
) -> None:
    ids = [f"item-{i:03}" for i in range(200)]
    with cairn.Store(pg_url) as s:
        assert s.ledger("queue").enqueue(ids) == 200
    victim = Child("worker", pg_url, "queue", "3600", "1")
    children.append(victim)
    line = victim.line()
    assert line is not None and line.startswith("holding "), victim.stderr()
    held = line.split()[1]
    victim.kill()
    workers = [Child("worker", pg_url, "queue", "3600", "0") for _ in range(4)]
    children.extend(workers)
    done: List[str] = []
    for w in workers:
        out = w.all_lines()
        assert w.wait() == 0, w.stderr()
        assert out[-1] == "empty"
        done.extend(line.split()[1] for line in out[:-1])
    assert sorted(done) == ids, "every item exactly once"
    assert held in done, "the dead worker's item was taken over at once, not after its hour"
    with cairn.Store(pg_url) as s:
        assert s.ledger("queue").counts() == cairn.LedgerCounts(pending=0, claimed=0, done=200, failed=0)


def test_other_threads_and_a_pickled_copy_connect_with_the_url_as_given(pg_url: str) -> None:
    # The server trusts every connection, so any password is accepted; what matters is that the
    # store connects its other threads with the full URL, not with the redacted one it shows.
    url = pg_url.replace("://postgres@", "://postgres:s3cret-pw@", 1)
    assert url != pg_url, "CAIRN_TEST_PG has no user 'postgres': adjust this test"
    with cairn.Store(url) as s:
        assert "s3cret-pw" not in s.path and "s3cret-pw" not in repr(s)
        assert s.path.startswith("postgres://postgres:***@")
        s.cache()["k"] = "main"
        seen: List[object] = []
        t = threading.Thread(target=lambda: seen.append(s.cache().get("k")))
        t.start()
        t.join()
        assert seen == ["main"]
        with pickle.loads(pickle.dumps(s)) as copy:
            assert copy.cache()["k"] == "main"


@pytest.mark.parametrize(
    "url",
    [
        "postgres://postgres:s3cret-pw@127.0.0.1:1/test",  # nothing listens on port 1
        "postgresql://postgres:s3cret-pw@127.0.0.1:1/test?cairn_schema=x",
    ],
)
def test_an_unreachable_server_is_unavailable_and_the_password_never_shows(url: str) -> None:
    with pytest.raises(cairn.UnavailableError) as e:
        cairn.Store(url)
    assert isinstance(e.value, ConnectionError) and e.value.kind == "unavailable"
    assert not e.value.maybe_committed, "nothing was sent"
    assert "s3cret-pw" not in str(e.value) and "s3cret-pw" not in repr(e.value)
    assert "postgres:***@127.0.0.1:1" in str(e.value), "the message names the server"
    back = pickle.loads(pickle.dumps(e.value))
    assert type(back) is cairn.UnavailableError and str(back) == str(e.value)


@pytest.mark.parametrize(
    "url",
    ["postgres://postgres:s3cret-pw@127.0.0.1:notaport/test", "postgres://postgres:s3cret-pw@127.0.0.1/test?sslmode=require"],
)
def test_refused_urls_never_show_their_password(url: str) -> None:
    with pytest.raises(cairn.InvalidInputError) as e:
        cairn.Store(url)
    assert "s3cret-pw" not in str(e.value) and "postgres:***@127.0.0.1" in str(e.value)


def test_a_server_that_refuses_the_connection_never_shows_the_password(pg_server: str) -> None:
    url = pg_server.replace("://postgres@", "://postgres:s3cret-pw@", 1)
    url = url.rsplit("/", 1)[0] + "/no_such_database_for_cairn"
    with pytest.raises(cairn.Error) as e:
        cairn.Store(url)
    assert "s3cret-pw" not in str(e.value) and "postgres:***@" in str(e.value)


def test_a_password_given_as_a_url_parameter_never_shows() -> None:
    with pytest.raises(cairn.UnavailableError) as e:
        cairn.Store("postgres://postgres@127.0.0.1:1/test?password=s3cret-pw")
    assert "s3cret-pw" not in str(e.value)


def test_a_connection_lost_inside_a_transaction_is_unavailable_and_nothing_of_it_commits(
    pg: cairn.Store, pg_server: str, pg_url: str
) -> None:
    schema = pg_url.rsplit("cairn_schema=", 1)[1]
    pg.cache()["before"] = 1
    with pytest.raises(cairn.UnavailableError) as e:
        with pg.transaction() as tx:
            tx.cache()["inside"] = 1
            # The server ends this store's session (as a restart or a network cut would).
            killed = pg_sql(
                pg_server,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE query LIKE '%\"{schema}\"%' AND pid <> pg_backend_pid()",
            )
            assert int(killed) >= 1, "the store's session was found"
            tx.cache()["after"] = 1
    assert not e.value.maybe_committed
    # The next call outside a transaction connects again.
    c = pg.cache()
    assert c.get("before") == 1 and c.get("inside") is None and c.get("after") is None
