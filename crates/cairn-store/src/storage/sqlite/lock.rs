//! The named locks' SQL.

use rusqlite::params;

use super::Engine;
use crate::error::Result;
use crate::storage::{HolderRow, Taker};

impl Engine {
    pub fn lock_holder(&self, name: &str) -> Result<Option<HolderRow>> {
        self.row(
            "SELECT owner, boot_id, pid, pid_start, expires_at FROM cairn_lock WHERE name = ?1",
            params![name],
            |r| {
                Ok(HolderRow {
                    owner: r.get(0)?,
                    boot_id: r.get(1)?,
                    pid: r.get(2)?,
                    pid_start: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            },
        )
    }

    /// Take the lock if it is free, expired, or held by `replace` (a holder found dead).
    pub fn lock_take(
        &self,
        name: &str,
        t: &Taker<'_>,
        expires_at: i64,
        now: i64,
        replace: Option<&str>,
    ) -> Result<bool> {
        Ok(self.exec(
            "INSERT INTO cairn_lock (name, owner, boot_id, pid, pid_start, expires_at, acquired_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, boot_id = excluded.boot_id, pid = excluded.pid, \
             pid_start = excluded.pid_start, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at \
             WHERE cairn_lock.expires_at <= ?7 OR cairn_lock.owner = ?8",
            params![name, t.owner, t.boot_id, t.pid, t.pid_start, expires_at, now, replace],
        )? == 1)
    }

    pub fn lock_renew(&self, name: &str, owner: &str, expires_at: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE cairn_lock SET expires_at = ?3 WHERE name = ?1 AND owner = ?2",
            params![name, owner, expires_at],
        )? == 1)
    }

    pub fn lock_release(&self, name: &str, owner: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM cairn_lock WHERE name = ?1 AND owner = ?2", params![name, owner])? == 1)
    }
}
