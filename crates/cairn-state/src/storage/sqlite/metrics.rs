//! The metrics' SQL.

use rusqlite::params;

use super::Engine;
use crate::error::Result;
use crate::storage::states::state;

/// The earliest `due` of the pending items, by a loose scan of the queue index: the priorities
/// present, highest first, one seek each (there are at most 2001 of them), then the first `due`
/// under each, one seek each; never a read of every pending item. With it, the earliest lease
/// expiry of the claims that ran out (claimed rows are few: one per worker).
const READY_SINCE: &str = concat!(
    "WITH RECURSIVE p(pr) AS (\
       SELECT (SELECT priority FROM cairn_ledger WHERE ns = ?1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL ORDER BY priority DESC LIMIT 1) \
       UNION ALL \
       SELECT (SELECT priority FROM cairn_ledger WHERE ns = ?1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND priority < p.pr ORDER BY priority DESC LIMIT 1) FROM p WHERE p.pr IS NOT NULL) \
     SELECT (SELECT min((SELECT due FROM cairn_ledger WHERE ns = ?1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND priority = p.pr ORDER BY due LIMIT 1)) FROM p WHERE p.pr IS NOT NULL), \
     (SELECT min(seq) FROM cairn_ledger WHERE ns = ?1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL AND seq <= ?2)"
);

impl Engine {
    pub fn metrics_ready_since(&self, ns: &str, now: i64) -> Result<Option<i64>> {
        let (due, lapsed) = self
            .row(READY_SINCE, params![ns, now], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
            })?
            .unwrap_or((None, None));
        Ok(due.filter(|d| *d <= now).into_iter().chain(lapsed).min())
    }

    pub fn metrics_locks_held(&self, now: i64) -> Result<Vec<(String, u64)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT name, count(*) FROM cairn_lock WHERE expires_at > ?1 GROUP BY name ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![now], |r| Ok((r.get(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0))))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    /// The age of the oldest queued item is read from the queue index, never from the table
    /// or the primary key: with a million items, a scrape stays a few seeks.
    #[test]
    fn the_ready_since_query_only_seeks_the_queue_index() -> crate::Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        let mut st =
            e.conn.prepare(&format!("EXPLAIN QUERY PLAN {}", super::READY_SINCE)).map_err(|x| e.err(x))?;
        let plan: Vec<String> = st
            .query_map(rusqlite::params!["q", 0], |r| r.get(3))
            .and_then(Iterator::collect)
            .map_err(|x| e.err(x))?;
        let reads: Vec<&String> = plan.iter().filter(|d| d.contains("cairn_ledger")).collect();
        assert!(!reads.is_empty(), "{plan:#?}");
        for d in reads {
            assert!(d.starts_with("SEARCH") && d.contains("INDEX cairn_ledger_queue"), "{d} in {plan:#?}");
        }
        assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "{plan:#?}");
        Ok(())
    }
}
