"""The ledger as a work queue: items with data and due times, attempts, the retry backoff,
given-up items put back, and pruning. Time is the manual clock's: nothing sleeps."""

from __future__ import annotations

import datetime
from typing import Any, List

import pytest

import cairn
from cairn.testing import ManualClock

UTC = datetime.timezone.utc
START = datetime.datetime(2020, 1, 1, tzinfo=UTC)  # the manual clock's default start


def claim_ids(ledger: cairn.Ledger) -> List[str]:
    """Claim everything claimable now; the ids in the order handed out."""
    out = []
    while (c := ledger.claim_next(lease="1d", worker="w")) is not None:
        out.append(c.id)
    return out


def test_a_delayed_item_is_not_handed_out_before_it_is_due(any_clocked: cairn.Store, clock: ManualClock) -> None:
    q = any_clocked.ledger("q")
    assert q.enqueue_items([cairn.QueueItem("later", delay=60), cairn.QueueItem("now")]) == 2
    later = q.item("later")
    assert later is not None and later.due == START + datetime.timedelta(seconds=60)
    assert claim_ids(q) == ["now"]
    clock.advance(59.999)
    assert claim_ids(q) == [], "not a millisecond early"
    clock.advance(0.001)
    assert claim_ids(q) == ["later"]


def test_not_before_takes_an_aware_datetime_or_rfc3339_text_and_delays_take_every_duration_form(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    q = any_clocked.ledger("q")
    q.enqueue_items(
        [
            cairn.QueueItem("dt", not_before=datetime.datetime(2020, 1, 1, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))),
            cairn.QueueItem("text", not_before="2020-01-01T00:00:30Z"),
            cairn.QueueItem("td", delay=datetime.timedelta(seconds=20)),
            cairn.QueueItem("str", delay="10s"),
            cairn.QueueItem("past", not_before="2019-12-31T23:00:00Z"),
        ]
    )
    due = {i.id: i.due for i in q.list()}
    assert due == {
        "dt": START,  # 01:00 at +01:00 is midnight UTC
        "text": START + datetime.timedelta(seconds=30),
        "td": START + datetime.timedelta(seconds=20),
        "str": START + datetime.timedelta(seconds=10),
        "past": START - datetime.timedelta(hours=1),
    }
    assert all(d is not None and d.tzinfo is not None for d in due.values())
    assert claim_ids(q) == ["past", "dt"], "handed out by due time first"
    clock.advance(30)
    assert claim_ids(q) == ["str", "td", "text"]


def test_enqueue_with_a_delay_holds_plain_ids_back_and_known_ids_are_skipped(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    q = any_clocked.ledger("q")
    assert q.enqueue(["a", "b"], delay="1m") == 2
    assert q.enqueue_items([cairn.QueueItem("a", data="new data"), cairn.QueueItem("c")]) == 1
    assert claim_ids(q) == ["c"]
    clock.advance(60)
    c = q.claim_next(worker="w")
    assert c is not None and c.id == "a" and c.data is None, "the first queuing of a is kept"


@pytest.mark.parametrize(
    "data",
    ["text", "", 42, -(2**63), 2**70, 1.5, float("inf"), b"\x00\xff", bytearray(b"ba"), {"to": ["a@x"], "n": None},
     [1, "two"], True, False],
    ids=repr,
)
def test_data_comes_back_to_the_worker_with_its_type(any_store: cairn.Store, data: Any) -> None:
    q = any_store.ledger("q")
    q.enqueue_items([cairn.QueueItem("job", data=data)])
    claim = q.claim_next()
    assert claim is not None
    want = bytes(data) if isinstance(data, bytearray) else data
    assert claim.data == want and type(claim.data) is type(want)
    item = q.item("job")
    assert item is not None and item.data == want and type(item.data) is type(want)


def test_an_item_without_data_reads_none_and_a_tuple_reads_as_a_list(any_store: cairn.Store) -> None:
    q = any_store.ledger("q")
    q.enqueue(["plain"])
    q.enqueue_items([cairn.QueueItem("tuple", data=(1, 2))])
    a, b = q.claim_next_many(2)
    assert (a.id, a.data, b.id, b.data) == ("plain", None, "tuple", [1, 2])


def test_attempts_count_up_and_each_failure_doubles_the_backoff_within_its_jitter(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    q = any_clocked.ledger("q", max_attempts=5, retry_delay=10)
    assert q.retry_delay == 10.0
    q.enqueue_items([cairn.QueueItem("job", data={"page": 1})])
    for attempt in range(1, 5):
        claim = q.claim_next(lease=60)
        assert claim is not None and claim.attempt == attempt and claim.data == {"page": 1}
        assert claim.fail("timeout") is cairn.ItemState.PENDING
        item = q.item("job")
        assert item is not None and item.due is not None and item.attempts == attempt
        wait = (item.due - datetime.datetime.fromtimestamp(clock.now(), UTC)).total_seconds()
        base = 10 * 2 ** (attempt - 1)
        assert base / 2 <= wait <= base, f"attempt {attempt}: waits {wait} s, not 50-100% of {base} s"
        clock.advance(wait - 0.001)
        assert q.claim_next(lease=60) is None, "handed out before its backoff passed"
        clock.advance(0.001)
    last = q.claim_next(lease=60)
    assert last is not None and last.attempt == 5
    assert last.fail("timeout") is cairn.ItemState.FAILED
    assert q.filter_new(["job"]) == []


def test_a_zero_retry_delay_hands_a_failed_item_out_again_at_once(any_store: cairn.Store) -> None:
    q = any_store.ledger("q", retry_delay=0)
    q.enqueue(["a"])
    first = q.claim_next()
    assert first is not None
    with pytest.raises(ValueError):
        with first:
            raise ValueError("boom")
    again = q.claim_next()
    assert again is not None and again.id == "a" and again.attempt == 2


def test_the_default_retry_delay_is_the_librarys_and_bad_ones_are_refused_when_given(any_store: cairn.Store) -> None:
    assert any_store.ledger("q").retry_delay == 1.0
    with any_store.transaction() as tx:
        assert tx.ledger("q", retry_delay="2m").retry_delay == 120.0
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        any_store.ledger("q", retry_delay=-1)
    with pytest.raises(TypeError):
        any_store.ledger("q", retry_delay=[1])  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError):
        any_store.ledger("q", retry_delay="soon")


def test_given_up_items_are_put_back_with_their_attempts_reset(any_store: cairn.Store) -> None:
    q = any_store.ledger("q", max_attempts=1)
    q.enqueue(["a", "b", "c"])
    for _ in range(3):
        claim = q.claim_next()
        assert claim is not None
        assert claim.fail("upstream down") is cairn.ItemState.FAILED
    q.mark_done("d")
    assert q.retry(["a", "d", "unknown"]) == 1, "only given-up items"
    item = q.item("a")
    assert item is not None and (item.state, item.attempts, item.error) == (cairn.ItemState.PENDING, 0, None)
    claim = q.claim_next()
    assert claim is not None and claim.id == "a" and claim.attempt == 1
    assert q.retry_all_failed() == 2
    assert q.counts() == cairn.LedgerCounts(pending=2, claimed=1, done=1, failed=0)
    assert q.retry_all_failed() == 0


def test_prune_deletes_only_items_done_longer_ago_and_a_rerun_then_redoes_them(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    q = any_clocked.ledger("q")
    q.mark_done("old")
    q.fail("failing", "no")
    clock.advance("10d")
    q.mark_done("recent")
    assert q.prune_done("7d") == 1
    assert q.filter_new(["old", "recent", "failing"]) == ["old", "failing"]
    assert q.prune_done(datetime.timedelta(days=7)) == 0
    clock.advance(0.001)
    assert q.prune_done(0) == 1, "0: every item done before now"
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        q.prune_done(-1)


def test_queue_operations_join_a_transaction_and_roll_back_with_it(any_store: cairn.Store) -> None:
    with pytest.raises(RuntimeError):
        with any_store.transaction() as tx:
            assert tx.ledger("q").enqueue_items([cairn.QueueItem("a", data=1)]) == 1
            raise RuntimeError("abort")
    assert any_store.ledger("q").item("a") is None
    with any_store.transaction() as tx:
        tx.ledger("q").enqueue_items([cairn.QueueItem("a", data=1)])
        claim = tx.ledger("q").claim_next()
        assert claim is not None and claim.data == 1


@pytest.mark.parametrize(
    "item, error, match",
    [
        (cairn.QueueItem("a", delay=1, not_before="2020-01-01T00:00:00Z"), cairn.InvalidInputError, "give one"),
        (cairn.QueueItem("a", not_before=datetime.datetime(2020, 1, 1)), cairn.InvalidInputError, "naive"),
        (cairn.QueueItem("a", not_before="tomorrow"), cairn.InvalidInputError, "RFC 3339"),
        (cairn.QueueItem("a", not_before=1577836800), TypeError, "RFC 3339"),
        (cairn.QueueItem("a", delay=-5), cairn.InvalidInputError, "negative"),
        (cairn.QueueItem("a", delay=float("nan")), cairn.InvalidInputError, "NaN"),
        (cairn.QueueItem("a", data=object()), TypeError, "cannot store"),
        (cairn.QueueItem("a", data={1: "int key"}), TypeError, "keys must be str"),
        (cairn.QueueItem("", data=1), cairn.InvalidInputError, "empty"),
        (cairn.QueueItem(1.5), TypeError, "str or an int"),  # type: ignore[arg-type]
        ("a", TypeError, "QueueItem"),
    ],
    ids=repr,
)
def test_bad_queue_items_are_refused_before_anything_is_queued(
    store: cairn.Store, item: Any, error: type, match: str
) -> None:
    q = store.ledger("q")
    with pytest.raises(error, match=match):
        q.enqueue_items([cairn.QueueItem("good"), item])
    assert q.item("good") is None, "nothing of the batch was queued"


def test_enqueue_refuses_one_str_for_its_ids(store: cairn.Store) -> None:
    with pytest.raises(TypeError, match="not one str"):
        store.ledger("q").enqueue("abc", delay=1)
