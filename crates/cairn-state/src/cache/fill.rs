//! Computing a missing value once across processes: the fill markers of
//! [`Cache::get_or_set_with`], and the protocol memoized commands share
//! ([`Cache::compute_once`]).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::{validate_ttl, Cache};
use crate::clock::deadline;
use crate::codec::{Decode, Encode, ValueKind};
use crate::error::{Error, Result};
use crate::names::{validate_key, validate_ns, validate_value};
use crate::storage::{CacheOps, EngineOps, Stored};
use crate::store::Store;

impl<'a> Cache<'a> {
    /// The value of `key`; on a miss, `compute` it, store it with `ttl`, and return it.
    ///
    /// Across processes, a missing key is computed once: the first process to miss leaves a
    /// marker and computes; the others wait for its value instead of computing too. If the
    /// computing process fails, the next waiter computes; if it crashed, waiters take over at
    /// once when it ran on the same host (its pid is gone; Linux), else after the store's fill
    /// timeout ([`Options::fill_timeout`](crate::Options::fill_timeout), 30 s by default). A
    /// computation that outlives the fill timeout may run twice.
    ///
    /// Inside a transaction the write lock is already held, so the value is simply computed
    /// and stored; keep such computations short.
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let cache = store.cache("rates");
    /// let rate: String = cache.get_or_set_with("EUR", Duration::from_secs(600), || {
    ///     Ok::<_, cairn::Error>("1.08".to_string()) // the slow call
    /// })?;
    /// assert_eq!(rate, "1.08");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn get_or_set_with<T, E, F>(
        &self,
        key: &str,
        ttl: impl Into<Option<Duration>>,
        compute: F,
    ) -> Result<T, E>
    where
        T: Encode + Decode,
        E: From<Error>,
        F: FnOnce() -> Result<T, E>,
    {
        let ttl = ttl.into();
        validate_ttl(ttl)?;
        self.get_or_fill(key, ttl, &|_| true, compute)
    }

    /// [`Cache::get_or_set_with`] where a stored value that `usable` rejects counts as a miss.
    fn get_or_fill<T, E, F>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        usable: &dyn Fn(&[u8]) -> bool,
        compute: F,
    ) -> Result<T, E>
    where
        T: Encode + Decode,
        E: From<Error>,
        F: FnOnce() -> Result<T, E>,
    {
        validate_ns(self.ns)?;
        validate_key(key)?;
        if let Some(v) = self.lookup(key)?.filter(|v| usable(&v.bytes)) {
            self.store.cache_state().count(self.ns, true, self.store.is_read_only());
            return Ok(self.decode(key, v)?);
        }
        self.store.cache_state().count(self.ns, false, self.store.is_read_only());
        if self.in_tx {
            let value = compute()?;
            self.set(key, &value, ttl)?;
            return Ok(value);
        }
        self.compute_once(
            key,
            usable,
            |v| Ok(self.decode(key, v)?),
            |ticket| {
                let value = compute()?;
                let bytes = value.encode()?;
                validate_value(&bytes)?;
                ticket.commit(|s| {
                    let expires = ttl.map(|d| deadline(s.now(), d));
                    self.store_bytes(s, key, (&bytes, value.kind()), expires)
                })?;
                Ok(value)
            },
        )
    }

    /// Compute once across processes. A stored value that `usable` accepts goes to `found`
    /// (stored meanwhile, or by the process this one waited for); otherwise, once this process
    /// holds the key's fill marker, `fill` runs with its [`FillTicket`] and stores its result
    /// through [`FillTicket::commit`]. The marker is released however `fill` ends (an error, a
    /// panic, nothing stored), so waiters take over at once instead of after the fill timeout.
    /// Not inside a transaction: the marker must be seen by others while `fill` runs.
    pub(crate) fn compute_once<R, E>(
        &self,
        key: &str,
        usable: &dyn Fn(&[u8]) -> bool,
        found: impl FnOnce(Stored) -> Result<R, E>,
        fill: impl FnOnce(&FillTicket<'_, 'a>) -> Result<R, E>,
    ) -> Result<R, E>
    where
        E: From<Error>,
    {
        let me = Filling::of(self, key);
        if me.is_running() {
            return Err(Error::invalid(format!(
                "the value of key {key:?} in cache namespace {:?} was asked for again by its own \
                 computation (a get_or_set or memoized call for the same key inside its compute): it \
                 would wait for itself; compute the value without asking the cache for the same key",
                self.ns
            ))
            .into());
        }
        let owner = crate::process::token();
        let mut nap = Duration::from_millis(1);
        loop {
            match self.try_claim_fill(key, &owner, usable)? {
                Fill::Hit(v) => return found(v),
                Fill::Mine => {
                    let ticket = FillTicket { cache: *self, key, owner, released: Cell::new(false) };
                    let _running = me.start();
                    return fill(&ticket);
                }
                Fill::Wait => {
                    self.store.clock.sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(25));
                    // Poll with plain reads; take the write lock only once the value or the
                    // marker has gone.
                    if let Some(v) = self.lookup(key)?.filter(|v| usable(&v.bytes)) {
                        return found(v);
                    }
                    if self.is_filling(key)? {
                        continue;
                    }
                }
            }
        }
    }

    /// [`Cache::get_or_set_with`] in steps, for callers whose computation cannot run inside a
    /// call of the library (an asyncio coroutine, an event loop's callback): the key's fresh
    /// value ([`FillTry::Hit`]), or this process's hold on the key's fill marker
    /// ([`FillTry::Claimed`]: compute the value, then [`Cache::complete_fill`], or
    /// [`Cache::abandon_fill`] if the computation failed), or [`FillTry::Busy`] while another
    /// process, or another task of this one, computes it: try again a moment later with
    /// [`Cache::retry_fill`], which reads the same but is not counted again as a miss.
    ///
    /// The marker is the one `get_or_set_with` uses: both wait for each other, across
    /// processes. Refused inside a transaction (the marker must be seen by others while the
    /// value is computed).
    ///
    /// ```
    /// use cairn::{FillTry, Store};
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let cache = store.cache("rates");
    /// let rate: String = match cache.try_fill("EUR")? {
    ///     FillTry::Hit(v) => v,
    ///     FillTry::Claimed(claim) => {
    ///         let v = "1.08".to_string(); // the slow call, run wherever the caller likes
    ///         cache.complete_fill(claim, &v, Duration::from_secs(600))?;
    ///         v
    ///     }
    ///     FillTry::Busy => unreachable!("nobody else computes it here"),
    /// };
    /// assert_eq!(rate, "1.08");
    /// assert!(matches!(cache.try_fill::<String>("EUR")?, FillTry::Hit(v) if v == "1.08"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn try_fill<T: Decode>(&self, key: &str) -> Result<FillTry<T>> {
        self.fill_step(key, true)
    }

    /// [`Cache::try_fill`] again after [`FillTry::Busy`]: the same, without counting one more
    /// miss in the namespace's statistics (a waiter's polls are one miss, as in
    /// [`Cache::get_or_set_with`]).
    pub fn retry_fill<T: Decode>(&self, key: &str) -> Result<FillTry<T>> {
        self.fill_step(key, false)
    }

    fn fill_step<T: Decode>(&self, key: &str, count: bool) -> Result<FillTry<T>> {
        validate_ns(self.ns)?;
        validate_key(key)?;
        if self.in_tx || self.store.engine.in_transaction() {
            return Err(Error::invalid(
                "a value cannot be computed once across processes inside a transaction: its fill marker \
                 must be seen by others while it is computed; use get_or_set inside the transaction, or \
                 fill outside it",
            ));
        }
        let state = self.store.cache_state();
        let read_only = self.store.is_read_only();
        // A plain read first: a hit never takes the write lock.
        if let Some(v) = self.lookup(key)? {
            if count {
                state.count(self.ns, true, read_only);
            }
            return Ok(FillTry::Hit(self.decode(key, v)?));
        }
        let owner = crate::process::token();
        let found = self.try_claim_fill(key, &owner, &|_| true)?;
        if count {
            state.count(self.ns, matches!(found, Fill::Hit(_)), read_only);
        }
        Ok(match found {
            Fill::Hit(v) => FillTry::Hit(self.decode(key, v)?),
            Fill::Mine => FillTry::Claimed(FillClaim { ns: self.ns.to_owned(), key: key.to_owned(), owner }),
            Fill::Wait => FillTry::Busy,
        })
    }

    /// Store the value computed under `claim` with `ttl` and release the marker, in one
    /// transaction: waiters find the value the moment the marker is gone. A value that cannot
    /// be stored (too large, not encodable) releases the marker too, and is the error.
    pub fn complete_fill<T: Encode>(
        &self,
        claim: FillClaim,
        value: &T,
        ttl: impl Into<Option<Duration>>,
    ) -> Result<()> {
        self.check_claim(&claim)?;
        let ttl = ttl.into();
        let stored = validate_ttl(ttl).and_then(|()| {
            let bytes = value.encode()?;
            validate_value(&bytes)?;
            self.store.write_tx(|s| {
                let expires = ttl.map(|d| deadline(s.now(), d));
                self.store_bytes(s, &claim.key, (&bytes, value.kind()), expires)?;
                s.engine.fill_release(self.ns, &claim.key, &claim.owner)
            })
        });
        if stored.is_err() {
            let _ = self.store.write_tx(|s| s.engine.fill_release(self.ns, &claim.key, &claim.owner));
        }
        stored
    }

    /// Release `claim`'s marker without storing anything (the computation failed or was
    /// cancelled): the next waiter computes at once.
    pub fn abandon_fill(&self, claim: FillClaim) -> Result<()> {
        self.check_claim(&claim)?;
        self.store.write_tx(|s| s.engine.fill_release(self.ns, &claim.key, &claim.owner))
    }

    fn check_claim(&self, claim: &FillClaim) -> Result<()> {
        if claim.ns != self.ns {
            return Err(Error::invalid(format!(
                "the fill of key {:?} was claimed in cache namespace {:?}, not {:?}",
                claim.key, claim.ns, self.ns
            )));
        }
        Ok(())
    }

    /// Under the write lock: the value if it arrived, else the marker if nobody holds a live one.
    fn try_claim_fill(&self, key: &str, owner: &str, usable: &dyn Fn(&[u8]) -> bool) -> Result<Fill> {
        self.store.write_tx(|s| {
            let now = s.now();
            if let Some(v) = s.engine.cache_get(self.ns, key, now)?.filter(|v| usable(&v.bytes)) {
                return Ok(Fill::Hit(v));
            }
            let dead = match s.engine.fill_get(self.ns, key)? {
                Some((owner, until)) if until > now && !crate::process::token_is_dead(&owner) => {
                    return Ok(Fill::Wait)
                }
                Some((owner, _)) => Some(owner),
                None => None,
            };
            let until = deadline(now, s.fill_timeout);
            Ok(if s.engine.fill_try_claim(self.ns, key, owner, until, now, dead.as_deref())? {
                Fill::Mine
            } else {
                Fill::Wait
            })
        })
    }

    /// True while a live process computes `key` for [`Cache::get_or_set_with`].
    pub(crate) fn is_filling(&self, key: &str) -> Result<bool> {
        let now = self.store.now();
        let filling = self.store.engine.fill_get(self.ns, key)?;
        Ok(matches!(filling, Some((owner, until)) if until > now && !crate::process::token_is_dead(&owner)))
    }

    /// Store `value` under `key` with `expires`, enforcing the namespace's bounds, inside the
    /// caller's write transaction (a [`FillTicket::commit`]).
    pub(crate) fn store_in(
        &self,
        s: &Store,
        key: &str,
        value: (&[u8], ValueKind),
        expires: Option<i64>,
    ) -> Result<()> {
        validate_value(value.0)?;
        self.store_bytes(s, key, value, expires)
    }
}

thread_local! {
    /// The fills this thread is computing: (the store's address, namespace, key). A fill asked
    /// for again by its own computation would wait on its own marker until the fill timeout.
    static FILLING: RefCell<Vec<(usize, String, String)>> = const { RefCell::new(Vec::new()) };
}

/// One fill, as [`FILLING`] records it.
struct Filling(usize, String, String);

impl Filling {
    fn of(cache: &Cache<'_>, key: &str) -> Self {
        Filling(std::ptr::from_ref(cache.store) as usize, cache.ns.to_owned(), key.to_owned())
    }

    fn is_running(&self) -> bool {
        FILLING.with_borrow(|f| {
            f.iter().any(|(s, ns, k)| (*s, ns.as_str(), k.as_str()) == (self.0, &self.1, &self.2))
        })
    }

    /// Recorded as running on this thread until the guard drops (however the fill ends).
    fn start(self) -> FillingGuard {
        FILLING.with_borrow_mut(|f| f.push((self.0, self.1, self.2)));
        FillingGuard
    }
}

/// Removes the fill [`Filling::start`] recorded last.
struct FillingGuard;

impl Drop for FillingGuard {
    fn drop(&mut self) {
        FILLING.with_borrow_mut(|f| f.pop());
    }
}

enum Fill {
    Hit(Stored),
    Mine,
    Wait,
}

/// What [`Cache::try_fill`] found.
#[derive(Debug)]
pub enum FillTry<T> {
    /// The key holds a fresh value.
    Hit(T),
    /// This process holds the key's fill marker: compute, then [`Cache::complete_fill`] or
    /// [`Cache::abandon_fill`]. A claim dropped without either keeps the marker until the
    /// store's fill timeout (or, on this host, until this process ends).
    Claimed(FillClaim),
    /// Another process, or another task of this one, computes the value.
    Busy,
}

/// This process's hold on a key's fill marker, from [`FillTry::Claimed`].
#[derive(Debug)]
#[must_use = "complete_fill or abandon_fill it, or waiters wait for the fill timeout"]
pub struct FillClaim {
    ns: String,
    key: String,
    owner: String,
}

impl FillClaim {
    /// The key being computed.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// This process holds a key's fill marker: see [`Cache::compute_once`]. Dropped without a
/// commit, it releases the marker in a write of its own.
pub(crate) struct FillTicket<'c, 'a> {
    cache: Cache<'a>,
    key: &'c str,
    owner: String,
    released: Cell<bool>,
}

impl FillTicket<'_, '_> {
    /// Keep this fill marker live while the computation runs, however long it takes: renewed
    /// every third of the fill timeout from a thread (its connection opened only at the first
    /// renewal). What a memoized command stores as it runs (its output's chunks) is kept only
    /// while its key has a live marker, so a marker left to expire under a long command let
    /// any sweep in the meantime delete its output. `None` in memory: nothing else can reach
    /// the store to sweep.
    pub(crate) fn keep_alive(&self) -> Result<Option<crate::lock::KeepAlive>> {
        let store = self.cache.store;
        if store.journal_mode() == "memory" {
            return Ok(None);
        }
        let timeout = store.fill_timeout;
        let (ns, key, owner) = (self.cache.ns.to_owned(), self.key.to_owned(), self.owner.clone());
        let every = (timeout / 3).max(Duration::from_millis(1));
        crate::lock::KeepAlive::spawn_lazy(store, "cairn-fill-keep-alive".into(), every, move |s| {
            // A marker no longer this owner's (released at the end of the work) is left alone.
            s.write_tx(|s| s.engine.fill_renew(&ns, &key, &owner, deadline(s.now(), timeout))).map(drop)
        })
        .map(Some)
    }

    /// In one write transaction: `f`, which stores the computed value, then the marker's
    /// release, so that waiters find the value the moment the marker is gone.
    pub(crate) fn commit<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let out = self.cache.store.write_tx(|s| {
            let out = f(s)?;
            s.engine.fill_release(self.cache.ns, self.key, &self.owner)?;
            Ok(out)
        })?;
        self.released.set(true);
        Ok(out)
    }
}

impl Drop for FillTicket<'_, '_> {
    fn drop(&mut self) {
        if !self.released.get() {
            let (cache, key, owner) = (&self.cache, self.key, &self.owner);
            let _ = cache.store.write_tx(|s| s.engine.fill_release(cache.ns, key, owner));
        }
    }
}
