//! The checkpoints' SQL.

use rusqlite::params;

use super::Engine;
use crate::error::Result;

impl Engine {
    pub fn checkpoint_get(&self, job: &str) -> Result<Option<Vec<u8>>> {
        self.row("SELECT value FROM cairn_checkpoint WHERE job = ?1", params![job], |r| r.get(0))
    }

    pub fn checkpoint_set(&self, job: &str, value: &[u8], now: i64) -> Result<()> {
        self.exec(
            "INSERT INTO cairn_checkpoint (job, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (job) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![job, value, now],
        )
        .map(drop)
    }

    pub fn checkpoint_delete(&self, job: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM cairn_checkpoint WHERE job = ?1", params![job])? == 1)
    }
}
