//! The locks' part of the engine contract, and the rows it exchanges.

use crate::error::Result;

engine_ops! {
    /// Named locks and counting semaphores.
    trait LockOps {
        /// The holders of a lock's slots below `slots` (a plain lock has slot 0 alone), by slot.
        fn lock_holders(&self, name: &str, slots: u32) -> Result<Vec<HolderRow>>;
        /// Take the lowest slot below `slots` that is free or expired; which one.
        fn lock_take_any(&self, name: &str, slots: u32, t: &Taker<'_>, expires_at: i64, now: i64) -> Result<Option<u32>>;
        /// Take a slot from `dead`, a holder found dead (or if it is free or expired); true if taken.
        fn lock_take_over(&self, name: &str, slot: u32, t: &Taker<'_>, expires_at: i64, now: i64, dead: &str) -> Result<bool>;
        /// Move a slot's expiry; false if not the owner's.
        fn lock_renew(&self, name: &str, slot: u32, owner: &str, expires_at: i64) -> Result<bool>;
        /// Release a slot; false if not the owner's.
        fn lock_release(&self, name: &str, slot: u32, owner: &str) -> Result<bool>;
    }
}

/// Who holds a lock's slot.
#[derive(Debug, Clone)]
pub(crate) struct HolderRow {
    pub slot: u32,
    pub owner: String,
    pub boot_id: String,
    pub pid: i64,
    pub pid_start: i64,
    pub expires_at: i64,
}

/// Who takes a lock.
pub(crate) struct Taker<'a> {
    pub owner: &'a str,
    pub boot_id: &'a str,
    pub pid: i64,
    pub pid_start: i64,
}
