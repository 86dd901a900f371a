//! The rate limiters' SQL on PostgreSQL: GCRA on one row per name, in one statement on its own
//! (the row's lock, held for that statement alone, orders the takers), on the server's clock.

use super::Engine;
use crate::error::Result;
use crate::storage::LimitRow;

/// `now` is `$4`, or the server's clock in microseconds, read once (MATERIALIZED) so the
/// decision and the time it reports agree; `excluded.tat - $2` is that `now` inside the
/// update. The last read sees the row as the statement's snapshot had it: on a refusal after
/// waiting for another taker's row lock, an older `tat`, so a retry-after that is short, never
/// long (the retry then asks again).
const TAKE: &str = "WITH bound AS MATERIALIZED (SELECT set_config('lock_timeout', $5, true)), \
     t AS MATERIALIZED (SELECT coalesce($4::bigint, \
         (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) AS now FROM bound), \
     up AS (INSERT INTO {s}.cairn_limit AS l (name, tat) SELECT $1, t.now + $2::bigint FROM t \
         ON CONFLICT (name) DO UPDATE SET tat = greatest(l.tat, excluded.tat - $2::bigint) + $2::bigint \
         WHERE l.tat - $3::bigint <= excluded.tat - $2::bigint \
         RETURNING l.tat) \
     SELECT (SELECT tat FROM up), (SELECT tat FROM {s}.cairn_limit WHERE name = $1), t.now FROM t";

impl Engine {
    pub fn limit_take(
        &self,
        name: &str,
        interval: i64,
        tolerance: i64,
        now: Option<i64>,
    ) -> Result<LimitRow> {
        let row = self.row(TAKE, &[&name, &interval, &tolerance, &now, &self.lock_timeout()])?;
        let Some(row) = row else {
            // The final SELECT returns exactly one row.
            return Err(crate::error::Error::Server {
                path: self.path().to_path_buf(),
                source: "no row from a rate limiter's take, whose statement always returns one".into(),
            });
        };
        let taken: Option<i64> = row.get(0);
        let seen: Option<i64> = row.get(1);
        let now: i64 = row.get(2);
        Ok(match taken {
            Some(tat) => LimitRow { taken: true, tat: Some(tat), now },
            None => LimitRow { taken: false, tat: seen, now },
        })
    }
}
