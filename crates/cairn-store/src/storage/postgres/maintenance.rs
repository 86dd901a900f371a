//! Looking after a store on PostgreSQL: what the server does itself (integrity, the log) is
//! left to it; vacuuming is PostgreSQL's own; a backup is pg_dump's job.

use std::path::Path;

use super::Engine;
use crate::error::{Error, Result};
use crate::storage::Pages;

/// cairn's tables, for VACUUM and sizes.
const TABLES: &[&str] = &[
    "cairn_cache",
    "cairn_cache_ns",
    "cairn_cache_fill",
    "cairn_ledger",
    "cairn_checkpoint",
    "cairn_lock",
    "cairn_migrations",
    "cairn_meta",
];

impl Engine {
    /// `VACUUM (ANALYZE)` of cairn's tables: dead rows left by claims and expiry are reclaimed
    /// (and the planner's statistics refreshed), which matters where autovacuum is off.
    pub fn vacuum(&self) -> Result<()> {
        let q = super::quote_ident(self.schema());
        let tables: Vec<String> = TABLES.iter().map(|t| format!("{q}.{t}")).collect();
        self.client()?
            .batch_execute(&format!("VACUUM (ANALYZE) {}", tables.join(", ")))
            .map_err(|e| self.err(e))
    }

    pub fn vacuum_into(&self, dest: &Path) -> Result<()> {
        Err(Error::invalid(format!(
            "a backup to a file ({}) is for SQLite stores; for a store on PostgreSQL use pg_dump --schema={}",
            dest.display(),
            self.schema()
        )))
    }

    /// The server keeps its own write-ahead log: nothing to do.
    pub fn checkpoint_truncate(&self) -> Result<()> {
        Ok(())
    }

    /// The size of cairn's tables and indexes, as pages of 8 KiB.
    pub fn pages(&self) -> Result<Pages> {
        let schema = self.schema().to_owned();
        let names: Vec<&str> = TABLES.to_vec();
        let bytes: i64 = self
            .raw_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2)",
                &[&schema, &names],
            )?
            .get(0);
        let bytes = u64::try_from(bytes).unwrap_or(0);
        Ok(Pages { page_size: 8192, page_count: bytes.div_ceil(8192), freelist: 0 })
    }
}
