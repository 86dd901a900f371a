//! What the cache keeps per store handle between operations: hit and miss counts not yet
//! written (and the file beside the database where a reading process leaves them), when to
//! sweep in passing, eviction policies, the bounds read in the current transaction.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use super::CacheLimits;
use crate::error::Result;
use crate::storage::{CacheOps, Engine, EngineOps, MemoOps, NsHitCounts};
use crate::store::{FeatureState, Store};

/// Every this many write transactions of a store that write the cache, one also removes a few
/// expired entries. Transactions that write no cache entry (a ledger worker's claims and
/// completions) create nothing to expire and do not count: on a server each sweep is a
/// transaction of its own, a round trip per item for a queue worker that never used the cache.
const SWEEP_EVERY: u64 = 8;
// One amortized sweep removes up to 64 expired entries (a literal in its SQL): 8 per write on
// average, against at most one entry created per write, so they cannot pile up.

/// How often a store on an engine whose bookkeeping runs apart writes its hit counts.
const COUNTS_EVERY: Duration = Duration::from_secs(5);

/// How often a store's write transactions add the counts that reading processes kept apart
/// ([`CacheState::defer`]): at its first write, then at most this often.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Hits and misses counted in memory, written with the next write transaction.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HitCounts {
    pub hits: u64,
    pub misses: u64,
}

/// What the cache keeps per store handle between operations. Counting each read in the file
/// would turn every read into a write, so hits and misses wait here for the next write
/// transaction, or, when the store is dropped before one, are kept apart by the engine
/// (SQLite: a file beside the database) until some process's next write adds them; a
/// namespace's eviction policy is read once; its bounds once per transaction (while the write
/// lock is held, no other process can change them).
#[derive(Debug, Default)]
pub(crate) struct CacheState {
    hit_counts: RefCell<HashMap<String, HitCounts>>,
    /// Per namespace: do hits record their use (least recently used eviction)? Another
    /// process's change is seen after the store is reopened.
    policies: RefCell<HashMap<String, bool>>,
    /// Bounds read during the current write transaction (cleared at each BEGIN).
    tx_limits: RefCell<HashMap<String, CacheLimits>>,
    /// Write transactions that wrote the cache, and whether the current one has.
    writes: Cell<u64>,
    wrote: Cell<bool>,
    /// When the counts were last written apart from a write (see [`CacheState::after_commit`]).
    flushed: Cell<Option<std::time::Instant>>,
    /// When a write transaction last added the counts kept apart (see [`CacheState::defer`]).
    folded: Cell<Option<std::time::Instant>>,
    /// The counts the current transaction is writing, given back if it rolls back.
    in_flight: RefCell<Option<HashMap<String, HitCounts>>>,
}

impl FeatureState for CacheState {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn begun(&self) {
        self.tx_limits.borrow_mut().clear();
    }

    fn before_commit(&self, engine: &Engine, now: i64) -> Result<()> {
        let counts = self.take_hit_counts();
        let written = self.ride_along(engine, &counts, now);
        *self.in_flight.borrow_mut() = Some(counts);
        written
    }

    fn rolled_back(&self) {
        if let Some(counts) = self.in_flight.take() {
            self.restore_hit_counts(counts);
        }
    }

    fn committed(&self, engine: &Engine, now: i64) {
        self.in_flight.take();
        self.after_commit(engine, now);
    }

    /// Leaves the pending hit and miss counts to the engine to keep apart until another
    /// write adds them (SQLite: `<db>-hits`), so that a process that only read needs no write
    /// transaction; where it cannot, writes them, waiting at most a moment for the lock:
    /// statistics are not worth stalling a process's exit.
    fn closing(&self, store: &Store) {
        if self.has_pending_hit_counts() && !self.defer(&store.engine) {
            store.engine.set_busy_timeout(Duration::from_millis(200));
            let _ = store.flush_stats();
        }
    }
}

impl CacheState {
    pub(crate) fn count(&self, ns: &str, hit: bool, read_only: bool) {
        if read_only {
            return;
        }
        let mut counts = self.hit_counts.borrow_mut();
        let t = match counts.get_mut(ns) {
            Some(t) => t,
            None => counts.entry(ns.to_owned()).or_default(),
        };
        if hit {
            t.hits += 1;
        } else {
            t.misses += 1;
        }
    }

    pub(crate) fn has_pending_hit_counts(&self) -> bool {
        !self.hit_counts.borrow().is_empty()
    }

    pub(crate) fn pending_hit_counts(&self, ns: &str) -> HitCounts {
        self.hit_counts.borrow().get(ns).copied().unwrap_or_default()
    }

    pub(crate) fn take_hit_counts(&self) -> HashMap<String, HitCounts> {
        self.hit_counts.take()
    }

    /// Put back counts whose write was rolled back.
    pub(crate) fn restore_hit_counts(&self, counts: HashMap<String, HitCounts>) {
        let mut mine = self.hit_counts.borrow_mut();
        for (ns, t) in counts {
            let e = mine.entry(ns).or_default();
            e.hits += t.hits;
            e.misses += t.misses;
        }
    }

    /// What rides along with every write transaction before it commits: the counts gathered
    /// by reads, and every [`SWEEP_EVERY`]th time a small sweep of expired entries. On an
    /// engine whose bookkeeping runs apart, nothing here: see [`CacheState::after_commit`].
    pub(crate) fn ride_along(
        &self,
        engine: &Engine,
        counts: &HashMap<String, HitCounts>,
        now: i64,
    ) -> Result<()> {
        if engine.bookkeeping_apart() {
            return Ok(());
        }
        Self::write_hit_counts(engine, counts)?;
        if self.folded.get().is_none_or(|at| at.elapsed() >= FOLD_EVERY) {
            self.folded.set(Some(std::time::Instant::now()));
            for t in engine.cache_take_deferred_hit_counts()? {
                engine.cache_add_hit_counts(&t.ns, t.hits, t.misses)?;
            }
        }
        if self.due_for_sweep() && engine.cache_sweep(now, false)? > 0 {
            engine.memo_chunks_gc(now)?;
        }
        Ok(())
    }

    /// On an engine shared by many writers, after a write committed: the amortized sweep in a
    /// transaction of its own, and the counts at most every [`COUNTS_EVERY`] (each store would
    /// otherwise update its namespaces' counters in every transaction: rows every writer
    /// wants). Failures are left for the next time: nothing here may fail the write.
    pub(crate) fn after_commit(&self, engine: &Engine, now: i64) {
        if !engine.bookkeeping_apart() {
            return;
        }
        if self.due_for_sweep() {
            let _ = Self::apart(engine, |e| {
                if e.cache_sweep(now, false)? > 0 {
                    e.memo_chunks_gc(now)?;
                }
                Ok(())
            });
        }
        let due = self.flushed.get().is_none_or(|at| at.elapsed() >= COUNTS_EVERY);
        if due && self.has_pending_hit_counts() {
            self.flush_apart(engine);
        }
    }

    /// Have the next write transaction add the counts kept apart, however recently the last
    /// one did.
    pub(crate) fn fold_at_next_write(&self) {
        self.folded.set(None);
    }

    /// Hand the pending counts to the engine to keep apart, for a store closing without a
    /// write: false (the counts stay pending) if the engine keeps none.
    pub(crate) fn defer(&self, engine: &Engine) -> bool {
        let counts = self.take_hit_counts();
        let mut rows: Vec<NsHitCounts> = counts
            .iter()
            .map(|(ns, t)| NsHitCounts { ns: ns.clone(), hits: t.hits, misses: t.misses })
            .collect();
        rows.sort_by(|a, b| a.ns.cmp(&b.ns));
        if engine.cache_defer_hit_counts(&rows).unwrap_or(false) {
            return true;
        }
        self.restore_hit_counts(counts);
        false
    }

    /// Write the counts now, in a transaction of their own (for an engine whose bookkeeping
    /// runs apart; see [`CacheState::after_commit`]).
    pub(crate) fn flush_apart(&self, engine: &Engine) {
        let counts = self.take_hit_counts();
        if Self::apart(engine, |e| Self::write_hit_counts(e, &counts)).is_err() {
            self.restore_hit_counts(counts);
        }
        self.flushed.set(Some(std::time::Instant::now()));
    }

    fn apart(engine: &Engine, f: impl FnOnce(&Engine) -> Result<()>) -> Result<()> {
        engine.begin_immediate()?;
        match f(engine).and_then(|()| engine.commit()) {
            Ok(()) => Ok(()),
            Err(e) => {
                engine.rollback_quietly();
                Err(e)
            }
        }
    }

    fn write_hit_counts(engine: &Engine, counts: &HashMap<String, HitCounts>) -> Result<()> {
        // In name order, so that two stores flushing the same namespaces lock them in the same
        // order (which matters to an engine with row locks).
        let mut names: Vec<&String> = counts.keys().collect();
        names.sort();
        for ns in names {
            let t = counts[ns];
            engine.cache_add_hit_counts(ns, t.hits, t.misses)?;
        }
        Ok(())
    }

    /// A cache write is under way: the transaction it is in counts toward the next sweep.
    pub(crate) fn note_write(&self) {
        self.wrote.set(true);
    }

    fn due_for_sweep(&self) -> bool {
        if !self.wrote.replace(false) {
            return false;
        }
        let n = self.writes.get();
        self.writes.set(n.wrapping_add(1));
        n % SWEEP_EVERY == 0
    }

    /// Whether hits in `ns` must record their use (least-recently-used eviction).
    pub(crate) fn is_lru(&self, engine: &Engine, ns: &str) -> Result<bool> {
        if let Some(&lru) = self.policies.borrow().get(ns) {
            return Ok(lru);
        }
        let row = engine.cache_ns(ns)?.unwrap_or_default();
        let lru = row.lru && (row.max_entries.is_some() || row.max_bytes.is_some());
        self.policies.borrow_mut().insert(ns.to_owned(), lru);
        Ok(lru)
    }

    /// Keep the policy of `ns` read by another statement (`lru` as [`CacheState::is_lru`]
    /// computes it), unless it is known already: its next hit need not read it.
    pub(crate) fn know_policy(&self, ns: &str, lru: bool) {
        self.policies.borrow_mut().entry(ns.to_owned()).or_insert(lru);
    }

    /// The policy of `ns` known without reading it, if any.
    #[cfg(test)]
    pub(crate) fn known_policy(&self, ns: &str) -> Option<bool> {
        self.policies.borrow().get(ns).copied()
    }

    pub(crate) fn tx_limits(&self, ns: &str) -> Option<CacheLimits> {
        self.tx_limits.borrow().get(ns).copied()
    }

    pub(crate) fn remember_tx_limits(&self, ns: &str, limits: CacheLimits) {
        self.tx_limits.borrow_mut().insert(ns.to_owned(), limits);
    }

    pub(crate) fn forget_policy(&self, ns: &str) {
        self.policies.borrow_mut().remove(ns);
    }
}
