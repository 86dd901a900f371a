//! Behaviour every engine must share, run on each (see `engines.rs`): the promises that a
//! second engine could most easily break, because SQLite's single writer made them free.

use std::time::Duration;

use cairn::{Clock, Error, ErrorKind, ItemState, Json, QueueItem, Value};

use crate::contract;

contract! {
    fn values_keep_their_kind_and_expire_on_the_clock(f) {
        let c = f.store.cache("c");
        c.set("s", "text", Duration::from_secs(10))?;
        c.set("i", 42i64, None)?;
        c.set("j", Json(vec![1, 2]), None)?;
        c.set("b", vec![0u8, 255], None)?;
        assert_eq!(c.get::<Value>("s")?, Some(Value::Text("text".into())));
        assert_eq!(c.get::<Value>("i")?, Some(Value::Int(42)));
        assert_eq!(c.get::<Value>("j")?, Some(Value::Json("[1,2]".into())));
        assert_eq!(c.get::<Value>("b")?, Some(Value::Bytes(vec![0, 255])));
        f.clock.advance(Duration::from_secs(10));
        assert_eq!(c.get::<String>("s")?, None, "expired at exactly its TTL");
        assert_eq!(c.keys("")?, ["b", "i", "j"]);
        assert_eq!(c.sweep()?, 1);
        Ok(())
    }

    fn a_transaction_commits_everything_or_nothing(f) {
        let failed = f.store.transaction(|tx| {
            tx.cache("c").set("k", "v", None)?;
            tx.ledger("l").mark_done("1")?;
            tx.checkpoint("j").set("p")?;
            Err::<(), _>(Error::InvalidInput("no".into()))
        });
        assert!(failed.is_err());
        let other = f.reopen();
        assert_eq!(other.cache("c").get::<String>("k")?, None);
        assert!(!other.ledger("l").is_done("1")?);
        f.store.transaction(|tx| {
            tx.cache("c").incr("n", 2, None)?;
            tx.checkpoint("j").set(7i64)
        })?;
        assert_eq!(other.cache("c").get::<i64>("n")?, Some(2));
        assert_eq!(other.checkpoint("j").get::<i64>()?, Some(7));
        Ok(())
    }

    fn claims_are_fenced_and_failures_counted(f) {
        let l = f.store.ledger("q").max_attempts(2);
        assert_eq!(l.enqueue(["a", "b", "a"])?, 2);
        let a = l.claim_next("w1", Duration::from_secs(60))?.expect("a");
        assert_eq!(a.id(), "a");
        let b = l.claim_next("w2", Duration::from_secs(60))?.expect("b");
        assert_eq!(b.id(), "b");
        assert!(l.claim_next("w3", Duration::from_secs(60))?.is_none());
        f.clock.advance(Duration::from_secs(61));
        let a2 = l.claim_next("w3", Duration::from_secs(60))?.expect("the expired claim first");
        assert_eq!(a2.id(), "a");
        assert_eq!(l.complete(&a).unwrap_err().kind(), ErrorKind::LeaseLost);
        l.complete(&a2)?;
        assert_eq!(l.fail_claim(&b, "boom")?, ItemState::Pending);
        assert!(l.claim_next("w1", Duration::from_secs(60))?.is_none(), "a failed item waits out its backoff");
        f.clock.advance(Duration::from_secs(1));
        let b2 = l.claim_next("w1", Duration::from_secs(60))?.expect("b again");
        assert_eq!(l.fail_claim(&b2, "boom")?, ItemState::Failed);
        assert_eq!(l.filter_new(["a", "b", "c"])?, ["c"]);
        let c = l.counts()?;
        assert_eq!((c.pending, c.claimed, c.done, c.failed), (0, 0, 1, 1));
        Ok(())
    }

    fn a_lock_excludes_another_store_until_released_or_expired(f) {
        let other = f.reopen();
        let g = f.store.try_lock("job", Duration::from_secs(60))?.expect("free");
        assert!(other.try_lock("job", Duration::from_secs(60))?.is_none());
        g.renew(Duration::from_secs(120))?;
        assert!(g.release()?);
        let g2 = other.try_lock("job", Duration::from_secs(1))?.expect("released");
        f.clock.advance(Duration::from_secs(2));
        assert!(f.store.try_lock("job", Duration::from_secs(60))?.is_some(), "expired");
        assert_eq!(g2.renew(Duration::from_secs(1)).unwrap_err().kind(), ErrorKind::LeaseLost);
        Ok(())
    }

    fn a_semaphore_admits_up_to_its_slots_and_frees_one_on_release_or_expiry(f) {
        let hour = Duration::from_secs(3600);
        let other = f.reopen();
        let a = f.store.try_semaphore("pool", 3, hour)?.expect("slot 0");
        let b = other.try_semaphore("pool", 3, Duration::from_secs(10))?.expect("slot 1");
        let c = f.store.try_semaphore("pool", 3, hour)?.expect("slot 2");
        assert_eq!((a.slot(), b.slot(), c.slot()), (0, 1, 2));
        assert!(other.try_semaphore("pool", 3, hour)?.is_none(), "all three are held");
        assert!(other.try_lock("pool", hour)?.is_none(), "a plain lock is slot 0");
        let holders = other.lock_holders("pool", 3)?;
        assert_eq!(holders.iter().map(|h| h.slot).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(other.lock_holder("pool")?.map(|h| h.slot), Some(0));
        drop(c);
        let c2 = other.try_semaphore("pool", 3, hour)?.expect("the released slot");
        assert_eq!(c2.slot(), 2);
        f.clock.advance(Duration::from_secs(10));
        let b2 = f.store.try_semaphore("pool", 3, hour)?.expect("the expired slot");
        assert_eq!(b2.slot(), 1);
        assert_eq!(b.renew(hour).unwrap_err().kind(), ErrorKind::LeaseLost);
        assert!(f.store.try_semaphore("pool", 4, hour)?.is_some(), "a fourth slot for a caller asking four");
        assert_eq!(f.store.try_semaphore("pool", 0, hour).unwrap_err().kind(), ErrorKind::InvalidInput);
        Ok(())
    }

    /// Holders on separate connections, each taking a slot of a semaphore of 2 in a loop:
    /// never more than 2 inside at once (on a server, "the lowest free slot" is decided by one
    /// transaction at a time).
    fn a_semaphore_never_admits_more_than_its_slots_under_concurrency(f) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let (inside, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
                let (inside, most) = (Arc::clone(&inside), Arc::clone(&most));
                std::thread::spawn(move || -> Result<(), Error> {
                    let hour = Duration::from_secs(3600);
                    for _ in 0..10 {
                        let g = store.semaphore("pool", 2, hour, hour)?.expect("a slot within the (manual) hour");
                        most.fetch_max(inside.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        g.release()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread")?;
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} holders at once");
        Ok(())
    }

    /// Read-then-write in transactions of several connections at once loses no update: what
    /// SQLite's single writer gives for free, and READ COMMITTED alone would not.
    fn concurrent_read_then_write_transactions_lose_no_update(f) {
        const THREADS: usize = 4;
        const EACH: i64 = 25;
        f.store.cache("c").set("n", 0i64, None)?;
        f.store.checkpoint("j").set(0i64)?;
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let store = f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
                std::thread::spawn(move || -> Result<(), Error> {
                    for _ in 0..EACH {
                        store.transaction(|tx| {
                            let n: i64 = tx.cache("c").get("n")?.unwrap_or(0);
                            tx.cache("c").set("n", n + 1, None)?;
                            let j: i64 = tx.checkpoint("j").get()?.unwrap_or(0);
                            tx.checkpoint("j").set(j + 1)
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread")?;
        }
        let total = THREADS as i64 * EACH;
        assert_eq!(f.store.cache("c").get::<i64>("n")?, Some(total));
        assert_eq!(f.store.checkpoint("j").get::<i64>()?, Some(total));
        Ok(())
    }

    /// Workers on separate connections draining one queue: every item once.
    fn concurrent_workers_claim_every_item_exactly_once(f) {
        const ITEMS: usize = 120;
        f.store.ledger("q").enqueue((0..ITEMS).map(|i| format!("item-{i:03}")))?;
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let store = f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
                std::thread::spawn(move || -> Result<Vec<String>, Error> {
                    let mut done = Vec::new();
                    let worker = format!("w{w}");
                    while let Some(claim) = store.ledger("q").claim_next(&worker, Duration::from_secs(600))? {
                        store.transaction(|tx| {
                            tx.ledger("q").complete(&claim)?;
                            tx.cache("work").incr(claim.id(), 1, None).map(drop)
                        })?;
                        done.push(claim.id().to_owned());
                    }
                    Ok(done)
                })
            })
            .collect();
        let mut all: Vec<String> = Vec::new();
        for h in handles {
            all.extend(h.join().expect("thread")?);
        }
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!((before, all.len()), (ITEMS, ITEMS), "each item completed once");
        for id in &all {
            assert_eq!(f.store.cache("work").get::<i64>(id)?, Some(1), "{id}");
        }
        Ok(())
    }
}

contract! {
    fn a_batch_claim_takes_expired_claims_first_then_the_oldest_pending(f) {
        let l = f.store.ledger("q");
        l.enqueue((0..10).map(|i| format!("i{i}")))?;
        let first = l.claim_next("w0", Duration::from_secs(5))?.expect("i0");
        f.clock.advance(Duration::from_secs(6));
        let batch = l.claim_next_many("w1", Duration::from_secs(60), 4)?;
        let ids: Vec<&str> = batch.iter().map(|c| c.id()).collect();
        assert_eq!(ids, ["i0", "i1", "i2", "i3"]);
        assert_eq!(l.complete(&first).unwrap_err().kind(), ErrorKind::LeaseLost);
        let rest = l.claim_next_many("w2", Duration::from_secs(60), 100)?;
        assert_eq!(rest.len(), 6);
        assert!(l.claim_next_many("w3", Duration::from_secs(60), 5)?.is_empty());
        for c in batch.iter().chain(&rest) {
            l.complete(c)?;
        }
        assert_eq!(l.counts()?.done, 10);
        Ok(())
    }

    fn clearing_a_prefix_removes_exactly_the_keys_that_start_with_it(f) {
        let c = f.store.cache("c");
        let keys = ["use", "user", "user:", "user:1", "user:\u{10FFFF}", "user;", "users", "v"];
        for k in keys {
            c.set(k, "vv", None)?;
        }
        c.set("user:old", "vv", Duration::from_secs(1))?;
        f.clock.advance(Duration::from_secs(1));
        assert_eq!(c.clear_prefix("user:")?, 4, "expired entries of the prefix go too");
        assert_eq!(c.keys("")?, ["use", "user", "user;", "users", "v"]);
        assert_eq!(f.store.cache("other").clear_prefix("u")?, 0, "another namespace is untouched");
        // A bounded namespace keeps exact sizes through it.
        let b = f.store.cache("bounded");
        b.set_limits(cairn::CacheLimits { max_entries: Some(100), ..Default::default() })?;
        for k in ["a1", "a2", "b1"] {
            b.set(k, "xyz", None)?;
        }
        assert_eq!(b.clear_prefix("a")?, 2);
        let s = b.stats()?;
        assert_eq!((s.entries, s.bytes), (1, 2 + 3));
        assert_eq!(c.clear_prefix("")?, 5, "the empty prefix is every key");
        Ok(())
    }
}

contract! {
    fn delayed_items_wait_and_data_travels_with_the_claim(f) {
        let l = f.store.ledger("q");
        let now = f.clock.now_millis();
        let queued = l.enqueue_items([
            QueueItem::new("later").delay(Duration::from_secs(60)).data(Json(vec![1, 2]))?,
            QueueItem::new("at").not_before_millis(now + 30_000),
            QueueItem::new("now").data("payload")?,
            QueueItem::new("now"),
        ])?;
        assert_eq!(queued, 3, "a repeated id is queued once");
        let c = l.claim_next("w", Duration::from_secs(600))?.expect("due now");
        assert_eq!((c.id(), c.attempt()), ("now", 1));
        assert_eq!(c.data::<String>()?.as_deref(), Some("payload"));
        assert!(l.claim_next("w", Duration::from_secs(600))?.is_none(), "nothing else is due");
        assert_eq!(l.counts()?.pending, 2, "delayed items count as pending");
        assert_eq!(l.item("later")?.expect("queued").due_millis, Some(now + 60_000));
        f.clock.advance(Duration::from_secs(60));
        let batch = l.claim_next_many("w", Duration::from_secs(600), 5)?;
        let ids: Vec<&str> = batch.iter().map(|c| c.id()).collect();
        assert_eq!(ids, ["at", "later"], "the item due first comes first");
        assert_eq!(batch[1].data::<Value>()?, Some(Value::Json("[1,2]".into())));
        assert_eq!(batch[0].data::<Value>()?, None);
        Ok(())
    }

    fn a_failed_item_backs_off_exponentially_with_jitter(f) {
        let l = f.store.ledger("q").max_attempts(5).retry_delay(Duration::from_secs(10));
        l.enqueue(["x"])?;
        // The n-th retry waits between half of and the whole of 10 s * 2^(n-1).
        for (attempt, full) in [(1, 10_000), (2, 20_000), (3, 40_000)] {
            let c = l.claim_next("w", Duration::from_secs(600))?.expect("due");
            assert_eq!(c.attempt(), attempt);
            let failed_at = f.clock.now_millis();
            assert_eq!(l.fail_claim(&c, "boom")?, ItemState::Pending);
            let due = l.item("x")?.expect("x").due_millis.expect("pending with a due time");
            let wait = due - failed_at;
            assert!((full / 2..=full).contains(&wait), "attempt {attempt}: waits {wait} ms of {full}");
            f.clock.advance(Duration::from_millis(u64::try_from(wait - 1).expect("positive")));
            assert!(l.claim_next("w", Duration::from_secs(600))?.is_none(), "not before its backoff");
            f.clock.advance(Duration::from_millis(1));
        }
        let c = l.claim_next("w", Duration::from_secs(600))?.expect("due after its backoff");
        assert_eq!(c.attempt(), 4);
        Ok(())
    }

    fn given_up_items_can_be_retried_and_old_done_items_pruned(f) {
        let l = f.store.ledger("q").max_attempts(1);
        l.enqueue(["a", "b", "c", "d"])?;
        for id in ["a", "b"] {
            assert_eq!(l.fail(id, "bad input")?, ItemState::Failed);
        }
        assert_eq!(l.retry(["a", "c", "nope"])?, 1, "only given-up items are put back");
        let a = l.item("a")?.expect("a");
        assert_eq!((a.state, a.attempts, a.error), (ItemState::Pending, 0, None));
        assert_eq!(l.retry_all_failed()?, 1);
        assert_eq!(l.counts()?.failed, 0);

        l.mark_done("old")?;
        f.clock.advance(Duration::from_secs(3600));
        l.mark_done("new")?;
        assert_eq!(l.prune_done(Duration::from_secs(1800))?, 1);
        assert!(l.item("old")?.is_none(), "pruned");
        assert!(l.is_done("new")?, "done too recently to prune");
        assert_eq!(l.counts()?.pending, 4, "pruning leaves other states alone");
        Ok(())
    }

    /// A memo output of several chunks, written as it comes, replays exactly from another
    /// connection, and is forgotten with its chunks.
    fn a_large_memo_output_replays_exactly_from_another_connection(f) {
        use crate::memo::{pieces, record, replay, split};
        let policy = cairn::MemoPolicy::new(Duration::from_secs(3600));
        let big = pieces(4 * 1024 * 1024 + 3);
        assert_eq!(record(&f.store, "k", policy, &big)?, cairn::MemoOutcome::Ran { status: 0, stored: true });
        let other = f.reopen();
        assert_eq!(replay(&other, "k", policy)?, split(&big));
        assert!(other.cache("m").memo_forget("k")?);
        let ran = record(&f.store, "k", policy, &pieces(10))?;
        assert_eq!(ran, cairn::MemoOutcome::Ran { status: 0, stored: true }, "forgotten: run again");
        Ok(())
    }

    /// Several connections asking for one large result at once: the command runs once, and
    /// every one of them gets its output whole.
    fn overlapping_memo_calls_run_a_large_command_once(f) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let runs = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let store = f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
                let runs = Arc::clone(&runs);
                std::thread::spawn(move || -> Result<(Vec<u8>, Vec<u8>), Error> {
                    let big = crate::memo::pieces(2 * 1024 * 1024);
                    // What reached this caller, replayed or passed on while it ran.
                    let got = std::cell::RefCell::new((Vec::new(), Vec::new()));
                    let take = |s: cairn::Stream, b: &[u8]| {
                        let mut g = got.borrow_mut();
                        match s {
                            cairn::Stream::Stdout => g.0.extend_from_slice(b),
                            cairn::Stream::Stderr => g.1.extend_from_slice(b),
                        }
                    };
                    let policy = cairn::MemoPolicy::new(Duration::from_secs(3600));
                    store.cache("m").memo_stream(
                        "k",
                        policy,
                        &mut |s, b| {
                            take(s, b);
                            Ok::<_, Error>(())
                        },
                        |rec| {
                            runs.fetch_add(1, Ordering::SeqCst);
                            for (s, b) in &big {
                                rec.write(*s, b)?;
                                take(*s, b);
                            }
                            Ok(0)
                        },
                    )?;
                    Ok(got.into_inner())
                })
            })
            .collect();
        let want = crate::memo::split(&crate::memo::pieces(2 * 1024 * 1024));
        for h in handles {
            assert!(h.join().expect("thread")? == want);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        Ok(())
    }
}
