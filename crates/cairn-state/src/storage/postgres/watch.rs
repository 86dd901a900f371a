//! Waiting for a namespace to change on a server: polling with a backoff, from 5 ms to 250 ms
//! and back to 5 ms after each change. LISTEN/NOTIFY would wake sooner, but a session that
//! listens breaks behind a pooler in transaction mode (PgBouncer's default), which cairn
//! supports; a poll is one indexed read.

use std::time::Duration;

use super::Engine;
use crate::error::Result;
use crate::storage::states::state;
use crate::storage::watch::{WakeRow, Watcher};

/// See the SQLite engine's `WAKE`: the same five answers in one round trip, the earliest due
/// time found by skip-scanning the priorities of the queue index.
const WAKE: &str = concat!(
    "WITH RECURSIVE p(pr) AS (SELECT (SELECT max(priority) FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL) UNION ALL SELECT (SELECT max(priority) FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND priority < p.pr) FROM p WHERE p.pr IS NOT NULL) \
     SELECT (SELECT min((SELECT min(due) FROM {s}.cairn_ledger l WHERE l.ns = $1 AND l.state = ",
    state!(pending),
    " AND l.seq IS NOT NULL AND l.priority = p.pr)) FROM p WHERE p.pr IS NOT NULL), \
     (SELECT min(seq) FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL), \
     (SELECT paused_until FROM {s}.cairn_ledger_ns WHERE ns = $1), \
     (SELECT count(*) FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL), \
     EXISTS (SELECT 1 FROM {s}.cairn_ledger WHERE ns = $1 AND state IN (",
    state!(pending),
    ", ",
    state!(claimed),
    ") AND seq IS NOT NULL)"
);

impl Engine {
    pub fn ledger_wake(&self, ns: &str) -> Result<WakeRow> {
        Ok(self
            .row(WAKE, &[&ns])?
            .map(|r| WakeRow {
                earliest_due: r.get(0),
                earliest_expiry: r.get(1),
                paused_until: r.get(2),
                claimed: r.get(3),
                active: r.get(4),
            })
            .unwrap_or_default())
    }

    pub fn watcher(&self) -> Result<Watcher> {
        Ok(Watcher::poll(Duration::from_millis(5), Duration::from_millis(250)))
    }
}
