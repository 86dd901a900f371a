//! The metrics' part of the engine contract: what a snapshot reads that no feature reads
//! already (the other figures come from the ledger's and cache's own operations).

use crate::error::Result;

engine_ops! {
    /// Reads for [`Store::metrics`](crate::Store::metrics): cheap with a million items, each an
    /// index seek or a read of few rows.
    trait MetricsOps {
        /// Since when (Unix ms) the item of `ns` waiting longest for a worker has been ready:
        /// the earliest `due` of a pending item, or lease expiry of a claim that ran out,
        /// whichever is earlier; `None` if no item is ready by `now`. Items waiting behind
        /// their group's head are not ready. Reads the queue index once per distinct priority.
        fn metrics_ready_since(&self, ns: &str, now: i64) -> Result<Option<i64>>;
        /// The locks with a live holder at `now`: each name with how many of its slots are
        /// held, sorted by name.
        fn metrics_locks_held(&self, now: i64) -> Result<Vec<(String, u64)>>;
    }
}
