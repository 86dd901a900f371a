//! Behaviour every engine must share, run on each (see `engines.rs`): the promises that a
//! second engine could most easily break, because SQLite's single writer made them free.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cairn::{
    CacheLimits, Clock, Error, ErrorKind, Eviction, ItemState, Json, ManualClock, Migrations, QueueItem,
    SqlValue, Value, M,
};

use crate::contract;
use crate::engines::Engine;

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
                let store =
                    f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
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
                let store =
                    f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
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

    fn a_batch_completion_fences_each_claim_and_is_safe_to_repeat(f) {
        let l = f.store.ledger("q");
        l.enqueue((0..6).map(|i| format!("i{i}")))?;
        let stale = [
            l.claim_next("w0", Duration::from_secs(5))?.expect("i0"),
            l.claim_next("w0", Duration::from_secs(60))?.expect("i1"),
        ];
        f.clock.advance(Duration::from_secs(6));
        let taken = l.claim_next("w1", Duration::from_secs(60))?.expect("i0, expired");
        assert_eq!(taken.id(), "i0");
        let batch = l.claim_next_many("w2", Duration::from_secs(60), 3)?;
        // w0's claim of i1 still completes; its lapsed claim of i0, taken over by w1, is fenced.
        assert_eq!(l.complete_many(&stale)?, [false, true]);
        assert_eq!(l.item("i0")?.expect("i0").state, ItemState::Claimed, "the fenced claim changed nothing");
        let mut all = batch.clone();
        all.push(taken.clone());
        assert_eq!(l.complete_many(&all)?, [true, true, true, true]);
        assert_eq!(l.complete_many(&all)?, [true, true, true, true], "a retry after a lost commit");
        assert_eq!(l.complete(&taken).map_err(|e| e.kind()), Ok(()), "one by one agrees");
        assert!(l.complete_many(&[])?.is_empty());
        // In a transaction it joins it: rolled back with it.
        let last = l.claim_next("w3", Duration::from_secs(60))?.expect("i5");
        let failed = f.store.transaction(|tx| {
            assert_eq!(tx.ledger("q").complete_many(std::slice::from_ref(&last))?, [true]);
            Err::<(), _>(Error::InvalidInput("no".into()))
        });
        assert!(failed.is_err());
        assert_eq!(l.item("i5")?.expect("i5").state, ItemState::Claimed);
        f.store.transaction(|tx| tx.ledger("q").complete_many(std::slice::from_ref(&last)).map(drop))?;
        assert_eq!(l.counts()?.done, 6);
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
}

/// A barrier whose wait gives up: a thread that failed before reaching it (and returned its
/// error) must fail the test, not hang the others for ever.
struct Rendezvous {
    parties: usize,
    state: Mutex<(usize, u64)>,
    all_here: Condvar,
}

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous { parties, state: Mutex::new((0, 0)), all_here: Condvar::new() }
    }

    /// Wait until all parties are here, at most a minute.
    fn wait(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let generation = state.1;
        state.0 += 1;
        if state.0 == self.parties {
            *state = (0, generation + 1);
            self.all_here.notify_all();
            return;
        }
        let until = Instant::now() + Duration::from_secs(60);
        while state.1 == generation {
            let now = Instant::now();
            assert!(now < until, "a party never reached the rendezvous within a minute (it failed?)");
            state = self.all_here.wait_timeout(state, until - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// Join every thread; the first error any of them returned, else their results. A thread that
/// panicked (given up at a rendezvous, most likely) counts only if none returned an error,
/// which is then the cause.
fn join_all<T>(handles: Vec<std::thread::JoinHandle<Result<T, Error>>>) -> Result<Vec<T>, Error> {
    let mut results = Vec::new();
    let (mut error, mut panic) = (None, None);
    for h in handles {
        match h.join() {
            Ok(Ok(v)) => results.push(v),
            Ok(Err(e)) => error = error.or(Some(e)),
            Err(p) => panic = panic.or(Some(p)),
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
    Ok(results)
}

/// A clock on the fixture's time whose `sleep` (which cairn calls only while it waits for
/// another store's computation of a value) counts, once per store, that this store waits, and
/// waits for real: the manual time stays still, so no fill marker can expire meanwhile.
#[derive(Debug)]
struct Watching {
    time: ManualClock,
    waiting: Arc<AtomicUsize>,
    announced: AtomicBool,
}

impl Clock for Watching {
    fn now_millis(&self) -> i64 {
        self.time.now_millis()
    }

    fn sleep(&self, d: Duration) {
        if !self.announced.swap(true, Ordering::SeqCst) {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(d); // pacing the poll: cairn's own backoff, at most 25 ms
    }
}

/// Wait until `done`, at most 20 s; whether it happened.
fn within_20s(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1)); // pacing the poll
    }
    true
}

contract! {
    /// Stores on separate connections missing one key at once: one computes, the others wait
    /// for its value (the computation lasts until all of them are seen waiting), and all get
    /// the same value.
    fn compute_once_holds_across_connections(f) {
        const STORES: usize = 5;
        let computations = Arc::new(AtomicUsize::new(0));
        let waiting = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Rendezvous::new(STORES));
        let handles: Vec<_> = (0..STORES)
            .map(|i| {
                let clock = Watching {
                    time: f.clock.clone(),
                    waiting: waiting.clone(),
                    announced: AtomicBool::new(false),
                };
                let store = f.options().clock(clock).busy_timeout(Duration::from_secs(60)).open(&f.location);
                let (computations, waiting, start) = (computations.clone(), waiting.clone(), start.clone());
                std::thread::spawn(move || -> Result<String, Error> {
                    let store = store?;
                    start.wait();
                    store.cache("c").get_or_set_with("k", None, || {
                        computations.fetch_add(1, Ordering::SeqCst);
                        let all = within_20s(|| waiting.load(Ordering::SeqCst) == STORES - 1);
                        Ok::<_, Error>(format!("from {i}, the others waiting: {all}"))
                    })
                })
            })
            .collect();
        let values = join_all(handles)?;
        assert_eq!(computations.load(Ordering::SeqCst), 1, "computed more than once: {values:?}");
        assert!(values[0].ends_with("the others waiting: true"), "{values:?}");
        assert!(values.windows(2).all(|w| w[0] == w[1]), "stores saw different values: {values:?}");
        assert_eq!(f.store.cache("c").get::<String>("k")?.as_ref(), values.first());
        Ok(())
    }

    /// Stores reading overlapping sets of namespaces flush their hit and miss counts at the
    /// same moment, round after round: every flush lands (no deadlock between their updates of
    /// the namespaces' counters, no Busy), so the totals are exact after each round.
    fn stores_flushing_statistics_of_overlapping_namespaces_at_once_lose_no_count(f) {
        const STORES: usize = 6;
        const NAMESPACES: usize = 6;
        const ROUNDS: u64 = 8;
        let names: Vec<String> = (0..NAMESPACES).map(|n| format!("s{n}")).collect();
        for ns in &names {
            f.store.cache(ns).set("k", "v", None)?;
        }
        // Store i reads namespaces i, i+1, i+2 (wrapping), in an order of its own.
        let set = |i: usize| -> Vec<usize> {
            let mut s: Vec<usize> = (0..3).map(|k| (i + k) % NAMESPACES).collect();
            if i % 2 == 1 {
                s.reverse();
            }
            s
        };
        let per_round: Vec<u64> =
            (0..NAMESPACES).map(|n| (0..STORES).filter(|&i| set(i).contains(&n)).count() as u64).collect();
        let flushed = Arc::new(Rendezvous::new(STORES + 1));
        let checked = Arc::new(Rendezvous::new(STORES + 1));
        let handles: Vec<_> = (0..STORES)
            .map(|i| {
                let store = f.options().open(&f.location);
                let (names, mine) = (names.clone(), set(i));
                let (flushed, checked) = (flushed.clone(), checked.clone());
                std::thread::spawn(move || -> Result<(), Error> {
                    let store = store?;
                    for _ in 0..ROUNDS {
                        for &n in &mine {
                            assert!(store.cache(&names[n]).get::<String>("k")?.is_some());
                            assert!(store.cache(&names[n]).get::<String>("missing")?.is_none());
                        }
                        let result = store.flush_stats();
                        flushed.wait();
                        checked.wait();
                        result?;
                    }
                    Ok(())
                })
            })
            .collect();
        let observer = f.reopen();
        for round in 1..=ROUNDS {
            flushed.wait();
            let totals: Vec<(u64, u64)> = names
                .iter()
                .map(|ns| observer.cache(ns).stats().map(|s| (s.hits, s.misses)))
                .collect::<Result<_, _>>()?;
            checked.wait();
            let want: Vec<(u64, u64)> = per_round.iter().map(|&n| (n * round, n * round)).collect();
            assert_eq!(totals, want, "after round {round}: a flush did not land");
        }
        join_all(handles)?;
        Ok(())
    }

    /// Stores writing new keys into bounded namespaces at once (one bounded by entries with
    /// least-recently-used eviction and reads between the writes, one by bytes): every commit
    /// leaves the namespace within its bounds, and its counts exact.
    fn bounded_namespaces_written_concurrently_stay_within_their_bounds(f) {
        const STORES: usize = 4;
        const EACH: usize = 30;
        f.store.cache("by-count").set_limits(CacheLimits {
            max_entries: Some(10),
            eviction: Eviction::LeastRecentlyUsed,
            ..Default::default()
        })?;
        f.store.cache("by-bytes").set_limits(CacheLimits { max_bytes: Some(1000), ..Default::default() })?;
        let handles: Vec<_> = (0..STORES)
            .map(|i| {
                let store = f.options().busy_timeout(Duration::from_secs(60)).open(&f.location);
                std::thread::spawn(move || -> Result<(), Error> {
                    let store = store?;
                    for n in 0..EACH {
                        let key = format!("{i}-{n:02}"); // 4 bytes
                        store.cache("by-count").set(&key, "x", None)?;
                        store.cache("by-count").get::<String>(&format!("{}-{n:02}", (i + 1) % STORES))?;
                        store.cache("by-bytes").set(&key, vec![7u8; 96], None)?; // 100 bytes
                        let (count, bytes) =
                            (store.cache("by-count").stats()?, store.cache("by-bytes").stats()?);
                        assert!(count.entries <= 10, "{count:?}");
                        assert!(bytes.bytes <= 1000, "{bytes:?}");
                    }
                    Ok(())
                })
            })
            .collect();
        join_all(handles)?;
        let written = (STORES * EACH) as u64;
        for (ns, size) in [("by-count", 5u64), ("by-bytes", 100)] {
            let s = f.store.cache(ns).stats()?;
            let keys = f.store.cache(ns).keys("")?;
            assert_eq!(s.entries, keys.len() as u64, "{ns}: {s:?}");
            assert_eq!(s.bytes, s.entries * size, "{ns}: {s:?}");
            assert_eq!(s.evictions, written - s.entries, "{ns}: every key written once, evicted or kept");
            assert_eq!(s.entries, 10, "{ns}: filled to its bound");
        }
        Ok(())
    }

    /// Stores migrating one scope at once apply each step once: the others wait for the step
    /// in progress (seen waiting, on a server) and then find it applied.
    fn stores_migrating_one_scope_at_once_apply_each_step_once(f) {
        const STORES: usize = 3;
        const STEPS: usize = 4;
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..STEPS).map(|_| AtomicUsize::new(0)).collect());
        let (in_step_1, go) = (std::sync::mpsc::channel::<()>(), std::sync::mpsc::channel::<()>());
        let (step_1_running, step_1_seen) = in_step_1;
        let (proceed, proceed_seen) = go;
        let proceed_seen = Arc::new(std::sync::Mutex::new(proceed_seen));
        let start = Arc::new(Rendezvous::new(STORES));
        let mut pids = Vec::new();
        let handles: Vec<_> = (0..STORES)
            .map(|_| {
                let store =
                    f.options().busy_timeout(Duration::from_secs(60)).open(&f.location).expect("open");
                if f.engine == Engine::Postgres {
                    pids.push(store.query("SELECT pg_backend_pid()", &[]).expect("pid")[0][0].clone());
                }
                let (runs, start) = (runs.clone(), start.clone());
                let (step_1_running, proceed_seen) = (step_1_running.clone(), proceed_seen.clone());
                std::thread::spawn(move || -> Result<Vec<i64>, Error> {
                    let steps: Vec<M<'_>> = (0..STEPS)
                        .map(|k| {
                            let (runs, step_1_running, proceed_seen) =
                                (runs.clone(), step_1_running.clone(), proceed_seen.clone());
                            M::up_with(move |db| {
                                runs[k].fetch_add(1, Ordering::SeqCst);
                                if k == 0 {
                                    db.execute_batch("CREATE TABLE applied (step INTEGER NOT NULL)")?;
                                    let _ = step_1_running.send(());
                                    let _ =
                                        proceed_seen.lock().map(|r| r.recv_timeout(Duration::from_secs(20)));
                                }
                                db.execute(&format!("INSERT INTO applied VALUES ({})", k + 1), &[])?;
                                Ok(())
                            })
                        })
                        .collect();
                    start.wait();
                    Ok(store.migrate("app", &Migrations::new(steps))?.applied)
                })
            })
            .collect();
        drop(step_1_running);
        step_1_seen.recv_timeout(Duration::from_secs(20)).expect("a store began step 1");
        if f.engine == Engine::Postgres {
            // The others queue behind the step in progress, on the scope's lock.
            let pids: Vec<i32> = pids
                .iter()
                .map(|p| match p {
                    SqlValue::Integer(n) => *n as i32,
                    other => panic!("a pid: {other:?}"),
                })
                .collect();
            let waiting = || -> i64 {
                f.server()
                    .query_one(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                         AND pid = ANY($1)",
                        &[&pids],
                    )
                    .expect("pg_locks")
                    .get(0)
            };
            assert!(
                within_20s(|| waiting() == STORES as i64 - 1),
                "the other stores never queued: {}",
                waiting()
            );
        }
        proceed.send(()).expect("the step waits");
        let mut applied: Vec<i64> = join_all(handles)?.into_iter().flatten().collect();
        applied.sort_unstable();
        assert_eq!(applied, (1..=STEPS as i64).collect::<Vec<_>>(), "each step reported applied once");
        let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(runs, vec![1; STEPS], "each step ran once");
        let rows = f.store.query("SELECT step FROM applied ORDER BY step", &[])?;
        assert_eq!(rows, (1..=STEPS as i64).map(|k| vec![SqlValue::Integer(k)]).collect::<Vec<_>>());
        Ok(())
    }
}

contract! {
    /// Stores on separate connections racing, at a barrier, for the same thing: one `add` of a
    /// key, one `mark_done` of an id, one claim of an id, one lock, one fill of a queue with
    /// overlapping ids, one queue drained by batch claims; and counting with `incr`. Exactly
    /// one wins each race, every id is queued once and claimed once, and no increment is lost.
    fn stores_racing_for_the_same_thing_have_exactly_one_winner(f) {
        const STORES: usize = 5;
        const INCRS: i64 = 20;
        let at_once = Arc::new(Rendezvous::new(STORES));
        let handles: Vec<_> = (0..STORES)
            .map(|i| {
                let store = f.options().busy_timeout(Duration::from_secs(60)).open(&f.location);
                let at_once = at_once.clone();
                std::thread::spawn(move || -> Result<(usize, Vec<String>), Error> {
                    let store = store?;
                    let worker = format!("w{i}");
                    let mut won = 0;
                    at_once.wait();
                    won += usize::from(store.cache("race").add("k", i as i64, None)?);
                    at_once.wait();
                    won += usize::from(store.ledger("race").mark_done("x")?);
                    at_once.wait();
                    won += usize::from(
                        store.ledger("race").claim("y", &worker, Duration::from_secs(600))?.is_some(),
                    );
                    at_once.wait();
                    let guard = store.try_lock("race", Duration::from_secs(600))?;
                    won += usize::from(guard.is_some());
                    at_once.wait(); // every try_lock made before any guard is let go
                    drop(guard);
                    for _ in 0..INCRS {
                        store.cache("race").incr("n", 1, None)?;
                    }
                    // Overlapping fills: store i queues ids i*10 .. i*10+20.
                    at_once.wait();
                    let queued =
                        store.ledger("queue").enqueue((i * 10..i * 10 + 20).map(|n| format!("{n:03}")))?;
                    at_once.wait();
                    let mut claimed = Vec::new();
                    loop {
                        let batch =
                            store.ledger("queue").claim_next_many(&worker, Duration::from_secs(600), 3)?;
                        if batch.is_empty() {
                            break;
                        }
                        claimed.extend(batch.iter().map(|c| c.id().to_owned()));
                    }
                    claimed.push(format!("queued {queued}"));
                    Ok((won, claimed))
                })
            })
            .collect();
        let (mut won, mut claimed, mut queued) = (0, Vec::new(), 0);
        for (w, mut c) in join_all(handles)? {
            won += w;
            let q = c.pop().expect("the count queued");
            queued += q.strip_prefix("queued ").and_then(|n| n.parse::<u64>().ok()).expect("a count");
            claimed.extend(c);
        }
        assert_eq!(won, 4, "one winner for each of the four races");
        assert_eq!(f.store.cache("race").get::<i64>("n")?, Some(STORES as i64 * INCRS), "no increment lost");
        let distinct = (STORES - 1) * 10 + 20;
        assert_eq!((queued, f.store.ledger("queue").counts()?.claimed), (distinct as u64, distinct as u64));
        claimed.sort();
        let before = claimed.len();
        claimed.dedup();
        assert_eq!((before, claimed.len()), (distinct, distinct), "every queued id claimed once");
        Ok(())
    }
}

contract! {
    /// The fill in steps (`try_fill`): the first store to miss claims the key, another store
    /// (another connection) is told it is busy (and does not take over a live claim), the
    /// completed value reaches both, and the claimer's `get_or_set_with` twin waits on the
    /// same marker.
    fn a_fill_in_steps_claims_once_and_the_others_see_it_busy(f) {
        use cairn::FillTry;
        let other = f.reopen();
        let claim = match f.store.cache("c").try_fill::<String>("k")? {
            FillTry::Claimed(c) => c,
            found => panic!("a missing key is claimed, not {found:?}"),
        };
        assert_eq!(claim.key(), "k");
        assert!(matches!(other.cache("c").try_fill::<String>("k")?, FillTry::Busy));
        assert!(matches!(f.store.cache("c").retry_fill::<String>("k")?, FillTry::Busy), "busy for its own process too");
        f.store.cache("c").complete_fill(claim, &"v".to_string(), Duration::from_secs(60))?;
        assert!(matches!(other.cache("c").retry_fill::<String>("k")?, FillTry::Hit(v) if v == "v"));
        assert_eq!(other.cache("c").get_or_set_with("k", None, || Ok::<_, Error>("recomputed".to_string()))?, "v");
        Ok(())
    }

    /// An abandoned fill (its computation failed) lets the next caller claim at once; a value
    /// that cannot be stored releases the marker too.
    fn an_abandoned_or_unstorable_fill_frees_the_key_at_once(f) {
        use cairn::FillTry;
        let FillTry::Claimed(claim) = f.store.cache("c").try_fill::<Value>("k")? else {
            panic!("a missing key is claimed");
        };
        f.store.cache("c").abandon_fill(claim)?;
        let FillTry::Claimed(claim) = f.reopen().cache("c").try_fill::<Value>("k")? else {
            panic!("claimable again at once after abandon_fill");
        };
        let err = f.store.cache("c").complete_fill(claim, &1i64, Duration::ZERO).expect_err("a zero TTL");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(matches!(f.reopen().cache("c").try_fill::<Value>("k")?, FillTry::Claimed(_)), "freed by the failure");
        Ok(())
    }

    /// Hits and misses of a fill in steps count as get_or_set's do: one miss for the caller
    /// that waited (its retries are not counted again), one hit for a fresh value.
    fn a_fill_in_steps_counts_one_miss_per_caller(f) {
        use cairn::FillTry;
        let FillTry::Claimed(claim) = f.store.cache("s").try_fill::<i64>("k")? else { panic!("claimed") };
        let other = f.reopen();
        assert!(matches!(other.cache("s").try_fill::<i64>("k")?, FillTry::Busy));
        assert!(matches!(other.cache("s").retry_fill::<i64>("k")?, FillTry::Busy));
        f.store.cache("s").complete_fill(claim, &7i64, None)?;
        assert!(matches!(other.cache("s").retry_fill::<i64>("k")?, FillTry::Hit(7)));
        assert!(matches!(other.cache("s").try_fill::<i64>("k")?, FillTry::Hit(7)));
        f.store.flush_stats()?;
        other.flush_stats()?;
        let stats = f.store.cache("s").stats()?;
        assert_eq!((stats.hits, stats.misses), (1, 2), "{stats:?}");
        Ok(())
    }

    /// Inside a transaction the fill in steps is refused (its marker would not be seen).
    fn a_fill_in_steps_is_refused_inside_a_transaction(f) {
        let err = f.store.transaction(|tx| tx.cache("c").try_fill::<String>("k").map(|_| ())).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        Ok(())
    }
}
