//! The metrics' SQL on PostgreSQL: the same reads as on SQLite.

use super::Engine;
use crate::error::Result;
use crate::storage::states::state;

/// See `READY_SINCE` in `sqlite/metrics.rs`: a loose scan of the queue index, one seek per
/// priority present.
const READY_SINCE: &str = concat!(
    "WITH RECURSIVE p(pr) AS (\
       SELECT (SELECT priority FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL ORDER BY priority DESC LIMIT 1) \
       UNION ALL \
       SELECT (SELECT priority FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND priority < p.pr ORDER BY priority DESC LIMIT 1) FROM p WHERE p.pr IS NOT NULL) \
     SELECT (SELECT min((SELECT due FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND priority = p.pr ORDER BY due LIMIT 1)) FROM p WHERE p.pr IS NOT NULL), \
     (SELECT min(seq) FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL AND seq <= $2)"
);

impl Engine {
    pub fn metrics_ready_since(&self, ns: &str, now: i64) -> Result<Option<i64>> {
        let row = self.row(READY_SINCE, &[&ns, &now])?;
        let (due, lapsed) =
            row.map_or((None, None), |r| (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1)));
        Ok(due.filter(|d| *d <= now).into_iter().chain(lapsed).min())
    }

    pub fn metrics_locks_held(&self, now: i64) -> Result<Vec<(String, u64)>> {
        let rows = self.rows(
            "SELECT name, count(*) FROM {s}.cairn_lock WHERE expires_at > $1 GROUP BY name ORDER BY name",
            &[&now],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0))).collect())
    }
}
