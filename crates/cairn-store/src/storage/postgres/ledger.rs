//! The ledger's SQL on PostgreSQL. Claims take rows with `FOR UPDATE SKIP LOCKED`, so workers
//! on many hosts never wait on each other's items; failures, batches of marks and queueing are
//! one statement (one round trip) each; queue positions and fencing tokens come from one
//! sequence, so a token never repeats, not even for an id deleted and claimed again.

use postgres::Row;

use super::Engine;
use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::{ItemRow, Stored, DONE, FAILED};

const LEDGER: &str = "l";

fn item(r: &Row) -> ItemRow {
    let result: Option<Vec<u8>> = r.get(5);
    let kind: Option<i16> = r.get(8);
    ItemRow {
        id: r.get(0),
        state: i64::from(r.get::<_, i16>(1)),
        seq: r.get(2),
        attempts: r.get(3),
        worker: r.get(4),
        result: result.map(|b| Stored::new(b, i64::from(kind.unwrap_or(0)))),
        error: r.get(6),
        updated_at: r.get(7),
    }
}

/// The ids in input order, each once: a statement may not touch one row twice.
fn distinct<'a>(ids: &[&'a str]) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

fn claimed(row: Option<Row>) -> Option<(String, i64)> {
    row.map(|r| (r.get(0), r.get(1)))
}

impl Engine {
    pub fn ledger_is_done(&self, ns: &str, id: &str) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row("SELECT 1 FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 AND state = 2", &[&ns, &id])?
            .is_some())
    }

    pub fn ledger_item(&self, ns: &str, id: &str) -> Result<Option<ItemRow>> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row(
                "SELECT id, state, seq, attempts, worker, result, error, updated_at, result_kind \
                 FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2",
                &[&ns, &id],
            )?
            .map(|r| item(&r)))
    }

    pub fn ledger_mark_done(
        &self,
        ns: &str,
        id: &str,
        result: Option<(&[u8], ValueKind)>,
        now: i64,
    ) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        let (bytes, kind) = result.map_or((None, None), |(b, k)| (Some(b), Some(i16::from(k.code()))));
        Ok(self.exec(
            "INSERT INTO {s}.cairn_ledger AS l (ns, id, state, result, result_kind, updated_at) \
             VALUES ($1, $2, 2, $3, $4, $5) \
             ON CONFLICT (ns, id) DO UPDATE SET state = 2, seq = NULL, worker = NULL, holder = NULL, error = NULL, \
             result = excluded.result, result_kind = excluded.result_kind, updated_at = excluded.updated_at \
             WHERE l.state <> 2",
            &[&ns, &id, &bytes, &kind, &now],
        )? == 1)
    }

    pub fn ledger_mark_done_many(&self, ns: &str, ids: &[&str], now: i64) -> Result<u64> {
        let ids = distinct(ids);
        self.lock_keys(LEDGER, ns, &ids)?;
        self.exec(
            "INSERT INTO {s}.cairn_ledger AS l (ns, id, state, updated_at) \
             SELECT $1, t.id, 2, $3 FROM unnest($2::text[]) AS t(id) \
             ON CONFLICT (ns, id) DO UPDATE SET state = 2, seq = NULL, worker = NULL, holder = NULL, error = NULL, \
             result = NULL, result_kind = NULL, updated_at = excluded.updated_at WHERE l.state <> 2",
            &[&ns, &ids, &now],
        )
    }

    pub fn ledger_enqueue_many(&self, ns: &str, ids: &[&str], now: i64) -> Result<u64> {
        let ids = distinct(ids);
        // Queue positions are taken in input order: the subquery is sorted before the outer
        // select calls nextval row by row.
        self.exec(
            "INSERT INTO {s}.cairn_ledger (ns, id, state, seq, updated_at) \
             SELECT $1, q.id, 0, nextval('{s}.cairn_queue_seq'), $3 \
             FROM (SELECT t.id FROM unnest($2::text[]) WITH ORDINALITY AS t(id, ord) ORDER BY t.ord) q \
             ON CONFLICT (ns, id) DO NOTHING",
            &[&ns, &ids, &now],
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn ledger_claim(
        &self,
        ns: &str,
        id: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
        replace: Option<&str>,
    ) -> Result<Option<i64>> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row(
                "INSERT INTO {s}.cairn_ledger AS l (ns, id, state, seq, worker, token, holder, updated_at) \
                 VALUES ($1, $2, 1, $4, $3, nextval('{s}.cairn_queue_seq'), $6, $5) \
                 ON CONFLICT (ns, id) DO UPDATE SET state = 1, seq = excluded.seq, worker = excluded.worker, \
                 token = excluded.token, holder = excluded.holder, updated_at = excluded.updated_at \
                 WHERE l.state = 0 OR (l.state = 1 AND (l.seq <= $5 OR l.worker = $3 OR l.holder = $7)) \
                 RETURNING token",
                &[&ns, &id, &worker, &lease_until, &now, &holder, &replace],
            )?
            .map(|r| r.get(0)))
    }

    /// One statement: the claim whose lease ran out first, else the oldest pending item, each
    /// looked for among rows no other worker holds (`SKIP LOCKED`). The expired and pending
    /// choices are two CTEs (`FOR UPDATE` is not allowed in a UNION arm), fenced with
    /// MATERIALIZED so that the planner cannot fold them into the update and lock more rows
    /// than it claims; the update finds its row through the primary key.
    pub fn ledger_claim_next(
        &self,
        ns: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
    ) -> Result<Option<(String, i64)>> {
        Ok(claimed(self.row(
            "WITH expired AS MATERIALIZED ( \
               SELECT id FROM {s}.cairn_ledger WHERE ns = $1 AND state = 1 AND seq IS NOT NULL AND seq <= $4 \
               ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED), \
             pending AS MATERIALIZED ( \
               SELECT id FROM {s}.cairn_ledger WHERE ns = $1 AND state = 0 AND seq IS NOT NULL \
               ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE {s}.cairn_ledger l SET state = 1, seq = $3, worker = $2, token = nextval('{s}.cairn_queue_seq'), \
               holder = $5, \
               updated_at = $4 \
             WHERE l.ns = $1 AND l.id = (SELECT id FROM expired UNION ALL SELECT id FROM pending LIMIT 1) \
             RETURNING l.id, l.token",
            &[&ns, &worker, &lease_until, &now, &holder],
        )?))
    }

    /// Up to `n` items in one statement: expired claims first, then the oldest pending items,
    /// each set chosen among rows no other worker holds.
    pub fn ledger_claim_next_many(
        &self,
        ns: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
        n: u32,
    ) -> Result<Vec<(String, i64)>> {
        let n = i64::from(n);
        let rows = self.rows(
            "WITH expired AS MATERIALIZED ( \
               SELECT id, seq FROM {s}.cairn_ledger WHERE ns = $1 AND state = 1 AND seq IS NOT NULL AND seq <= $4 \
               ORDER BY seq LIMIT $6 FOR UPDATE SKIP LOCKED), \
             pending AS MATERIALIZED ( \
               SELECT id, seq FROM {s}.cairn_ledger WHERE ns = $1 AND state = 0 AND seq IS NOT NULL \
               ORDER BY seq LIMIT $6 FOR UPDATE SKIP LOCKED), \
             pick AS MATERIALIZED ( \
               SELECT id, row_number() OVER (ORDER BY pri, seq) AS rn \
               FROM (SELECT id, 0 AS pri, seq FROM expired UNION ALL SELECT id, 1, seq FROM pending) c \
               ORDER BY pri, seq LIMIT $6) \
             UPDATE {s}.cairn_ledger l SET state = 1, seq = $3, worker = $2, token = nextval('{s}.cairn_queue_seq'), \
               holder = $5, updated_at = $4 \
             FROM pick WHERE l.ns = $1 AND l.id = pick.id \
             RETURNING l.id, l.token, pick.rn",
            &[&ns, &worker, &lease_until, &now, &holder, &n],
        )?;
        // In queue order, whatever order the update visited the rows in.
        let mut claimed: Vec<(i64, String, i64)> =
            rows.iter().map(|r| (r.get(2), r.get(0), r.get(1))).collect();
        claimed.sort_by_key(|c| c.0);
        Ok(claimed.into_iter().map(|(_, id, token)| (id, token)).collect())
    }

    pub fn ledger_claim_held_by(
        &self,
        ns: &str,
        dead: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
    ) -> Result<Option<(String, i64)>> {
        Ok(claimed(self.row(
            "WITH pick AS MATERIALIZED ( \
               SELECT id FROM {s}.cairn_ledger WHERE ns = $1 AND state = 1 AND seq IS NOT NULL AND holder = $2 \
               ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE {s}.cairn_ledger l SET seq = $4, worker = $3, token = nextval('{s}.cairn_queue_seq'), holder = $6, \
               updated_at = $5 \
             WHERE l.ns = $1 AND l.id = (SELECT id FROM pick) AND l.state = 1 AND l.holder = $2 \
             RETURNING l.id, l.token",
            &[&ns, &dead, &worker, &lease_until, &now, &holder],
        )?))
    }

    pub fn ledger_holders(&self, ns: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            "SELECT DISTINCT holder FROM {s}.cairn_ledger \
             WHERE ns = $1 AND state = 1 AND seq IS NOT NULL AND holder IS NOT NULL",
            &[&ns],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn ledger_holder(&self, ns: &str, id: &str) -> Result<Option<String>> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row("SELECT holder FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 AND state = 1", &[&ns, &id])?
            .and_then(|r| r.get(0)))
    }

    pub fn ledger_held(&self, ns: &str, id: &str, worker: &str) -> Result<Option<(i64, i64)>> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row(
                "SELECT token, seq FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 AND state = 1 AND worker = $3",
                &[&ns, &id, &worker],
            )?
            .map(|r| (r.get(0), r.get::<_, Option<i64>>(1).unwrap_or(0))))
    }

    pub fn ledger_namespaces(&self) -> Result<Vec<String>> {
        let rows = self.rows(
            "WITH RECURSIVE n(ns) AS (SELECT min(ns) FROM {s}.cairn_ledger \
               UNION ALL SELECT (SELECT min(ns) FROM {s}.cairn_ledger WHERE ns > n.ns) FROM n WHERE ns IS NOT NULL) \
             SELECT ns FROM n WHERE ns IS NOT NULL",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn ledger_extend(
        &self,
        ns: &str,
        id: &str,
        worker: &str,
        token: i64,
        lease_until: i64,
    ) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self.exec(
            "UPDATE {s}.cairn_ledger SET seq = $5 WHERE ns = $1 AND id = $2 AND state = 1 AND worker = $3 AND token = $4",
            &[&ns, &id, &worker, &token, &lease_until],
        )? == 1)
    }

    pub fn ledger_complete(
        &self,
        ns: &str,
        id: &str,
        worker: &str,
        token: i64,
        result: Option<(&[u8], ValueKind)>,
        now: i64,
    ) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        let (bytes, kind) = result.map_or((None, None), |(b, k)| (Some(b), Some(i16::from(k.code()))));
        Ok(self.exec(
            "UPDATE {s}.cairn_ledger SET state = 2, seq = NULL, worker = NULL, holder = NULL, error = NULL, \
             result = $5, result_kind = $7, updated_at = $6 \
             WHERE ns = $1 AND id = $2 AND state = 1 AND worker = $3 AND token = $4",
            &[&ns, &id, &worker, &token, &bytes, &now, &kind],
        )? == 1)
    }

    /// One statement decides and records: one more attempt, then pending again at the back of
    /// the queue or given up at `max_attempts`, so that two hosts failing an item at once
    /// cannot both read the same attempt count.
    pub fn ledger_fail(
        &self,
        ns: &str,
        id: &str,
        claim: Option<(&str, i64)>,
        error: &str,
        max_attempts: u32,
        now: i64,
    ) -> Result<Option<i64>> {
        self.lock_key(LEDGER, ns, id)?;
        let max = i64::from(max_attempts);
        let row = match claim {
            Some((worker, token)) => self.row(
                "UPDATE {s}.cairn_ledger SET attempts = attempts + 1, \
                 state = CASE WHEN attempts + 1 >= $6::bigint THEN 3 ELSE 0 END, \
                 seq = CASE WHEN attempts + 1 >= $6::bigint THEN NULL ELSE nextval('{s}.cairn_queue_seq') END, \
                 error = $5, worker = NULL, holder = NULL, updated_at = $7 \
                 WHERE ns = $1 AND id = $2 AND state = 1 AND worker = $3 AND token = $4 RETURNING state",
                &[&ns, &id, &worker, &token, &error, &max, &now],
            )?,
            None => self.row(
                "INSERT INTO {s}.cairn_ledger AS l (ns, id, state, seq, attempts, error, updated_at) \
                 VALUES ($1, $2, CASE WHEN 1 >= $4::bigint THEN 3 ELSE 0 END, \
                   CASE WHEN 1 >= $4::bigint THEN NULL ELSE nextval('{s}.cairn_queue_seq') END, 1, $3, $5) \
                 ON CONFLICT (ns, id) DO UPDATE SET attempts = l.attempts + 1, \
                 state = CASE WHEN l.attempts + 1 >= $4::bigint THEN 3 ELSE 0 END, \
                 seq = CASE WHEN l.attempts + 1 >= $4::bigint THEN NULL ELSE nextval('{s}.cairn_queue_seq') END, \
                 error = excluded.error, worker = NULL, holder = NULL, updated_at = excluded.updated_at \
                 WHERE l.state IN (0, 1) RETURNING state",
                &[&ns, &id, &error, &max, &now],
            )?,
        };
        if let Some(r) = row {
            return Ok(Some(i64::from(r.get::<_, i16>(0))));
        }
        if claim.is_some() {
            return Ok(None); // fenced
        }
        // Done or given up already: left as it is.
        Ok(self
            .row("SELECT state FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2", &[&ns, &id])?
            .map(|r| i64::from(r.get::<_, i16>(0))))
    }

    pub fn ledger_filter_settled(&self, ns: &str, ids: &[&str]) -> Result<Vec<bool>> {
        let rows = self.rows(
            "SELECT id FROM {s}.cairn_ledger WHERE ns = $1 AND id = ANY($2::text[]) AND state IN (2, 3)",
            &[&ns, &ids],
        )?;
        let settled: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(ids.iter().map(|id| settled.contains(*id)).collect())
    }

    pub fn ledger_counts(&self, ns: &str, now: i64) -> Result<Vec<(i64, u64)>> {
        let rows = self.rows(
            "SELECT (CASE WHEN state = 1 AND seq <= $2 THEN 0 ELSE state END)::smallint AS s, count(*) \
             FROM {s}.cairn_ledger WHERE ns = $1 GROUP BY 1",
            &[&ns, &now],
        )?;
        Ok(rows
            .iter()
            .map(|r| (i64::from(r.get::<_, i16>(0)), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
            .collect())
    }

    pub fn ledger_list(&self, ns: &str, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<ItemRow>> {
        let state = state.and_then(|s| i16::try_from(s).ok());
        let rows = self.rows(
            "SELECT id, state, seq, attempts, worker, result, error, updated_at, result_kind \
             FROM {s}.cairn_ledger WHERE ns = $1 AND id > $2 AND ($3::smallint IS NULL OR state = $3) \
             ORDER BY id LIMIT $4",
            &[&ns, &after, &state, &limit],
        )?;
        Ok(rows.iter().map(item).collect())
    }

    pub fn ledger_delete(&self, ns: &str, id: &str) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self.exec("DELETE FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2", &[&ns, &id])? == 1)
    }

    pub fn ledger_clear(&self, ns: &str) -> Result<u64> {
        self.exec("DELETE FROM {s}.cairn_ledger WHERE ns = $1", &[&ns])
    }
}

// The states the statements above write as literals.
const _: () = assert!(DONE == 2 && FAILED == 3);
