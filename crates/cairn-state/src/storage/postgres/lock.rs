//! The named locks' SQL on PostgreSQL: lease rows, as on SQLite (no session advisory locks, so
//! a pooler in transaction mode works and a lock never outlives its lease with a lost session).
//! Every operation first locks the lock's name, all its slots at once: taking "the lowest free
//! slot" is then decided by one transaction at a time, as under SQLite's single writer.

use super::Engine;
use crate::error::Result;
use crate::storage::{HolderRow, Taker};

const LOCK: &str = "k";

impl Engine {
    pub fn lock_holders(&self, name: &str, slots: u32) -> Result<Vec<HolderRow>> {
        self.lock_key(LOCK, "", name)?;
        let rows = self.rows(
            "SELECT slot, owner, boot_id, pid, pid_start, expires_at FROM {s}.cairn_lock \
             WHERE name = $1 AND slot < $2 ORDER BY slot",
            &[&name, &i64::from(slots)],
        )?;
        Ok(rows
            .iter()
            .map(|r| HolderRow {
                slot: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
                owner: r.get(1),
                boot_id: r.get(2),
                pid: r.get(3),
                pid_start: r.get(4),
                expires_at: r.get(5),
            })
            .collect())
    }

    pub fn lock_take_any(
        &self,
        name: &str,
        slots: u32,
        t: &Taker<'_>,
        expires_at: i64,
        now: i64,
    ) -> Result<Option<u32>> {
        self.lock_key(LOCK, "", name)?;
        Ok(self
            .row(
                "INSERT INTO {s}.cairn_lock AS l (name, slot, owner, boot_id, pid, pid_start, expires_at, acquired_at) \
                 SELECT $1, s, $3, $4, $5, $6, $7, $8 FROM generate_series(0::bigint, $2::bigint - 1) AS s \
                 WHERE NOT EXISTS (SELECT 1 FROM {s}.cairn_lock h WHERE h.name = $1 AND h.slot = s AND h.expires_at > $8) \
                 ORDER BY s LIMIT 1 \
                 ON CONFLICT (name, slot) DO UPDATE SET owner = excluded.owner, boot_id = excluded.boot_id, \
                 pid = excluded.pid, pid_start = excluded.pid_start, expires_at = excluded.expires_at, \
                 acquired_at = excluded.acquired_at \
                 WHERE l.expires_at <= $8 \
                 RETURNING slot",
                &[&name, &i64::from(slots), &t.owner, &t.boot_id, &t.pid, &t.pid_start, &expires_at, &now],
            )?
            .map(|r| u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX)))
    }

    pub fn lock_take_over(
        &self,
        name: &str,
        slot: u32,
        t: &Taker<'_>,
        expires_at: i64,
        now: i64,
        dead: &str,
    ) -> Result<bool> {
        self.lock_key(LOCK, "", name)?;
        Ok(self.exec(
            "INSERT INTO {s}.cairn_lock AS l (name, slot, owner, boot_id, pid, pid_start, expires_at, acquired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (name, slot) DO UPDATE SET owner = excluded.owner, boot_id = excluded.boot_id, pid = excluded.pid, \
             pid_start = excluded.pid_start, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at \
             WHERE l.expires_at <= $8 OR l.owner = $9",
            &[&name, &i64::from(slot), &t.owner, &t.boot_id, &t.pid, &t.pid_start, &expires_at, &now, &dead],
        )? == 1)
    }

    pub fn lock_renew(&self, name: &str, slot: u32, owner: &str, expires_at: i64) -> Result<bool> {
        self.lock_key(LOCK, "", name)?;
        Ok(self.exec(
            "UPDATE {s}.cairn_lock SET expires_at = $4 WHERE name = $1 AND slot = $2 AND owner = $3",
            &[&name, &i64::from(slot), &owner, &expires_at],
        )? == 1)
    }

    pub fn lock_release(&self, name: &str, slot: u32, owner: &str) -> Result<bool> {
        self.lock_key(LOCK, "", name)?;
        Ok(self.exec(
            "DELETE FROM {s}.cairn_lock WHERE name = $1 AND slot = $2 AND owner = $3",
            &[&name, &i64::from(slot), &owner],
        )? == 1)
    }
}
