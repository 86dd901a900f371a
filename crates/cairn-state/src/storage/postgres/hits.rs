//! Counts of reading processes on PostgreSQL: kept nowhere apart. A store on a server writes
//! its counts after its own commits, in transactions of their own, at most every few seconds
//! and when it is dropped (`crate::cache`'s bookkeeping apart); a file beside the database, as
//! SQLite's engine keeps, has no meaning for workers on many hosts.

use super::Engine;
use crate::error::Result;
use crate::storage::NsHitCounts;

impl Engine {
    pub fn cache_defer_hit_counts(&self, _counts: &[NsHitCounts]) -> Result<bool> {
        Ok(false)
    }

    pub fn cache_deferred_hit_counts(&self) -> Result<Vec<NsHitCounts>> {
        Ok(Vec::new())
    }

    pub fn cache_take_deferred_hit_counts(&self) -> Result<Vec<NsHitCounts>> {
        Ok(Vec::new())
    }
}
