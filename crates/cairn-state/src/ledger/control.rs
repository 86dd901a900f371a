//! Queue controls: cancelling items, snoozing a claimed one, pausing the namespace.

use super::*;
use crate::clock::LATEST_TIME_MILLIS;
use crate::duration::{at_least_1ms, format_time};

/// What `paused_until` holds for a pause that lasts until [`Ledger::resume`]: later than any
/// time a clock gives, so the claims' `paused_until > now` needs no case of its own.
const UNTIL_RESUMED: i64 = i64::MAX;

impl<'a> Ledger<'a> {
    /// Cancel `id`: it is never handed out again ([`ItemState::Cancelled`]), unless
    /// [`Ledger::retry`] puts it back. A worker holding it loses its claim: its
    /// [`Ledger::complete`], [`Ledger::fail_claim`], [`Ledger::extend`] and
    /// [`Ledger::release`] fail with [`ErrorKind::LeaseLost`](crate::ErrorKind::LeaseLost).
    /// Pending, claimed and given-up items can be cancelled; true if this call cancelled it,
    /// false if it was cancelled already. An unknown id, or a done item, is refused with
    /// `InvalidInput`, changing nothing. ([`Ledger::mark_done`] still records a cancelled item
    /// done: that is a decision, not a hand-out.)
    ///
    /// ```
    /// use cairn::{ErrorKind, ItemState, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a", "b"])?;
    /// let claim = queue.claim_next("w1", Duration::from_secs(60))?.expect("a");
    /// assert!(queue.cancel("a")?);
    /// assert_eq!(queue.complete(&claim).unwrap_err().kind(), ErrorKind::LeaseLost);
    /// assert_eq!(queue.item("a")?.expect("known").state, ItemState::Cancelled);
    /// assert_eq!(queue.claim_next("w2", Duration::from_secs(60))?.expect("b").id(), "b");
    /// assert_eq!(queue.cancel("nope").unwrap_err().kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn cancel(&self, id: &str) -> Result<bool> {
        Ok(self.cancel_many([id])? == 1)
    }

    /// [`Ledger::cancel`] several items at once, all or none: if any id is unknown or done,
    /// nothing is cancelled. Returns how many this call cancelled (not those cancelled
    /// already).
    pub fn cancel_many<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<u64> {
        let ids = collect_ids(ids)?;
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        self.write(|s| {
            // Every id checked before any is cancelled, so that a refusal inside a caller's
            // transaction leaves nothing half done.
            for id in &ids {
                match s.engine.ledger_item(self.ns, id)? {
                    None => {
                        return Err(Error::invalid(format!(
                            "no item {id:?} in ledger namespace {:?}: nothing cancelled",
                            self.ns
                        )))
                    }
                    Some(row) if row.state == DONE => {
                        return Err(Error::invalid(format!(
                            "item {id:?} of ledger namespace {:?} is done already: nothing cancelled",
                            self.ns
                        )))
                    }
                    Some(_) => {}
                }
            }
            let now = s.now();
            let mut n = 0;
            for id in &ids {
                n += u64::from(s.engine.ledger_cancel(self.ns, id, now)?);
            }
            Ok(n)
        })
    }

    /// Give a claimed item back to the queue, due `delay` from now, its attempts unchanged
    /// (the next claim shows the same attempt number): for an item that cannot be worked on
    /// yet (a rate limit upstream, a file not there yet). The claim ends. Fails with
    /// `LeaseLost`, changing nothing, if the claim was lost (another worker claimed the item
    /// since, or it was cancelled); a delay under 1ms is refused with `InvalidInput`.
    ///
    /// ```
    /// use cairn::{ManualClock, Options};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000_000);
    /// let store = Options::new().clock(clock.clone()).open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a"])?;
    /// let lease = Duration::from_secs(60);
    /// let claim = queue.claim_next("w1", lease)?.expect("a");
    /// queue.snooze(&claim, Duration::from_secs(600))?;
    /// assert!(queue.claim_next("w1", lease)?.is_none(), "not due for 10 minutes");
    /// clock.advance(Duration::from_secs(600));
    /// assert_eq!(queue.claim_next("w1", lease)?.expect("due").attempt(), 1);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn snooze(&self, claim: &Claim, delay: Duration) -> Result<()> {
        at_least_1ms(delay, "a snooze", "would hand the item out again at once (use release)")?;
        self.write_one(|s| {
            let now = s.now();
            let due = deadline(now, delay);
            if s.engine.ledger_snooze(self.ns, claim.id(), claim.worker(), claim.token(), due, now)? {
                Ok(())
            } else {
                Err(claims::lost(claim))
            }
        })
    }

    /// Pause the namespace: [`Ledger::claim_next`] and [`Ledger::claim_next_many`] hand
    /// nothing out, and [`Ledger::claim`] claims nothing (but a worker's renewal of a claim it
    /// holds), until `until` (Unix milliseconds) or, with `None`, until [`Ledger::resume`].
    /// Claims held go on: their workers complete, fail or release them as usual. Pausing
    /// again replaces the pause before. A time not later than now is refused with
    /// `InvalidInput`, changing nothing.
    ///
    /// The claims read the pause where they choose their item: on a file in the same write
    /// transaction, so no claim commits after the pause has; on PostgreSQL in the claim's own
    /// statement, so a claim whose statement began before the pause committed may still hand
    /// out its item.
    ///
    /// ```
    /// use cairn::{ManualClock, Options, Pause};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000_000);
    /// let store = Options::new().clock(clock.clone()).open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a"])?;
    /// queue.pause(None)?; // an outage upstream
    /// assert_eq!(queue.paused()?, Some(Pause::UntilResumed));
    /// assert!(queue.claim_next("w1", Duration::from_secs(60))?.is_none());
    /// queue.resume()?;
    /// assert!(queue.claim_next("w1", Duration::from_secs(60))?.is_some());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn pause(&self, until: Option<i64>) -> Result<()> {
        self.write(|s| {
            let stored = match until {
                None => UNTIL_RESUMED,
                Some(at) => {
                    let now = s.now();
                    if at <= now {
                        return Err(Error::invalid(format!(
                            "a pause until {} is over already (it is {}): give a later time",
                            format_time(at),
                            format_time(now)
                        )));
                    }
                    at.min(LATEST_TIME_MILLIS)
                }
            };
            s.engine.ledger_set_paused(self.ns, Some(stored))
        })
    }

    /// [`Ledger::pause`] for `d` from now; under 1ms is refused with `InvalidInput`.
    ///
    /// ```
    /// use cairn::{ManualClock, Options};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000_000);
    /// let store = Options::new().clock(clock.clone()).open_in_memory()?;
    /// let queue = store.ledger("jobs");
    /// queue.enqueue(["a"])?;
    /// queue.pause_for(Duration::from_secs(300))?;
    /// assert!(queue.claim_next("w1", Duration::from_secs(60))?.is_none());
    /// clock.advance(Duration::from_secs(300));
    /// assert!(queue.paused()?.is_none());
    /// assert!(queue.claim_next("w1", Duration::from_secs(60))?.is_some());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn pause_for(&self, d: Duration) -> Result<()> {
        at_least_1ms(d, "a pause", "would end before it began")?;
        self.write(|s| s.engine.ledger_set_paused(self.ns, Some(deadline(s.now(), d))))
    }

    /// End a pause ([`Ledger::pause`]): the queue hands items out again. True if the namespace
    /// was paused.
    pub fn resume(&self) -> Result<bool> {
        self.write(|s| {
            let was = self.paused_at(s.now())?.is_some();
            if s.engine.ledger_paused_until(self.ns)?.is_some() {
                s.engine.ledger_set_paused(self.ns, None)?;
            }
            Ok(was)
        })
    }

    /// Whether the namespace is paused now, and until when; `None` if it is not.
    pub fn paused(&self) -> Result<Option<Pause>> {
        self.check_ns()?;
        self.paused_at(self.store.now())
    }

    pub(super) fn paused_at(&self, now: i64) -> Result<Option<Pause>> {
        Ok(match self.store.engine.ledger_paused_until(self.ns)? {
            Some(UNTIL_RESUMED) => Some(Pause::UntilResumed),
            Some(at) if at > now => Some(Pause::Until(shown_time(at))),
            _ => None,
        })
    }

    /// Whether `worker` holds a live claim on `id`: claiming it again renews it, paused or not.
    pub(super) fn renews(&self, s: &Store, id: &str, worker: &str) -> Result<bool> {
        let now = s.now();
        Ok(s.engine.ledger_item(self.ns, id)?.is_some_and(|row| {
            row.state == CLAIMED && row.worker.as_deref() == Some(worker) && row.seq.is_some_and(|t| t > now)
        }))
    }
}
