//! Schema versions on PostgreSQL: cairn's own in `cairn_meta`, users' scopes in
//! `cairn_migrations`, a scope's steps serialized by a transaction-scoped lock on its name.

use super::Engine;
use crate::error::Result;
use crate::storage::VersionSlot as Slot;

impl Engine {
    pub(crate) fn read_version(&self, slot: Slot<'_>) -> Result<i64> {
        match slot {
            Slot::UserVersion => Ok(self
                .row("SELECT value FROM {s}.cairn_meta WHERE key = 'schema_version'", &[])?
                .and_then(|r| r.get::<_, String>(0).parse().ok())
                .unwrap_or(0)),
            Slot::Scope(scope) => {
                // Concurrent runners of one scope apply each step once: the lock is held until
                // the step commits.
                self.lock_key("m", "", scope)?;
                Ok(self
                    .row("SELECT version FROM {s}.cairn_migrations WHERE scope = $1", &[&scope])?
                    .map_or(0, |r| r.get(0)))
            }
        }
    }

    pub(crate) fn write_version(&self, slot: Slot<'_>, version: i64) -> Result<()> {
        match slot {
            Slot::UserVersion => self
                .exec(
                    "UPDATE {s}.cairn_meta SET value = $1 WHERE key = 'schema_version'",
                    &[&version.to_string()],
                )
                .map(drop),
            Slot::Scope(scope) => self
                .exec(
                    "INSERT INTO {s}.cairn_migrations (scope, version) VALUES ($1, $2) \
                     ON CONFLICT (scope) DO UPDATE SET version = excluded.version",
                    &[&scope, &version],
                )
                .map(drop),
        }
    }

    /// A migration step's SQL, run as it is (its names are the user's, in the user's schema).
    pub(crate) fn run_script(&self, sql: &str) -> Result<()> {
        self.client()?.batch_execute(sql).map_err(|e| self.err(e))
    }
}
