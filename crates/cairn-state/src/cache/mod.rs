//! The TTL cache: what a hit, a miss and an expired entry are, when to evict, and how several
//! processes compute a missing value once.
//!
//! Expiry is a predicate, not a timer: an entry whose `expires_at` is not after "now" is a
//! miss everywhere, whether or not it has been removed yet. Removal happens in [`Cache::sweep`],
//! [`Store::sweep`], and a few at a time with every eighth write of a store. Every path that
//! removes entries (delete, clears, sweeps, evictions) then removes the chunks of memo outputs
//! whose entry is gone (`memo_chunks_gc`): one probe of an empty table when no large memo
//! output is stored.
//!
//! Here the operations and their policies; in `fill.rs` computing a missing value once across
//! processes; in `state.rs` what a store handle keeps between operations (counts not yet
//! written, eviction policies, bounds read in the current transaction).

use std::time::Duration;

use crate::clock::deadline;
use crate::codec::{truncated, Decode, DecodeError, Encode, ValueKind};
use crate::error::{Error, Result};
use crate::names::{validate_key, validate_ns, validate_value};
use crate::storage::Stored;
use crate::storage::{CacheOps, EngineOps, MemoOps};
use crate::store::Store;
use crate::tx::Tx;

mod fill;
mod state;

pub(crate) use fill::FillTicket;
pub use fill::{FillClaim, FillTry};
pub(crate) use state::CacheState;

/// Which entries a bounded namespace evicts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Eviction {
    /// Least recently stored: the entry written longest ago goes first. Reads stay pure reads.
    #[default]
    LeastRecentlyStored,
    /// Least recently used: a hit also counts as a use. Every hit then becomes a small write
    /// transaction: about 100 µs instead of 5 µs on the machine of docs/BENCHMARKS.md, some
    /// 20 times a plain hit. Choose it only where access recency matters more than read speed.
    LeastRecentlyUsed,
}

impl Eviction {
    /// The policy's short name: `lrs` (least recently stored) or `lru` (least recently used).
    pub fn as_str(self) -> &'static str {
        match self {
            Eviction::LeastRecentlyStored => "lrs",
            Eviction::LeastRecentlyUsed => "lru",
        }
    }
}

impl std::fmt::Display for Eviction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `lrs` or `least-recently-stored`, `lru` or `least-recently-used`.
///
/// ```
/// use cairn::Eviction;
///
/// assert_eq!("lru".parse::<Eviction>()?, Eviction::LeastRecentlyUsed);
/// assert_eq!("least-recently-stored".parse::<Eviction>()?, Eviction::LeastRecentlyStored);
/// assert_eq!(Eviction::LeastRecentlyUsed.to_string(), "lru");
/// assert!("fifo".parse::<Eviction>().is_err());
/// # Ok::<(), cairn::Error>(())
/// ```
impl std::str::FromStr for Eviction {
    type Err = Error;

    fn from_str(name: &str) -> Result<Eviction> {
        match name {
            "lrs" | "least-recently-stored" => Ok(Eviction::LeastRecentlyStored),
            "lru" | "least-recently-used" => Ok(Eviction::LeastRecentlyUsed),
            other => Err(Error::invalid(format!("eviction is \"lrs\" or \"lru\", not {other:?}"))),
        }
    }
}

/// Size bounds of a namespace. Bounds are stored in the file, so every process writing the
/// namespace enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheLimits {
    /// At most this many entries (expired ones not yet swept included).
    pub max_entries: Option<u64>,
    /// At most this many bytes of keys and values.
    pub max_bytes: Option<u64>,
    /// What goes first when a bound is exceeded.
    pub eviction: Eviction,
}

impl CacheLimits {
    fn bounded(&self) -> bool {
        self.max_entries.is_some() || self.max_bytes.is_some()
    }
}

/// A namespace's size and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Entries stored, including expired ones not yet swept.
    pub entries: u64,
    /// Bytes of keys and values stored.
    pub bytes: u64,
    /// Reads that found a fresh entry, in every process (this store's unflushed ones included).
    pub hits: u64,
    /// Reads that found nothing fresh.
    pub misses: u64,
    /// Entries removed to respect a size bound.
    pub evictions: u64,
    /// The namespace's bounds.
    pub limits: CacheLimits,
}

impl CacheStats {
    /// Hits over reads, or `None` before the first read.
    pub fn hit_rate(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

impl Store {
    /// The cache namespace `ns`. Each operation on it is its own transaction; inside
    /// [`Store::transaction`] use [`Tx::cache`] instead.
    pub fn cache<'a>(&'a self, ns: &'a str) -> Cache<'a> {
        Cache::new(self, ns, false)
    }

    /// Remove every expired cache entry, in every namespace. Returns how many. Writes also
    /// remove a few in passing, so calling this is optional.
    pub fn sweep(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.write_tx(|s| {
                let n = s.engine.cache_sweep(s.now(), true)?;
                // The chunks of large memo outputs whose entries went (and of dead runs).
                s.engine.memo_chunks_gc(s.now())?;
                Ok::<_, Error>(n)
            })?;
            total += n;
            if n < crate::storage::SWEEP_MANY_BATCH {
                return Ok(total);
            }
        }
    }

    /// The cache namespaces that hold entries or statistics, sorted.
    pub fn cache_namespaces(&self) -> Result<Vec<String>> {
        self.engine.cache_namespaces()
    }

    /// Write the hit and miss counts gathered by reads since the last write, and on SQLite
    /// those that processes which only read left beside the file (`<db>-hits`). Done anyway
    /// by writes (and when the store is dropped, kept beside the file); [`Cache::stats`]
    /// counts them all already. Call this to have them in the database now.
    pub fn flush_stats(&self) -> Result<()> {
        if self.is_read_only() {
            return Ok(());
        }
        if self.engine.bookkeeping_apart() {
            if self.cache_state().has_pending_hit_counts() {
                self.cache_state().flush_apart(&self.engine);
            }
            return Ok(());
        }
        if !self.cache_state().has_pending_hit_counts() && self.engine.cache_deferred_hit_counts()?.is_empty()
        {
            return Ok(());
        }
        self.cache_state().fold_at_next_write();
        self.write_tx(|_| Ok(()))
    }

    /// The cache's state for this handle.
    pub(crate) fn cache_state(&self) -> &CacheState {
        self.feature()
    }
}

impl Tx<'_> {
    /// The cache namespace `ns`, inside this transaction.
    ///
    /// ```
    /// use cairn::{Error, Store};
    ///
    /// let store = Store::open_in_memory()?;
    /// let result = store.transaction(|tx| {
    ///     tx.cache("a").set("k", "written", None)?;
    ///     Err::<(), _>(Error::InvalidInput("changed my mind".into()))
    /// });
    /// assert!(result.is_err());
    /// assert_eq!(store.cache("a").get::<String>("k")?, None); // rolled back
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn cache<'a>(&'a self, ns: &'a str) -> Cache<'a> {
        Cache::new(self.store(), ns, true)
    }
}

/// One namespace of the cache, from [`Store::cache`] (each operation its own transaction) or
/// [`Tx::cache`](crate::Tx::cache) (operations join the transaction).
///
/// Keys are non-empty strings of at most [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES) without NUL; values are anything
/// that implements [`Encode`] and [`Decode`]: bytes, strings, integers, [`Json`](crate::Json).
///
/// ```
/// use cairn::Store;
/// use std::time::Duration;
///
/// let store = Store::open_in_memory()?;
/// let cache = store.cache("http");
/// cache.set("https://example.com", b"<html>".to_vec(), Duration::from_secs(3600))?;
/// assert_eq!(cache.get::<Vec<u8>>("https://example.com")?, Some(b"<html>".to_vec()));
/// assert!(!cache.add("https://example.com", "other", None)?); // already there
/// assert_eq!(cache.incr("fetches", 1, None)?, 1);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Cache<'a> {
    pub(crate) store: &'a Store,
    ns: &'a str,
    in_tx: bool,
}

impl<'a> Cache<'a> {
    pub(crate) fn new(store: &'a Store, ns: &'a str, in_tx: bool) -> Self {
        Cache { store, ns, in_tx }
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        self.ns
    }

    /// True for a handle of a transaction ([`Tx::cache`](crate::Tx::cache)).
    pub(crate) fn in_tx(&self) -> bool {
        self.in_tx
    }

    /// Run a write: inside the caller's transaction, or as a one-operation transaction.
    ///
    /// A one-operation transaction that the server ended to break a deadlock or a
    /// serialization failure ([`Error::Conflict`]: nothing of it was committed) is run again,
    /// a few times, after a short pause: `f` is one of the cache's own operations, which does
    /// nothing outside the database. Inside the caller's transaction it cannot be: the error
    /// goes to the caller, whose whole transaction was lost.
    pub(crate) fn write<T>(&self, f: impl Fn(&Store) -> Result<T>) -> Result<T> {
        validate_ns(self.ns)?;
        self.store.cache_state().note_write();
        if self.in_tx {
            return f(self.store);
        }
        let mut attempt = 0u32;
        loop {
            match self.store.write_tx(&f) {
                Err(Error::Conflict { .. }) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(conflict_pause(attempt));
                }
                other => return other,
            }
        }
    }

    /// The value of `key`, or `None` if it is absent or expired.
    pub fn get<T: Decode>(&self, key: &str) -> Result<Option<T>> {
        validate_ns(self.ns)?;
        validate_key(key)?;
        let found = self.lookup(key)?;
        self.store.cache_state().count(self.ns, found.is_some(), self.store.is_read_only());
        found.map(|v| self.decode(key, v)).transpose()
    }

    /// Each of `keys` read as [`Cache::get`] reads it (its own hit or miss counted, a key that
    /// is refused refused alone), in one call: what a batch of independent gets costs less
    /// as. On a file, outside a transaction, the reads share one read transaction (one
    /// snapshot: as if they all ran at its start), which saves most of a lone get's overhead;
    /// in a least-recently-used namespace (each hit is a write) and inside a transaction, they
    /// run as gets one by one. The outer error is one that fails the whole call (the snapshot
    /// could not be taken); the inner ones, each key's own.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// let cache = store.cache("pages");
    /// cache.set("home", "<html>", None)?;
    /// let got = cache.get_each::<String, _>(["home", "away", "bad\0key"])?;
    /// assert_eq!(got[0].as_ref().ok(), Some(&Some("<html>".to_string())));
    /// assert_eq!(got[1].as_ref().ok(), Some(&None));
    /// assert!(got[2].is_err());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn get_each<T: Decode, K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Result<Option<T>>>> {
        validate_ns(self.ns)?;
        let keys: Vec<K> = keys.into_iter().collect();
        let s = self.store;
        if self.in_tx || (!s.is_read_only() && s.cache_state().is_lru(&s.engine, self.ns)?) {
            return Ok(keys.iter().map(|k| self.get(k.as_ref())).collect());
        }
        let valid: Vec<&str> = keys.iter().map(AsRef::as_ref).filter(|k| validate_key(k).is_ok()).collect();
        let mut found = s.engine.cache_get_each(self.ns, &valid, s.now())?.into_iter();
        let read_only = s.is_read_only();
        Ok(keys
            .iter()
            .map(|k| {
                let key = k.as_ref();
                validate_key(key)?;
                let v = found.next().flatten();
                s.cache_state().count(self.ns, v.is_some(), read_only);
                v.map(|v| self.decode(key, v)).transpose()
            })
            .collect())
    }

    /// A fresh value, without counting a hit or a miss.
    pub(crate) fn lookup(&self, key: &str) -> Result<Option<Stored>> {
        let s = self.store;
        if s.is_read_only() || !s.cache_state().is_lru(&s.engine, self.ns)? {
            return s.engine.cache_get(self.ns, key, s.now());
        }
        // A hit must record its use, which makes it a (small) write.
        self.write(|s| {
            let rank = s.engine.cache_next_rank(self.ns)?;
            s.engine.cache_get_touch(self.ns, key, s.now(), rank)
        })
    }

    /// True if `key` has a fresh entry. Counts neither a hit nor a miss.
    pub fn contains(&self, key: &str) -> Result<bool> {
        validate_ns(self.ns)?;
        validate_key(key)?;
        self.store.engine.cache_contains(self.ns, key, self.store.now())
    }

    /// Store `value` under `key`, replacing any entry. With a `ttl` it expires that long from
    /// now; with `None` it never does.
    pub fn set(&self, key: &str, value: impl Encode, ttl: impl Into<Option<Duration>>) -> Result<()> {
        validate_key(key)?;
        let bytes = value.encode()?;
        validate_value(&bytes)?;
        let ttl = ttl.into();
        validate_ttl(ttl)?;
        self.write(|s| {
            let expires = ttl.map(|d| deadline(s.now(), d));
            self.store_bytes(s, key, (&bytes, value.kind()), expires)
        })
    }

    /// Store `value` only if `key` has no fresh entry. True if it was stored.
    pub fn add(&self, key: &str, value: impl Encode, ttl: impl Into<Option<Duration>>) -> Result<bool> {
        validate_key(key)?;
        let bytes = value.encode()?;
        validate_value(&bytes)?;
        let ttl = ttl.into();
        validate_ttl(ttl)?;
        self.write(|s| {
            let now = s.now();
            let expires = ttl.map(|d| deadline(now, d));
            let limits = self.limits_in(s)?;
            check_fits(self.ns, key, &bytes, &limits)?;
            let rank = self.rank(s, &limits)?;
            let added = s.engine.cache_add(self.ns, key, (&bytes, value.kind()), expires, rank, now)?;
            if added && limits.bounded() {
                self.enforce(s, key, &limits)?;
            }
            Ok(added)
        })
    }

    /// Remove `key`. True if a fresh entry was removed (an expired one is removed too).
    pub fn delete(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        self.write(|s| {
            // A bounded namespace's sizes change: its lock first, as every write takes it.
            self.limits_in(s)?;
            let removed = s.engine.cache_delete(self.ns, key, s.now())?;
            if removed.is_some() {
                s.engine.memo_chunks_gc(s.now())?;
            }
            Ok(removed.unwrap_or(false))
        })
    }

    /// Give a fresh entry a new expiry: `ttl` from now, or never with `None`. False if there
    /// was no fresh entry.
    pub fn touch(&self, key: &str, ttl: impl Into<Option<Duration>>) -> Result<bool> {
        validate_key(key)?;
        let ttl = ttl.into();
        validate_ttl(ttl)?;
        self.write(|s| {
            let now = s.now();
            s.engine.cache_set_expiry(self.ns, key, now, ttl.map(|d| deadline(now, d)))
        })
    }

    /// Add `by` to the integer stored at `key` and return the result, atomically across
    /// processes. An absent or expired entry counts as 0 and is created with `ttl`; an existing
    /// entry keeps its expiry. Values are decimal text, so `get::<i64>` and `get::<String>`
    /// both read them. Fails with [`ErrorKind::Decode`](crate::ErrorKind::Decode) if the value
    /// is not an integer, and with `InvalidInput` on overflow.
    pub fn incr(&self, key: &str, by: i64, ttl: impl Into<Option<Duration>>) -> Result<i64> {
        validate_key(key)?;
        let ttl = ttl.into();
        validate_ttl(ttl)?;
        self.write(|s| {
            // The namespace before the key, in the order every write takes them.
            self.limits_in(s)?;
            let now = s.now();
            let (current, expires) = match s.engine.cache_entry(self.ns, key, now)? {
                Some(entry) => (self.decode::<i64>(key, entry.value)?, entry.expires_at),
                None => (0, ttl.map(|d| deadline(now, d))),
            };
            let next = current.checked_add(by).ok_or_else(|| {
                Error::invalid(format!("incrementing '{key}' ({current}) by {by} overflows a 64-bit integer"))
            })?;
            self.store_bytes(s, key, (next.to_string().as_bytes(), ValueKind::Int), expires)?;
            Ok(next)
        })
    }

    /// The fresh keys that start with `prefix` (all of them for `""`), sorted. For a large
    /// namespace, [`Cache::keys_page`] reads them a page at a time.
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.keys_in(prefix, "", -1)
    }

    /// A page of at most `limit` fresh keys that start with `prefix`, sorted, after `after`
    /// (`None`: from the first). Page through with the last key returned; a short page is the
    /// last.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// let cache = store.cache("c");
    /// for k in ["a1", "a2", "a3", "b1"] {
    ///     cache.set(k, "v", None)?;
    /// }
    /// let first = cache.keys_page("a", None, 2)?;
    /// assert_eq!(first, ["a1", "a2"]);
    /// assert_eq!(cache.keys_page("a", first.last().map(String::as_str), 2)?, ["a3"]);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn keys_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.keys_in(prefix, after.unwrap_or(""), i64::try_from(limit).unwrap_or(i64::MAX))
    }

    fn keys_in(&self, prefix: &str, after: &str, limit: i64) -> Result<Vec<String>> {
        validate_ns(self.ns)?;
        let until = prefix_end(prefix);
        self.store.engine.cache_keys(self.ns, (prefix, until.as_deref()), after, limit, self.store.now())
    }

    /// How many fresh entries the namespace holds (expired ones not yet swept are not
    /// counted, unlike [`CacheStats::entries`]).
    pub fn len(&self) -> Result<u64> {
        validate_ns(self.ns)?;
        self.store.engine.cache_len(self.ns, self.store.now())
    }

    /// True if the namespace holds no fresh entry.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The values of `keys`, in order (`None` for one absent or expired), read in one
    /// transaction: no write of another process lands between two of them. Each counts a hit
    /// or a miss, as [`Cache::get`] does. Inside a transaction, it joins it.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// let cache = store.cache("c");
    /// cache.set_many([("a", "1"), ("b", "2")], None)?;
    /// assert_eq!(cache.get_many::<String, _>(["a", "x", "b"])?, [Some("1".into()), None, Some("2".into())]);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn get_many<T: Decode, K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<T>>> {
        validate_ns(self.ns)?;
        let keys: Vec<K> = keys.into_iter().collect();
        for k in &keys {
            validate_key(k.as_ref())?;
        }
        let read = |c: &Cache<'_>| keys.iter().map(|k| c.get::<T>(k.as_ref())).collect::<Result<Vec<_>>>();
        if self.in_tx || self.store.is_read_only() {
            // A read-only store takes no write lock; its reads see one file nobody else here
            // writes through it.
            return read(self);
        }
        self.store.write_tx(|s| read(&Cache::new(s, self.ns, true)))
    }

    /// Store each `(key, value)` pair, replacing any entry, all with the same `ttl`, in one
    /// transaction: all of them or (on an error) none. Inside a transaction, it joins it.
    pub fn set_many<K: AsRef<str>, V: Encode>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
        ttl: impl Into<Option<Duration>>,
    ) -> Result<()> {
        let ttl = ttl.into();
        validate_ttl(ttl)?;
        let items: Vec<(K, V)> = items.into_iter().collect();
        for (k, _) in &items {
            validate_key(k.as_ref())?;
        }
        self.write(|s| {
            let c = Cache::new(s, self.ns, true);
            for (k, v) in &items {
                c.set(k.as_ref(), v, ttl)?;
            }
            Ok(())
        })
    }

    /// Remove every entry of the namespace. Returns how many. Bounds and statistics stay.
    pub fn clear(&self) -> Result<u64> {
        self.write(|s| {
            // A bounded namespace's sizes change: its lock first, as every write takes it.
            self.limits_in(s)?;
            let n = s.engine.cache_clear(self.ns)?;
            s.engine.memo_chunks_gc(s.now())?;
            Ok(n)
        })
    }

    /// Remove the entries whose key starts with `prefix` (all of them for `""`), expired ones
    /// included. Returns how many.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// let cache = store.cache("c");
    /// for k in ["user:1", "user:2", "users", "page:1"] {
    ///     cache.set(k, "v", None)?;
    /// }
    /// assert_eq!(cache.clear_prefix("user:")?, 2);
    /// assert_eq!(cache.keys("")?, ["page:1", "users"]);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn clear_prefix(&self, prefix: &str) -> Result<u64> {
        if prefix.contains('\0') {
            return Err(Error::invalid("a key prefix must not contain NUL bytes"));
        }
        let until = prefix_end(prefix);
        self.write(|s| {
            // A bounded namespace's sizes change: its lock first, as every write takes it.
            self.limits_in(s)?;
            let n = s.engine.cache_clear_range(self.ns, (prefix, until.as_deref()))?;
            s.engine.memo_chunks_gc(s.now())?;
            Ok(n)
        })
    }

    /// Remove the namespace's expired entries. Returns how many.
    pub fn sweep(&self) -> Result<u64> {
        self.write(|s| {
            // A bounded namespace's sizes change: its lock first, as every write takes it.
            self.limits_in(s)?;
            let n = s.engine.cache_sweep_ns(self.ns, s.now())?;
            if n > 0 {
                s.engine.memo_chunks_gc(s.now())?;
            }
            Ok(n)
        })
    }

    /// Bound the namespace's size, evicting at once if it is over. `CacheLimits::default()`
    /// removes the bounds.
    pub fn set_limits(&self, limits: CacheLimits) -> Result<()> {
        if limits.max_entries == Some(0) || limits.max_bytes == Some(0) {
            return Err(Error::invalid("a cache bound must be at least 1"));
        }
        self.write(|s| {
            let lru = limits.eviction == Eviction::LeastRecentlyUsed;
            s.engine.cache_set_limits(self.ns, limits.max_entries, limits.max_bytes, lru)?;
            s.cache_state().forget_policy(self.ns);
            s.cache_state().remember_tx_limits(self.ns, limits);
            if limits.bounded() {
                self.enforce(s, "", &limits)?;
            }
            Ok(())
        })
    }

    /// The namespace's bounds.
    pub fn limits(&self) -> Result<CacheLimits> {
        validate_ns(self.ns)?;
        Ok(self.store.engine.cache_ns(self.ns)?.map(|r| limits_of(&r)).unwrap_or_default())
    }

    /// Size and counters of the namespace.
    pub fn stats(&self) -> Result<CacheStats> {
        validate_ns(self.ns)?;
        let row = self.store.engine.cache_ns(self.ns)?.unwrap_or_default();
        let limits = limits_of(&row);
        // Bounded namespaces keep their sizes; unbounded ones are counted now.
        let (entries, bytes) = if limits.bounded() {
            (row.entries, row.bytes)
        } else {
            self.store.engine.cache_count(self.ns)?
        };
        let pending = self.store.cache_state().pending_hit_counts(self.ns);
        let deferred = self.store.engine.cache_deferred_hit_counts()?.into_iter().find(|t| t.ns == self.ns);
        let (dh, dm) = deferred.map_or((0, 0), |t| (t.hits, t.misses));
        Ok(CacheStats {
            entries,
            bytes,
            hits: row.hits + pending.hits + dh,
            misses: row.misses + pending.misses + dm,
            evictions: row.evictions,
            limits,
        })
    }

    /// Upsert, then enforce the namespace's bounds. The caller holds the write lock.
    fn store_bytes(
        &self,
        s: &Store,
        key: &str,
        value: (&[u8], ValueKind),
        expires: Option<i64>,
    ) -> Result<()> {
        let limits = self.limits_in(s)?;
        check_fits(self.ns, key, value.0, &limits)?;
        let rank = self.rank(s, &limits)?;
        s.engine.cache_upsert(self.ns, key, value, expires, rank)?;
        if limits.bounded() {
            self.enforce(s, key, &limits)?;
        }
        Ok(())
    }

    /// A recency rank for a write to a bounded namespace; unbounded ones need none.
    fn rank(&self, s: &Store, limits: &CacheLimits) -> Result<Option<i64>> {
        limits.bounded().then(|| s.engine.cache_next_rank(self.ns)).transpose()
    }

    /// The bounds, read once per write transaction. A bounded namespace is locked then (on a
    /// single-writer engine the write lock already is that lock), so that no other writer
    /// changes its sizes or bounds before this transaction ends; every write to a namespace
    /// takes this before any key of it, so writers never wait on each other in a circle.
    pub(crate) fn limits_in(&self, s: &Store) -> Result<CacheLimits> {
        if let Some(limits) = s.cache_state().tx_limits(self.ns) {
            return Ok(limits);
        }
        let limits = s.engine.cache_ns(self.ns)?.map(|r| limits_of(&r)).unwrap_or_default();
        if limits.bounded() {
            s.engine.cache_lock_ns(self.ns)?;
        }
        s.cache_state().remember_tx_limits(self.ns, limits);
        Ok(limits)
    }

    /// Evict the lowest-ranked entries, never `keep`, until the namespace is within bounds.
    fn enforce(&self, s: &Store, keep: &str, limits: &CacheLimits) -> Result<()> {
        loop {
            let row = s.engine.cache_ns(self.ns)?.unwrap_or_default();
            let over_entries = limits.max_entries.map_or(0, |max| row.entries.saturating_sub(max));
            let over_bytes = limits.max_bytes.map_or(0, |max| row.bytes.saturating_sub(max));
            if over_entries == 0 && over_bytes == 0 {
                return Ok(());
            }
            // For bytes, guess from the average entry size and loop: one statement usually.
            let by_bytes = if over_bytes > 0 {
                let avg = (row.bytes / row.entries.max(1)).max(1);
                over_bytes.div_ceil(avg)
            } else {
                0
            };
            if s.engine.cache_evict(self.ns, keep, over_entries.max(by_bytes).max(1))? == 0 {
                return Ok(()); // only `keep` is left, and check_fits let it in
            }
            s.engine.memo_chunks_gc(s.now())?;
        }
    }

    fn decode<T: Decode>(&self, key: &str, v: Stored) -> Result<T> {
        T::decode_typed(v.kind, v.bytes).map_err(|DecodeError { expected, detail }| Error::Decode {
            ns: self.ns.to_owned(),
            key: truncated(key),
            expected,
            detail,
        })
    }
}

/// How many times a one-operation cache write ended by the server in a conflict is run again.
const CONFLICT_RETRIES: u32 = 5;

/// The pause before the `attempt`th rerun of a write ended in a conflict: growing, and spread
/// by the clock's nanoseconds so that the two writers that met do not meet again in step.
fn conflict_pause(attempt: u32) -> Duration {
    let spread = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) % 5);
    Duration::from_millis(u64::from(attempt) * 5 + spread)
}

fn limits_of(row: &crate::storage::NsRow) -> CacheLimits {
    CacheLimits {
        max_entries: row.max_entries,
        max_bytes: row.max_bytes,
        eviction: if row.lru { Eviction::LeastRecentlyUsed } else { Eviction::LeastRecentlyStored },
    }
}

/// A value that alone exceeds the namespace's byte bound is refused, instead of evicting
/// everything else and still being over.
fn check_fits(ns: &str, key: &str, bytes: &[u8], limits: &CacheLimits) -> Result<()> {
    let size = (key.len() + bytes.len()) as u64;
    match limits.max_bytes {
        Some(max) if size > max => Err(Error::invalid(format!(
            "an entry of {size} bytes cannot fit in namespace '{ns}', bounded to {max} bytes"
        ))),
        _ => Ok(()),
    }
}

/// The smallest string greater than every string that starts with `prefix`: the prefix with
/// its last character incremented (UTF-8 byte order is code point order). `None` if unbounded.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A TTL under a millisecond (expiry is kept in milliseconds) would store an entry that is
/// already expired: a silent no-op, refused instead. Redis refuses `EX 0` alike.
pub(crate) fn validate_ttl(ttl: Option<Duration>) -> Result<()> {
    match ttl {
        Some(d) => crate::duration::at_least_1ms(
            d,
            "a TTL",
            "would expire the entry at once (use no TTL for an entry that never expires)",
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_string_past_the_prefix() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }
}
