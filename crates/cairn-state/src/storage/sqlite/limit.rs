//! The rate limiters' SQL: GCRA on one row per name, `tat` in microseconds.

use rusqlite::params;

use super::Engine;
use crate::error::{Error, Result};
use crate::storage::LimitRow;

/// Take a slot: a new name starts at `now + interval`; an existing one moves on by one interval
/// from `max(tat, now)` if `tat - tolerance <= now`, and is left alone (no row returned)
/// otherwise.
const TAKE: &str = "INSERT INTO cairn_limit (name, tat) VALUES (?1, ?2 + ?3) \
     ON CONFLICT (name) DO UPDATE SET tat = max(cairn_limit.tat, ?2) + ?3 \
     WHERE cairn_limit.tat - ?4 <= ?2 \
     RETURNING tat";

const READ: &str = "SELECT tat FROM cairn_limit WHERE name = ?1";

impl Engine {
    /// Runs inside the store's write transaction, so the refusal's read sees the row the
    /// statement judged. A file has no clock of its own: the time is always given.
    pub fn limit_take(
        &self,
        name: &str,
        interval: i64,
        tolerance: i64,
        now: Option<i64>,
    ) -> Result<LimitRow> {
        let now =
            now.ok_or_else(|| Error::invalid("a rate limiter on a file needs the time it is asked at"))?;
        if let Some(tat) = self.row(TAKE, params![name, now, interval, tolerance], |r| r.get(0))? {
            return Ok(LimitRow { taken: true, tat: Some(tat), now });
        }
        let tat = self.row(READ, params![name], |r| r.get(0))?;
        Ok(LimitRow { taken: false, tat, now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// Taking a slot is one statement that compiles once, whatever the name.
    #[test]
    fn taking_a_slot_is_one_statement_compiled_once() -> Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        e.begin_immediate()?;
        for i in 0..20i64 {
            e.limit_take(&format!("l{}", i % 3), 1_000, 0, Some(i * 10))?;
        }
        e.commit()?;
        crate::storage::sqlite::assert_compiled_once(e, &[TAKE, READ])
    }
}
