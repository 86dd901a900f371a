//! The named locks' SQL. A lock has slots: a plain lock is slot 0 alone, a semaphore of N
//! takes any of slots 0 to N-1.

use rusqlite::params;

use super::Engine;
use crate::error::Result;
use crate::storage::{HolderRow, Taker};

/// The lowest free or expired slot below ?2, taken in one statement.
const TAKE_ANY: &str = "WITH RECURSIVE s(slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM s WHERE slot + 1 < ?2) \
     INSERT INTO cairn_lock (name, slot, owner, boot_id, pid, pid_start, expires_at, acquired_at) \
     SELECT ?1, slot, ?3, ?4, ?5, ?6, ?7, ?8 FROM s WHERE NOT EXISTS \
       (SELECT 1 FROM cairn_lock l WHERE l.name = ?1 AND l.slot = s.slot AND l.expires_at > ?8) \
     ORDER BY slot LIMIT 1 \
     ON CONFLICT (name, slot) DO UPDATE SET owner = excluded.owner, boot_id = excluded.boot_id, pid = excluded.pid, \
     pid_start = excluded.pid_start, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at \
     WHERE cairn_lock.expires_at <= ?8 \
     RETURNING slot";

impl Engine {
    pub fn lock_holders(&self, name: &str, slots: u32) -> Result<Vec<HolderRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT slot, owner, boot_id, pid, pid_start, expires_at FROM cairn_lock \
                 WHERE name = ?1 AND slot < ?2 ORDER BY slot",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![name, slots], |r| {
                Ok(HolderRow {
                    slot: r.get(0)?,
                    owner: r.get(1)?,
                    boot_id: r.get(2)?,
                    pid: r.get(3)?,
                    pid_start: r.get(4)?,
                    expires_at: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn lock_take_any(
        &self,
        name: &str,
        slots: u32,
        t: &Taker<'_>,
        expires_at: i64,
        now: i64,
    ) -> Result<Option<u32>> {
        self.row(
            TAKE_ANY,
            params![name, slots, t.owner, t.boot_id, t.pid, t.pid_start, expires_at, now],
            |r| r.get(0),
        )
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
        Ok(self.exec(
            "INSERT INTO cairn_lock (name, slot, owner, boot_id, pid, pid_start, expires_at, acquired_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (name, slot) DO UPDATE SET owner = excluded.owner, boot_id = excluded.boot_id, pid = excluded.pid, \
             pid_start = excluded.pid_start, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at \
             WHERE cairn_lock.expires_at <= ?8 OR cairn_lock.owner = ?9",
            params![name, slot, t.owner, t.boot_id, t.pid, t.pid_start, expires_at, now, dead],
        )? == 1)
    }

    pub fn lock_renew(&self, name: &str, slot: u32, owner: &str, expires_at: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE cairn_lock SET expires_at = ?4 WHERE name = ?1 AND slot = ?2 AND owner = ?3",
            params![name, slot, owner, expires_at],
        )? == 1)
    }

    pub fn lock_release(&self, name: &str, slot: u32, owner: &str) -> Result<bool> {
        Ok(self.exec(
            "DELETE FROM cairn_lock WHERE name = ?1 AND slot = ?2 AND owner = ?3",
            params![name, slot, owner],
        )? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// Taking a lock is one statement that compiles once, whatever the name and slot count.
    #[test]
    fn taking_a_slot_is_one_statement_compiled_once() -> Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        let t = Taker { owner: "o", boot_id: "b", pid: 1, pid_start: 1 };
        e.begin_immediate()?;
        for i in 0..20u32 {
            e.lock_take_any(&format!("l{}", i % 3), 1 + i % 4, &t, 1_000, i64::from(i))?;
        }
        e.commit()?;
        crate::storage::sqlite::assert_compiled_once(e, &[TAKE_ANY])
    }
}
