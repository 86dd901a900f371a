//! The checkpoints' SQL on PostgreSQL.

use super::Engine;
use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::Stored;

const JOB: &str = "j";

impl Engine {
    pub fn checkpoint_get(&self, job: &str) -> Result<Option<Stored>> {
        self.lock_key(JOB, "", job)?;
        Ok(self
            .row("SELECT value, kind FROM {s}.cairn_checkpoint WHERE job = $1", &[&job])?
            .map(|r| Stored::new(r.get(0), i64::from(r.get::<_, i16>(1)))))
    }

    pub fn checkpoint_set(&self, job: &str, (value, kind): (&[u8], ValueKind), now: i64) -> Result<()> {
        self.lock_key(JOB, "", job)?;
        self.exec(
            "INSERT INTO {s}.cairn_checkpoint (job, value, updated_at, kind) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
             kind = excluded.kind",
            &[&job, &value, &now, &i16::from(kind.code())],
        )
        .map(drop)
    }

    pub fn checkpoint_delete(&self, job: &str) -> Result<bool> {
        self.lock_key(JOB, "", job)?;
        Ok(self.exec("DELETE FROM {s}.cairn_checkpoint WHERE job = $1", &[&job])? == 1)
    }
}
