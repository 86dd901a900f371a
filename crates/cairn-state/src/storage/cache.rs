//! The cache's part of the engine contract, and the rows it exchanges.

use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::Stored;

/// The most expired entries one call of a full sweep removes; a sweep that removed this many
/// goes on with another transaction.
pub(crate) const SWEEP_MANY_BATCH: u64 = 10_000;

engine_ops! {
    /// The TTL cache: entries, bounds, hit counts and compute-once markers.
    trait CacheOps {
        /// A fresh entry's value.
        fn cache_get(&self, ns: &str, key: &str, now: i64) -> Result<Option<Stored>>;
        /// Each key's fresh value, from one snapshot where the engine has one.
        fn cache_get_each(&self, ns: &str, keys: &[&str], now: i64) -> Result<Vec<Option<Stored>>>;
        /// A fresh entry's value, recording its use with `rank`.
        fn cache_get_touch(&self, ns: &str, key: &str, now: i64, rank: i64) -> Result<Option<Stored>>;
        /// The next recency rank of a bounded namespace.
        fn cache_next_rank(&self, ns: &str) -> Result<i64>;
        /// A fresh entry's value and expiry.
        fn cache_entry(&self, ns: &str, key: &str, now: i64) -> Result<Option<EntryRow>>;
        /// Whether a fresh entry exists.
        fn cache_contains(&self, ns: &str, key: &str, now: i64) -> Result<bool>;
        /// Insert or replace an entry (keeping a bounded namespace's sizes).
        fn cache_upsert(&self, ns: &str, key: &str, value: (&[u8], ValueKind), expires_at: Option<i64>, rank: Option<i64>) -> Result<()>;
        /// Insert unless a fresh entry exists; true if it inserted.
        fn cache_add(&self, ns: &str, key: &str, value: (&[u8], ValueKind), expires_at: Option<i64>, rank: Option<i64>, now: i64) -> Result<bool>;
        /// Delete an entry: `Some(fresh)` if there was one.
        fn cache_delete(&self, ns: &str, key: &str, now: i64) -> Result<Option<bool>>;
        /// A fresh entry's new expiry; false if none.
        fn cache_set_expiry(&self, ns: &str, key: &str, now: i64, expires_at: Option<i64>) -> Result<bool>;
        /// A page of fresh keys in `[from, until)` after `after`.
        fn cache_keys(&self, ns: &str, range: (&str, Option<&str>), after: &str, limit: i64, now: i64) -> Result<Vec<String>>;
        /// How many fresh entries a namespace holds.
        fn cache_len(&self, ns: &str, now: i64) -> Result<u64>;
        /// Delete a namespace's entries; how many.
        fn cache_clear(&self, ns: &str) -> Result<u64>;
        /// Delete a namespace's entries whose keys lie in `[from, until)` (`until` `None`: to the
        /// end), and their fill markers; how many entries.
        fn cache_clear_range(&self, ns: &str, range: (&str, Option<&str>)) -> Result<u64>;
        /// Delete a namespace's expired entries; how many.
        fn cache_sweep_ns(&self, ns: &str, now: i64) -> Result<u64>;
        /// Delete some (or a batch of) expired entries of any namespace, and stale fill markers.
        fn cache_sweep(&self, now: i64, many: bool) -> Result<u64>;
        /// A namespace's counters and settings.
        fn cache_ns(&self, ns: &str) -> Result<Option<NsRow>>;
        /// The namespaces with entries or settings, sorted.
        fn cache_namespaces(&self) -> Result<Vec<String>>;
        /// Serialize the writers of a bounded namespace until the transaction ends (its sizes
        /// must not change between a write and its evictions). A single-writer engine: nothing.
        fn cache_lock_ns(&self, ns: &str) -> Result<()>;
        /// Store a namespace's bounds (and rank or unrank its entries).
        fn cache_set_limits(&self, ns: &str, max_entries: Option<u64>, max_bytes: Option<u64>, lru: bool) -> Result<()>;
        /// Count a namespace's entries and bytes.
        fn cache_count(&self, ns: &str) -> Result<(u64, u64)>;
        /// Evict the `n` lowest-ranked entries but `keep`; how many.
        fn cache_evict(&self, ns: &str, keep: &str, n: u64) -> Result<u64>;
        /// Add hit and miss counts to a namespace's totals.
        fn cache_add_hit_counts(&self, ns: &str, hits: u64, misses: u64) -> Result<()>;
        /// Keep a reading process's counts outside the database until a write adds them, so that
        /// a process that only reads needs no write transaction; false if this engine keeps none
        /// (the caller writes them in a transaction).
        fn cache_defer_hit_counts(&self, counts: &[NsHitCounts]) -> Result<bool>;
        /// The counts kept so and not yet added.
        fn cache_deferred_hit_counts(&self) -> Result<Vec<NsHitCounts>>;
        /// Inside a write transaction: take the counts kept so, to be added by it.
        fn cache_take_deferred_hit_counts(&self) -> Result<Vec<NsHitCounts>>;
        /// Who is computing a key, until when.
        fn fill_get(&self, ns: &str, key: &str) -> Result<Option<(String, i64)>>;
        /// Take a key's fill marker unless someone holds a live one (`dead`: an owner found dead).
        fn fill_try_claim(&self, ns: &str, key: &str, owner: &str, expires_at: i64, now: i64, dead: Option<&str>) -> Result<bool>;
        /// Drop `owner`'s fill marker.
        fn fill_release(&self, ns: &str, key: &str, owner: &str) -> Result<()>;
        /// Move `owner`'s fill marker's expiry to `expires_at`; false if `owner` holds none.
        fn fill_renew(&self, ns: &str, key: &str, owner: &str, expires_at: i64) -> Result<bool>;
    }
}

/// A fresh entry: its value and expiry.
pub(crate) struct EntryRow {
    pub value: Stored,
    pub expires_at: Option<i64>,
}

/// A namespace's counters and settings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NsRow {
    pub entries: u64,
    pub bytes: u64,
    pub max_entries: Option<u64>,
    pub max_bytes: Option<u64>,
    pub lru: bool,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

/// Hits and misses of one namespace, counted and not yet added to its totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NsHitCounts {
    pub ns: String,
    pub hits: u64,
    pub misses: u64,
}
