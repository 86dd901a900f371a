//! Waiting for work instead of polling: a claim that blocks until an item is due, and a wait
//! for a namespace to drain. Between attempts the waiter sleeps until another connection
//! commits (the engine's [`Watcher`]: inotify and `data_version` on a file, a backoff poll on
//! a server) or until the next time something comes due by itself: a delayed item or a retry,
//! a claim's lease running out, the end of a pause.

use super::*;
use crate::storage::{EngineOps, WakeRow, WatchOps, Watcher, Woke};

/// The longest a waiter sleeps between looks at the clock and at `stop`: how late a deadline
/// on a clock that jumps (or a test's manual clock) is seen, and how soon `stop` is asked.
const SLICE: Duration = Duration::from_millis(100);

/// How often a waiter tries again while items are claimed, though nothing changed: a claim
/// whose process died on this host is claimable without any commit to tell.
const DEAD_RECHECK: Duration = Duration::from_secs(1);

/// The store handle's watcher, kept from one wait to the next: closing an inotify descriptor
/// makes the kernel wait for a grace period (10 to 20 ms, measured: it was most of a worker's
/// wake-up latency when each wait made its own), and its connection costs more to open than a
/// claim.
#[derive(Default)]
pub(crate) struct KeptWatcher(std::cell::RefCell<Option<Watcher>>);

impl crate::store::FeatureState for KeptWatcher {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    /// The watcher's connection closes before the store's, so that the store's is the file's
    /// last and settles the -wal as it does without one.
    fn closing(&self, _store: &crate::store::Store) {
        self.0.borrow_mut().take();
    }
}

impl<'a> Ledger<'a> {
    /// [`Ledger::claim_next`], waiting up to `wait` for an item to claim: it returns as soon as
    /// one is queued by any process (within milliseconds of the commit), comes due (a delayed
    /// item, a retry after its backoff), is freed (a lease runs out, the namespace's pause ends,
    /// a group's claimed item is completed; a claim whose process died on this host, which
    /// commits nothing, within about a second). `None` once `wait` has passed with nothing to
    /// claim: `wait` on the store's clock ([`Options::clock`](crate::Options::clock), looked at
    /// every 100 ms at least; a test's manual clock moved past it ends the wait) or in real
    /// time, whichever passes first.
    ///
    /// An idle waiter costs next to nothing: on a file it sleeps until the operating system
    /// reports a write to the database (inotify on Linux; elsewhere it checks the file's
    /// change counter at most every 50 ms); on PostgreSQL it polls with a backoff from 5 to
    /// 250 ms (no LISTEN, which poolers in transaction mode break). Refused inside a
    /// transaction, which would hold the write lock while it waits.
    ///
    /// ```
    /// use cairn::{QueueItem, Store};
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("state.db");
    /// let store = Store::open(&path)?;
    /// let producer = std::thread::spawn(move || -> cairn::Result<u64> {
    ///     Store::open(&path)?.ledger("jobs").enqueue(["a"])
    /// });
    /// let queue = store.ledger("jobs");
    /// let claim = queue.claim_next_wait("w1", Duration::from_secs(60), Duration::from_secs(30))?;
    /// assert_eq!(claim.expect("queued by the other handle").id(), "a");
    /// producer.join().expect("producer")?;
    /// queue.enqueue_items([QueueItem::new("later").delay(Duration::from_secs(3600))])?;
    /// assert!(queue.claim_next_wait("w1", Duration::from_secs(60), Duration::from_millis(20))?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn claim_next_wait(&self, worker: &str, lease: Duration, wait: Duration) -> Result<Option<Claim>> {
        self.claim_next_wait_or_stop(worker, lease, Some(wait), &mut || false)
    }

    /// [`Ledger::claim_next_wait`] without a limit (`wait: None`) or with one, and `stop`
    /// asked at least every 100 ms while it waits: when it says true, the wait ends with
    /// `None` (what a caller that handles signals, or Python's Ctrl-C, needs).
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let mut asked = 0;
    /// let claim = store.ledger("jobs").claim_next_wait_or_stop("w1", Duration::from_secs(60), None, &mut || {
    ///     asked += 1;
    ///     asked > 2 // a signal came
    /// })?;
    /// assert!(claim.is_none());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn claim_next_wait_or_stop(
        &self,
        worker: &str,
        lease: Duration,
        wait: Option<Duration>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Claim>> {
        validate_name("worker", worker, MAX_ID_BYTES)?;
        validate_lease(lease)?;
        self.check_ns()?;
        self.refuse_in_tx("claim_next_wait")?;
        self.wait_for(wait, stop, |ledger| ledger.claim_next(worker, lease))
    }

    /// Wait until no item of the namespace is pending (queued, delayed or waiting for a
    /// retry) or claimed: what a script that queued work for other workers waits on before it
    /// goes on. True once drained; false if `timeout` passed first (on the store's clock or in
    /// real time, as for [`Ledger::claim_next_wait`]); `None` waits as long as it takes. An
    /// idle wait costs as little as a waiting claim's.
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a"])?;
    /// assert!(!queue.wait_drained(Some(Duration::from_millis(10)))?, "a is still queued");
    /// let claim = queue.claim_next("w1", Duration::from_secs(60))?.expect("a");
    /// queue.complete(&claim)?;
    /// assert!(queue.wait_drained(None)?);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn wait_drained(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait_drained_or_stop(timeout, &mut || false)
    }

    /// [`Ledger::wait_drained`] with `stop` asked at least every 100 ms while it waits: when
    /// it says true, the wait ends with false.
    pub fn wait_drained_or_stop(
        &self,
        timeout: Option<Duration>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<bool> {
        self.check_ns()?;
        self.refuse_in_tx("wait_drained")?;
        let drained = |ledger: &Self| Ok((!ledger.store.engine.ledger_wake(ledger.ns)?.active).then_some(()));
        Ok(self.wait_for(timeout, stop, drained)?.is_some())
    }

    fn refuse_in_tx(&self, what: &str) -> Result<()> {
        if self.in_tx || self.store.engine.in_transaction() {
            return Err(Error::invalid(format!(
                "{what} cannot wait inside a transaction: its write lock would keep every other \
                 process from the changes it waits for; call it outside"
            )));
        }
        Ok(())
    }

    /// Try `attempt` whenever something may have changed, until it gives a value or `limit`
    /// passes (or `stop` says so). Nothing is read or armed before the first attempt fails:
    /// a worker that finds an item at once pays for the claim alone.
    fn wait_for<T>(
        &self,
        limit: Option<Duration>,
        stop: &mut dyn FnMut() -> bool,
        attempt: impl FnMut(&Self) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        let kept = &self.store.feature::<KeptWatcher>().0;
        let mut watcher = None;
        let result = self.wait_loop(limit, stop, attempt, &mut watcher, kept);
        if let Some(w) = watcher {
            *kept.borrow_mut() = Some(w);
        }
        result
    }

    fn wait_loop<T>(
        &self,
        limit: Option<Duration>,
        stop: &mut dyn FnMut() -> bool,
        mut attempt: impl FnMut(&Self) -> Result<Option<T>>,
        watcher: &mut Option<Watcher>,
        kept: &std::cell::RefCell<Option<Watcher>>,
    ) -> Result<Option<T>> {
        let store = self.store;
        let give_up = limit.map(|d| deadline(store.now(), d));
        // Also in real time: a manual clock that nobody moves must not make a bounded wait
        // endless (on the system clock both deadlines are the same).
        let give_up_real = limit.and_then(|d| std::time::Instant::now().checked_add(d));
        let mut last = WakeRow::default();
        let mut try_now = true;
        let mut last_try = std::time::Instant::now();
        loop {
            if try_now {
                if let Some(found) = attempt(self)? {
                    return Ok(Some(found));
                }
                last_try = std::time::Instant::now();
            }
            let now = store.now();
            let real_left = give_up_real.map(|g| g.saturating_duration_since(std::time::Instant::now()));
            if give_up.is_some_and(|g| now >= g) || real_left.is_some_and(|l| l.is_zero()) || stop() {
                return Ok(None);
            }
            let w = match watcher.as_mut() {
                Some(w) => w,
                None => {
                    // Armed, then one more attempt: a commit after it is seen by the watcher,
                    // one before it by the attempt.
                    let taken = kept.borrow_mut().take();
                    *watcher = Some(match taken {
                        Some(mut w) => {
                            w.rearm();
                            w
                        }
                        None => store.engine.watcher()?,
                    });
                    last = store.engine.ledger_wake(self.ns)?;
                    try_now = true;
                    continue;
                }
            };
            let next = [last.next_event(now), give_up].into_iter().flatten().min();
            let left = next.map_or(SLICE, |t| Duration::from_millis(u64::try_from(t - now).unwrap_or(0)));
            let woke = w.wait(left.min(SLICE).min(real_left.unwrap_or(SLICE)))?;
            // A watcher that reports commits saw none: the namespace is as last read (an idle
            // waiter's slice costs a `poll`, not a query).
            let wake = if woke == Woke::Changed || !w.notifies() {
                store.engine.ledger_wake(self.ns)?
            } else {
                last
            };
            let changed = wake != last;
            if changed {
                w.saw_change();
            }
            let now = store.now();
            // Without notifications, a change is seen in what was read; an item due but not
            // handed out (its group busy) is tried again at each nap too.
            let blocked_due = !w.notifies() && wake.earliest_due.is_some_and(|d| d <= now);
            try_now = woke == Woke::Changed
                || changed
                || blocked_due
                || next.is_some_and(|t| now >= t)
                || (wake.claimed > 0 && last_try.elapsed() >= DEAD_RECHECK);
            last = wake;
        }
    }
}
