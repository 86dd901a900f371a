//! Named locks, against cron overlap and for singletons.
//!
//! A lock has an owner and an expiry; a long job renews it. A holder that crashed is
//! recovered two ways: when its expiry passes, and at once on the same host when its process
//! is gone (Linux: its pid no longer runs, or runs a different process started later, checked
//! through `/proc` within the same boot). Elsewhere, only the expiry recovers it.
//!
//! Locks are **not reentrant**: a second acquisition of a lock the same process already holds
//! fails like anyone else's, because an inner section releasing the lock early would
//! silently unprotect the outer one. Hold one guard and pass it down instead.
//!
//! A lock can also admit up to N holders at once, a counting semaphore
//! ([`Store::try_semaphore`]): it has N slots, each a lock of its own with the same expiry and
//! dead-holder recovery; a plain lock is the semaphore of one slot, so the two exclude each
//! other on slot 0.

use std::sync::mpsc;
use std::time::Duration;

use crate::clock::{deadline, shown_time};
use crate::error::{Error, Result};
use crate::names::validate_name;
use crate::process;
use crate::storage::Taker;
use crate::storage::{EngineOps, LockOps};
use crate::store::Store;

/// Who holds a lock (or one slot of a semaphore).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockHolder {
    /// Which slot: 0 for a plain lock.
    pub slot: u32,
    /// The holder's unique owner name.
    pub owner: String,
    /// Its process id.
    pub pid: u32,
    /// When its hold runs out unless renewed, in Unix milliseconds.
    pub expires_at_millis: i64,
}

/// A held lock, released when dropped.
///
/// Dropping it releases the lock waiting at most 100 ms for the store's write lock, so that a
/// drop never stalls for the whole busy timeout; if that fails, the lock stays until its TTL
/// runs out or its process is found dead. [`LockGuard::release`] waits the full busy timeout
/// and returns the error.
///
/// ```
/// use cairn::Store;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path().join("state.db"))?;
/// let other = Store::open(dir.path().join("state.db"))?; // another cron run
/// let guard = store.try_lock("nightly-export", Duration::from_secs(600))?.expect("free");
/// assert!(other.try_lock("nightly-export", Duration::from_secs(600))?.is_none());
/// drop(guard);
/// assert!(other.try_lock("nightly-export", Duration::from_secs(600))?.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LockGuard<'s> {
    store: &'s Store,
    held: Option<HeldLock>,
}

/// A held lock as plain data, not tied to a [`Store`] handle and not released when dropped:
/// for language bindings and long-lived programs that keep a lock across calls. Renew and
/// release it through any store of the same process ([`Store::renew_lock`],
/// [`Store::release_lock`]).
///
/// ```
/// use cairn::Store;
/// use std::time::Duration;
///
/// let store = Store::open_in_memory()?;
/// let held = store.try_lock("singleton", Duration::from_secs(60))?.expect("free").into_held();
/// store.renew_lock(&held, Duration::from_secs(60))?;
/// assert!(store.release_lock(&held)?);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    name: String,
    slot: u32,
    owner: String,
}

impl HeldLock {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which slot of the lock is held: 0 for a plain lock, below N for a semaphore of N.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The unique owner name this hold is recorded under.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

impl LockGuard<'_> {
    fn held(&self) -> &HeldLock {
        // Only `into_held` and `release` take it out, and both consume the guard.
        self.held.as_ref().unwrap_or_else(|| unreachable!("a live guard holds its lock"))
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.held().name
    }

    /// Which slot is held: 0 for a plain lock, below N for a semaphore of N.
    pub fn slot(&self) -> u32 {
        self.held().slot
    }

    /// Push the expiry to `ttl` from now. Fails with `LeaseLost` if the lock expired and
    /// another process took it: stop the work it protected.
    pub fn renew(&self, ttl: Duration) -> Result<()> {
        self.store.renew_lock(self.held(), ttl)
    }

    /// Release now, waiting up to the busy timeout. False if the lock had already been taken
    /// over.
    pub fn release(mut self) -> Result<bool> {
        match self.held.take() {
            Some(held) => self.store.release_lock(&held),
            None => Ok(false),
        }
    }

    /// Keep the lock renewed while the work it protects runs: see [`Store::keep_alive`].
    pub fn keep_alive(&self, ttl: Duration) -> Result<KeepAlive> {
        self.store.keep_alive(self.held(), ttl)
    }

    /// The lock as plain data, no longer released when dropped.
    pub fn into_held(mut self) -> HeldLock {
        self.held.take().unwrap_or_else(|| unreachable!("a live guard holds its lock"))
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let engine = &self.store.engine;
        if engine.in_transaction() {
            // Dropped inside a transaction of the same store: the release commits with it.
            let _ = engine.lock_release(&held.name, held.slot, &held.owner);
            return;
        }
        let busy = engine.busy_timeout();
        engine.set_busy_timeout(busy.min(DROP_WAIT));
        // If this fails the lock expires on its own, or is recovered once we are gone.
        let _ = self.store.release_lock(&held);
        engine.set_busy_timeout(busy);
    }
}

/// The longest a dropped guard waits to release its lock.
const DROP_WAIT: Duration = Duration::from_millis(100);

/// A thread renewing a lock until stopped; from [`Store::keep_alive`]. Dropping it stops the
/// renewals too.
#[derive(Debug)]
pub struct KeepAlive {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl KeepAlive {
    /// True once a renewal found the lock (or run) taken over; renewals have stopped. Check it between
    /// steps of the work to stop early; [`KeepAlive::stop`] says the same.
    pub fn lost(&self) -> bool {
        // The thread ends by itself only on a lost lease; otherwise it runs until stopped.
        self.thread.as_ref().is_some_and(std::thread::JoinHandle::is_finished)
    }

    /// Stop renewing. `Err(LeaseLost)` if a renewal found the lock taken over (its TTL ran
    /// out first and another process took it): the work it protected was not protected to
    /// the end. Other renewal errors (a store kept busy) are retried until the next renewal
    /// and reported only if the last one failed.
    pub fn stop(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        drop(self.stop.take());
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::invalid("the keep-alive thread panicked")),
            None => Ok(()),
        }
    }
}

impl KeepAlive {
    /// [`KeepAlive::spawn`] whose store handle is opened at the first renewal, not before:
    /// work that ends within `every` (most of it) costs a thread and no connection.
    pub(crate) fn spawn_lazy(
        store: &Store,
        name: String,
        every: Duration,
        renew: impl FnMut(&Store) -> Result<()> + Send + 'static,
    ) -> Result<KeepAlive> {
        KeepAlive::start(store, name, every, None, renew)
    }

    /// A thread calling `renew` every `every` on a store handle of its own (a second
    /// connection to the same file or server), until stopped or until a renewal is
    /// `LeaseLost`; other errors are retried at the next renewal.
    pub(crate) fn spawn(
        store: &Store,
        name: String,
        every: Duration,
        renew: impl FnMut(&Store) -> Result<()> + Send + 'static,
    ) -> Result<KeepAlive> {
        let renewer = store.options.clone().read_only(false).open(store.location())?;
        KeepAlive::start(store, name, every, Some(renewer), renew)
    }

    /// The thread, with its store handle opened already or (`None`) at its first renewal.
    fn start(
        store: &Store,
        name: String,
        every: Duration,
        mut renewer: Option<Store>,
        mut renew: impl FnMut(&Store) -> Result<()> + Send + 'static,
    ) -> Result<KeepAlive> {
        let options = store.options.clone().read_only(false);
        let location = store.location();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut last = Ok(());
                // A message or a hang-up (the KeepAlive dropped) both stop the loop.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if renewer.is_none() {
                        match options.clone().open(&location) {
                            Ok(s) => renewer = Some(s),
                            Err(e) => last = Err(e),
                        }
                    }
                    if let Some(r) = &renewer {
                        last = renew(r);
                        if matches!(&last, Err(e) if e.kind() == crate::ErrorKind::LeaseLost) {
                            break;
                        }
                    }
                }
                last
            })
            .map_err(|e| Error::Io {
                action: "start a thread for",
                path: store.path().to_path_buf(),
                source: e,
            })?;
        Ok(KeepAlive { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

impl Store {
    /// Take the lock `name` for `ttl` if it is free, expired, or held by a dead process on
    /// this host; `None` at once otherwise.
    pub fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockGuard<'_>>> {
        self.try_semaphore(name, 1, ttl)
    }

    /// Take the lock `name` for `ttl`, waiting up to `wait` for it; `None` if it is still
    /// held then.
    pub fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<Option<LockGuard<'_>>> {
        self.semaphore(name, 1, ttl, wait)
    }

    /// Take one of the `max` slots of the counting semaphore `name` for `ttl`: at most `max`
    /// holders at once. A slot is free when nobody holds it, its hold expired, or its holder
    /// is a dead process on this host (taken over at once, as a plain lock's). `None` at once
    /// if all are held. A plain lock of the same name is slot 0, so with `max` 1 this is
    /// [`Store::try_lock`]. Every caller of one name should give the same `max`.
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let store = Store::open_in_memory()?;
    /// let ttl = Duration::from_secs(60);
    /// let a = store.try_semaphore("downloads", 2, ttl)?.expect("a slot");
    /// let b = store.try_semaphore("downloads", 2, ttl)?.expect("the other slot");
    /// assert_eq!((a.slot(), b.slot()), (0, 1));
    /// assert!(store.try_semaphore("downloads", 2, ttl)?.is_none()); // both are held
    /// drop(a);
    /// assert!(store.try_semaphore("downloads", 2, ttl)?.is_some());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn try_semaphore(&self, name: &str, max: u32, ttl: Duration) -> Result<Option<LockGuard<'_>>> {
        validate_name("lock name", name, crate::MAX_KEY_BYTES)?;
        validate_lock_ttl(ttl)?;
        validate_slots(max)?;
        let owner = process::token();
        let me = process::me();
        let taker =
            Taker { owner: &owner, boot_id: &me.boot_id, pid: i64::from(me.pid), pid_start: me.start };
        let taken = self.write_tx(|s| {
            let now = s.now();
            let until = deadline(now, ttl);
            if let Some(slot) = s.engine.lock_take_any(name, max, &taker, until, now)? {
                return Ok(Some(slot));
            }
            for h in s.engine.lock_holders(name, max)? {
                if process::is_dead(&h.boot_id, h.pid, h.pid_start)
                    && s.engine.lock_take_over(name, h.slot, &taker, until, now, &h.owner)?
                {
                    return Ok(Some(h.slot));
                }
            }
            Ok(None)
        })?;
        Ok(taken.map(|slot| LockGuard {
            store: self,
            held: Some(HeldLock { name: name.to_owned(), slot, owner }),
        }))
    }

    /// Take one of the `max` slots of the semaphore `name` (see [`Store::try_semaphore`]),
    /// waiting up to `wait` for one; `None` if all are still held then.
    pub fn semaphore(
        &self,
        name: &str,
        max: u32,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<LockGuard<'_>>> {
        validate_name("lock name", name, crate::MAX_KEY_BYTES)?;
        validate_lock_ttl(ttl)?;
        validate_slots(max)?;
        let give_up = deadline(self.now(), wait);
        let mut nap = Duration::from_millis(2);
        loop {
            if let Some(guard) = self.try_semaphore(name, max, ttl)? {
                return Ok(Some(guard));
            }
            let now = self.now();
            if now >= give_up {
                return Ok(None);
            }
            let left = Duration::from_millis(u64::try_from(give_up - now).unwrap_or(0));
            self.clock.sleep(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(100));
        }
    }

    /// Push the expiry of `lock` to `ttl` from now. `LeaseLost` if it expired and another
    /// process took it: stop the work it protected.
    pub fn renew_lock(&self, lock: &HeldLock, ttl: Duration) -> Result<()> {
        validate_lock_ttl(ttl)?;
        self.write_tx(|s| {
            if s.engine.lock_renew(&lock.name, lock.slot, &lock.owner, deadline(s.now(), ttl))? {
                Ok(())
            } else {
                Err(Error::LeaseLost { what: "lock", name: lock.name.clone(), holder: lock.owner.clone() })
            }
        })
    }

    /// Release `lock`. False if it had already been taken over.
    pub fn release_lock(&self, lock: &HeldLock) -> Result<bool> {
        self.write_tx(|s| s.engine.lock_release(&lock.name, lock.slot, &lock.owner))
    }

    /// Renew `lock` every `ttl / 3` from a thread with its own connection to the store's file,
    /// until the returned [`KeepAlive`] is stopped or dropped: a long job's lock never lapses
    /// while the job runs, and the job's own code need not renew it. Stop it before releasing
    /// the lock. Not for an in-memory store, which no second connection can reach. A `ttl`
    /// below [`MIN_KEEP_ALIVE_TTL`] (100 ms) is refused (`InvalidInput`): it cannot be renewed
    /// in time.
    ///
    /// ```
    /// use cairn::Store;
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path().join("state.db"))?;
    /// let guard = store.try_lock("export", Duration::from_secs(30))?.expect("free");
    /// let renewing = guard.keep_alive(Duration::from_secs(30))?;
    /// // ... a job that may outlive 30 s ...
    /// renewing.stop()?; // Err(LeaseLost) if the lock was lost meanwhile
    /// guard.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_alive(&self, lock: &HeldLock, ttl: Duration) -> Result<KeepAlive> {
        validate_keep_alive_ttl(ttl)?;
        if self.journal_mode() == "memory" {
            return Err(Error::invalid(
                "an in-memory store's lock cannot be kept alive: no other connection can reach it; renew it yourself",
            ));
        }
        let lock = lock.clone();
        let every = (ttl / 3).max(Duration::from_millis(1));
        KeepAlive::spawn(self, format!("cairn-keep-alive-{}", lock.name), every, move |renewer| {
            renewer.renew_lock(&lock, ttl)
        })
    }

    /// Who holds `name`, if anyone does (an expired hold is reported as none). For a
    /// semaphore, slot 0's holder; see [`Store::lock_holders`].
    pub fn lock_holder(&self, name: &str) -> Result<Option<LockHolder>> {
        Ok(self.lock_holders(name, 1)?.pop())
    }

    /// Who holds the slots of the semaphore `name` below `max`, by slot (expired holds left
    /// out).
    pub fn lock_holders(&self, name: &str, max: u32) -> Result<Vec<LockHolder>> {
        validate_name("lock name", name, crate::MAX_KEY_BYTES)?;
        validate_slots(max)?;
        let now = self.now();
        Ok(self
            .engine
            .lock_holders(name, max)?
            .into_iter()
            .filter(|h| h.expires_at > now)
            .map(|h| LockHolder {
                slot: h.slot,
                owner: h.owner,
                pid: u32::try_from(h.pid).unwrap_or(0),
                expires_at_millis: shown_time(h.expires_at),
            })
            .collect())
    }
}

/// The most slots a semaphore may have: enough for any pool of workers on a few hosts, few
/// enough that taking one stays a short statement.
pub const MAX_SEMAPHORE_SLOTS: u32 = 10_000;

fn validate_slots(max: u32) -> Result<()> {
    if max == 0 || max > MAX_SEMAPHORE_SLOTS {
        return Err(Error::invalid(format!(
            "a lock admits 1 to {MAX_SEMAPHORE_SLOTS} holders at once; {max} was asked"
        )));
    }
    Ok(())
}

/// The shortest TTL a lock kept alive ([`Store::keep_alive`], `cairn lock -- CMD`) may have.
/// Renewals come every TTL/3, each a write transaction of its own from another connection,
/// which may queue behind other writers or be late to wake: with a TTL of a few
/// milliseconds a renewal came after the hold had run out, so another process took the lock
/// while the work still ran. 100 ms leaves each renewal about 66 ms.
pub const MIN_KEEP_ALIVE_TTL: Duration = Duration::from_millis(100);

fn validate_keep_alive_ttl(ttl: Duration) -> Result<()> {
    if ttl >= MIN_KEEP_ALIVE_TTL {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "a lock TTL of {} is too short to be kept alive: renewals every TTL/3 would come after the hold ran \
         out, and another process could take the lock while the work runs; give at least {}",
        crate::duration::format_duration(ttl),
        crate::duration::format_duration(MIN_KEEP_ALIVE_TTL)
    )))
}

/// A hold of zero is free again the moment it is taken: no mutual exclusion at all.
fn validate_lock_ttl(ttl: Duration) -> Result<()> {
    crate::duration::at_least_1ms(
        ttl,
        "a lock TTL",
        "gives no mutual exclusion (the lock would be free again at once)",
    )
}
