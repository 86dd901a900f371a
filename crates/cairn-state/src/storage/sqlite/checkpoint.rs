//! The checkpoints' SQL.

use rusqlite::params;

use super::Engine;
use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::Stored;

impl Engine {
    pub fn checkpoint_get(&self, job: &str) -> Result<Option<Stored>> {
        self.row("SELECT value, kind FROM cairn_checkpoint WHERE job = ?1", params![job], |r| {
            Ok(Stored::new(r.get(0)?, r.get(1)?))
        })
    }

    pub fn checkpoint_set(&self, job: &str, (value, kind): (&[u8], ValueKind), now: i64) -> Result<()> {
        self.exec(
            "INSERT INTO cairn_checkpoint (job, value, updated_at, kind) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (job) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
             kind = excluded.kind",
            params![job, value, now, kind.code()],
        )
        .map(drop)
    }

    pub fn checkpoint_delete(&self, job: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM cairn_checkpoint WHERE job = ?1", params![job])? == 1)
    }
}
