//! Looking after a store on PostgreSQL: what the server does itself (integrity, the log) is
//! left to it; vacuuming is PostgreSQL's own; a backup is pg_dump's job.

use std::path::Path;

use super::Engine;
use crate::error::{Error, Result};
use crate::storage::{Health, Pages};

/// cairn's tables, for VACUUM and sizes.
const TABLES: &[&str] = &[
    "cairn_cache",
    "cairn_cache_ns",
    "cairn_cache_fill",
    "cairn_ledger",
    "cairn_ledger_ns",
    "cairn_checkpoint",
    "cairn_lock",
    "cairn_memo_chunk",
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

    /// What bites a store on PostgreSQL first: an old server, autovacuum off, dead rows piling
    /// up in the queue and cache tables, a long transaction holding them back, and the schema's
    /// version.
    pub fn server_health(&self) -> Result<Vec<Health>> {
        let mut out = Vec::new();
        let ok = |check, detail: String| Health { check, ok: true, detail, fix: None };
        let bad =
            |check, detail: String, fix: &str| Health { check, ok: false, detail, fix: Some(fix.to_owned()) };
        let r = self.raw_one(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int, \
                    current_setting('autovacuum'), \
                    coalesce((SELECT max(extract(epoch FROM clock_timestamp() - xact_start))::bigint \
                              FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()), 0)",
            &[],
        )?;
        let (version, num, autovacuum, oldest): (String, i32, String, i64) = (
            r.try_get(0).map_err(|e| self.err(e))?,
            r.try_get(1).map_err(|e| self.err(e))?,
            r.try_get(2).map_err(|e| self.err(e))?,
            r.try_get(3).map_err(|e| self.err(e))?,
        );
        out.push(if num >= 150_000 {
            ok("server", format!("PostgreSQL {version}"))
        } else {
            bad(
                "server",
                format!("PostgreSQL {version}"),
                "upgrade to PostgreSQL 15 or newer, the version cairn is tested on",
            )
        });
        out.push(if autovacuum == "on" {
            ok("autovacuum", "on".into())
        } else {
            bad(
                "autovacuum",
                "off: rows left by claims, completions and expiry are never reclaimed".into(),
                "turn autovacuum on, or run `cairn vacuum` regularly (cron)",
            )
        });
        let schema = self.schema().to_owned();
        let dead = self
            .client()?
            .query(
                "SELECT relname::text, n_live_tup, n_dead_tup FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname LIKE 'cairn\\_%' ORDER BY relname",
                &[&schema],
            )
            .map_err(|e| self.err(e))?;
        for row in &dead {
            let (name, live, dead): (String, i64, i64) = (
                row.try_get(0).map_err(|e| self.err(e))?,
                row.try_get(1).map_err(|e| self.err(e))?,
                row.try_get(2).map_err(|e| self.err(e))?,
            );
            if dead > 1000 && dead > live / 5 {
                out.push(bad(
                    "dead_rows",
                    format!("{name}: {dead} dead rows beside {live} live ones"),
                    "run `cairn vacuum` (VACUUM ANALYZE of cairn's tables), and check autovacuum",
                ));
            }
        }
        out.push(if oldest < 3600 {
            ok("transactions", format!("the oldest open transaction is {oldest} s old"))
        } else {
            bad(
                "transactions",
                format!(
                    "a transaction has been open for {oldest} s: it keeps dead rows from being reclaimed"
                ),
                "find it in pg_stat_activity and end it",
            )
        });
        let server = self.server_millis()?;
        let here = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let offset = here - server;
        out.push(if offset.abs() < 1000 {
            ok("clock", format!("this host is {offset} ms off the server"))
        } else {
            bad(
                "clock",
                format!("this host's clock is {offset} ms off the server's; cairn judges leases on the server's clock"),
                "run NTP on this host (cairn is not affected; your own timestamps are)",
            )
        });
        let found = self.read_version(crate::storage::VersionSlot::UserVersion)?;
        let latest = super::schema::latest();
        out.push(if found == latest {
            ok("schema", format!("'{schema}' at version {found}"))
        } else {
            bad(
                "schema",
                format!("'{schema}' at version {found}, this cairn expects {latest}"),
                "open the store once with this cairn (any command that writes) to migrate it",
            )
        });
        Ok(out)
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
