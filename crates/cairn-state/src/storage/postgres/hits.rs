//! Counts of reading processes on PostgreSQL: kept nowhere apart. A store on a server writes
//! its counts after its own commits, in transactions of their own, at most every few seconds
//! and when it is dropped (`crate::cache`'s bookkeeping apart); a file beside the database, as
//! SQLite's engine keeps, has no meaning for workers on many hosts.

use super::Engine;
use crate::error::Result;
use crate::storage::NsTally;

impl Engine {
    pub fn cache_defer_tally(&self, _counts: &[NsTally]) -> Result<bool> {
        Ok(false)
    }

    pub fn cache_deferred_tally(&self) -> Result<Vec<NsTally>> {
        Ok(Vec::new())
    }

    pub fn cache_take_deferred_tally(&self) -> Result<Vec<NsTally>> {
        Ok(Vec::new())
    }
}
