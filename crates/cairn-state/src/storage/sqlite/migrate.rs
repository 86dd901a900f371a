//! The migration runner's SQL: reading and writing version slots, and running a step.

use rusqlite::params;

use super::Engine;
use crate::error::Result;
use crate::storage::VersionSlot as Slot;

impl Engine {
    pub(crate) fn read_version(&self, slot: Slot<'_>) -> Result<i64> {
        match slot {
            Slot::UserVersion => {
                self.retry_busy(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
            }
            Slot::Scope(scope) => Ok(self
                .row("SELECT version FROM cairn_migrations WHERE scope = ?1", params![scope], |r| r.get(0))?
                .unwrap_or(0)),
        }
    }

    pub(crate) fn write_version(&self, slot: Slot<'_>, version: i64) -> Result<()> {
        match slot {
            // A pragma's value cannot be a bound parameter; an i64 formats to digits only.
            Slot::UserVersion => {
                self.conn.pragma_update(None, "user_version", version).map_err(|e| self.err(e))
            }
            Slot::Scope(scope) => self
                .exec(
                    "INSERT INTO cairn_migrations (scope, version) VALUES (?1, ?2) \
                     ON CONFLICT (scope) DO UPDATE SET version = excluded.version",
                    params![scope, version],
                )
                .map(drop),
        }
    }

    /// Run a script of one or more statements (a migration step of SQL).
    pub(crate) fn run_script(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| self.err(e))
    }
}
