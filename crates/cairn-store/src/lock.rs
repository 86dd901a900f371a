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

use std::time::Duration;

use crate::cache::validate_name;
use crate::clock::deadline;
use crate::error::{Error, Result};
use crate::process;
use crate::storage::sqlite::lock::Taker;
use crate::store::Store;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockHolder {
    /// The holder's unique owner name.
    pub owner: String,
    /// Its process id.
    pub pid: u32,
    /// When its hold runs out unless renewed, in Unix milliseconds.
    pub expires_at_millis: i64,
}

/// A held lock, released when dropped.
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
    name: String,
    owner: String,
    released: bool,
}

impl LockGuard<'_> {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Push the expiry to `ttl` from now. Fails with `LeaseLost` if the lock expired and
    /// another process took it: stop the work it protected.
    pub fn renew(&self, ttl: Duration) -> Result<()> {
        validate_lock_ttl(ttl)?;
        self.store.write_tx(|s| {
            if s.engine.lock_renew(&self.name, &self.owner, deadline(s.now(), ttl))? {
                Ok(())
            } else {
                Err(Error::LeaseLost { what: "lock", name: self.name.clone(), holder: self.owner.clone() })
            }
        })
    }

    /// Release now. False if the lock had already been taken over.
    pub fn release(mut self) -> Result<bool> {
        self.released = true;
        self.store.write_tx(|s| s.engine.lock_release(&self.name, &self.owner))
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if !self.released {
            // If this fails the lock expires on its own, or is recovered once we are gone.
            let _ = self.store.write_tx(|s| s.engine.lock_release(&self.name, &self.owner));
        }
    }
}

impl Store {
    /// Take the lock `name` for `ttl` if it is free, expired, or held by a dead process on
    /// this host; `None` at once otherwise.
    pub fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockGuard<'_>>> {
        validate_name("lock name", name, crate::MAX_KEY_BYTES)?;
        validate_lock_ttl(ttl)?;
        let owner = process::token();
        let me = process::me();
        let taker =
            Taker { owner: &owner, boot_id: &me.boot_id, pid: i64::from(me.pid), pid_start: me.start };
        let taken = self.write_tx(|s| {
            let now = s.now();
            let until = deadline(now, ttl);
            if s.engine.lock_take(name, &taker, until, now, None)? {
                return Ok(true);
            }
            match s.engine.lock_holder(name)? {
                Some(h) if process::is_dead(&h.boot_id, h.pid, h.pid_start) => {
                    s.engine.lock_take(name, &taker, until, now, Some(&h.owner))
                }
                _ => Ok(false),
            }
        })?;
        Ok(taken.then(|| LockGuard { store: self, name: name.to_owned(), owner, released: false }))
    }

    /// Take the lock `name` for `ttl`, waiting up to `wait` for it; `None` if it is still
    /// held then.
    pub fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<Option<LockGuard<'_>>> {
        validate_name("lock name", name, crate::MAX_KEY_BYTES)?;
        validate_lock_ttl(ttl)?;
        let give_up = deadline(self.now(), wait);
        let mut nap = Duration::from_millis(2);
        loop {
            if let Some(guard) = self.try_lock(name, ttl)? {
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

    /// Who holds `name`, if anyone does (an expired hold is reported as none).
    pub fn lock_holder(&self, name: &str) -> Result<Option<LockHolder>> {
        validate_name("lock name", name, crate::MAX_KEY_BYTES)?;
        let now = self.now();
        Ok(self.engine.lock_holder(name)?.filter(|h| h.expires_at > now).map(|h| LockHolder {
            owner: h.owner,
            pid: u32::try_from(h.pid).unwrap_or(0),
            expires_at_millis: h.expires_at,
        }))
    }
}

/// A hold of zero is free again the moment it is taken: no mutual exclusion at all.
fn validate_lock_ttl(ttl: Duration) -> Result<()> {
    crate::duration::at_least_1ms(
        ttl,
        "a lock TTL",
        "gives no mutual exclusion (the lock would be free again at once)",
    )
}
