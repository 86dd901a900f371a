//! The named locks' SQL on PostgreSQL: lease rows, as on SQLite (no session advisory locks, so
//! a pooler in transaction mode works and a lock never outlives its lease with a lost session).

use super::Engine;
use crate::error::Result;
use crate::storage::{HolderRow, Taker};

const LOCK: &str = "k";

impl Engine {
    pub fn lock_holder(&self, name: &str) -> Result<Option<HolderRow>> {
        self.lock_key(LOCK, "", name)?;
        Ok(self
            .row(
                "SELECT owner, boot_id, pid, pid_start, expires_at FROM {s}.cairn_lock WHERE name = $1",
                &[&name],
            )?
            .map(|r| HolderRow {
                owner: r.get(0),
                boot_id: r.get(1),
                pid: r.get(2),
                pid_start: r.get(3),
                expires_at: r.get(4),
            }))
    }

    pub fn lock_take(
        &self,
        name: &str,
        t: &Taker<'_>,
        expires_at: i64,
        now: i64,
        replace: Option<&str>,
    ) -> Result<bool> {
        self.lock_key(LOCK, "", name)?;
        Ok(self.exec(
            "INSERT INTO {s}.cairn_lock AS l (name, owner, boot_id, pid, pid_start, expires_at, acquired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, boot_id = excluded.boot_id, pid = excluded.pid, \
             pid_start = excluded.pid_start, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at \
             WHERE l.expires_at <= $7 OR l.owner = $8",
            &[&name, &t.owner, &t.boot_id, &t.pid, &t.pid_start, &expires_at, &now, &replace],
        )? == 1)
    }

    pub fn lock_renew(&self, name: &str, owner: &str, expires_at: i64) -> Result<bool> {
        self.lock_key(LOCK, "", name)?;
        Ok(self.exec(
            "UPDATE {s}.cairn_lock SET expires_at = $3 WHERE name = $1 AND owner = $2",
            &[&name, &owner, &expires_at],
        )? == 1)
    }

    pub fn lock_release(&self, name: &str, owner: &str) -> Result<bool> {
        self.lock_key(LOCK, "", name)?;
        Ok(self.exec("DELETE FROM {s}.cairn_lock WHERE name = $1 AND owner = $2", &[&name, &owner])? == 1)
    }
}
