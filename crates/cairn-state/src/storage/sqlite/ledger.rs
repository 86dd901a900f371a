//! The ledger's SQL. What the states mean, who may claim and when an item is given up is
//! decided in `crate::ledger`; `now` and every threshold arrive as parameters.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::Engine;
use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::states::state;
use crate::storage::{
    ClaimRow, Fenced, ItemRow, NewItem, PolicyRow, RetryRule, Stored, Takeover, CANCELLED, CLAIMED, DONE,
    FAILED, PENDING, WAITING,
};

const ITEM_COLUMNS: &str =
    "id, state, seq, attempts, worker, result, error, updated_at, result_kind, due, data, data_kind";

fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRow> {
    Ok(ItemRow {
        id: r.get(0)?,
        state: r.get(1)?,
        seq: r.get(2)?,
        attempts: r.get(3)?,
        worker: r.get(4)?,
        result: r
            .get::<_, Option<Vec<u8>>>(5)?
            .map(|b| Stored::new(b, r.get::<_, Option<i64>>(8).ok().flatten().unwrap_or(0))),
        error: r.get(6)?,
        updated_at: r.get(7)?,
        due: r.get(9)?,
        data: r
            .get::<_, Option<Vec<u8>>>(10)?
            .map(|b| Stored::new(b, r.get::<_, Option<i64>>(11).ok().flatten().unwrap_or(0))),
    })
}

/// A claim's row as `CLAIM` returns it.
fn claim_row(id: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<ClaimRow> {
    Ok(ClaimRow {
        id: id.to_owned(),
        token: r.get(0)?,
        data: r
            .get::<_, Option<Vec<u8>>>(1)?
            .map(|b| Stored::new(b, r.get::<_, Option<i64>>(2).ok().flatten().unwrap_or(0))),
        attempts: r.get(3)?,
        given_up: r.get::<_, i64>(4)? == FAILED,
    })
}

/// A claim's row and its group, as `CLAIM` returns them.
fn claim_row_group(id: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<(ClaimRow, Option<String>)> {
    Ok((claim_row(id, r)?, r.get(5)?))
}

/// A namespace's stored policy.
pub(crate) const POLICY: &str = "SELECT max_attempts, retry_delay_ms FROM cairn_ledger_ns WHERE ns = ?1";

pub(crate) const IS_DONE: &str =
    concat!("SELECT 1 FROM cairn_ledger WHERE ns = ?1 AND id = ?2 AND state = ", state!(done));
pub(crate) const STATE: &str = "SELECT state FROM cairn_ledger WHERE ns = ?1 AND id = ?2";

/// A namespace's items in key order, at most ?2 of them.
const SCAN: &str = "SELECT id, state FROM cairn_ledger WHERE ns = ?1 ORDER BY id LIMIT ?2";

/// Below this many ids a chunk is probed: reading even a small namespace whole costs more.
const SCAN_MIN_CHUNK: usize = 64;

/// Done, unless it already was: the first result is kept, and the caller learns whether this
/// call was the one that completed it.
pub(crate) const MARK_DONE: &str = concat!(
    "INSERT INTO cairn_ledger (ns, id, state, result, updated_at, result_kind) \
     VALUES (?1, ?2, ",
    state!(done),
    ", ?3, ?4, ?5) \
     ON CONFLICT (ns, id) DO UPDATE SET state = ",
    state!(done),
    ", seq = NULL, due = NULL, worker = NULL, holder = NULL, \
     error = NULL, result = excluded.result, result_kind = excluded.result_kind, updated_at = excluded.updated_at \
     WHERE cairn_ledger.state <> ",
    state!(done),
    " AND cairn_ledger.grp IS NULL"
);

/// `MARK_DONE` of an item of a group, known already.
pub(crate) const MARK_DONE_GROUPED: &str = concat!(
    "UPDATE cairn_ledger SET state = ",
    state!(done),
    ", seq = NULL, due = NULL, worker = NULL, holder = NULL, error = NULL, result = ?3, \
     updated_at = ?4, result_kind = ?5 WHERE ns = ?1 AND id = ?2 AND state <> ",
    state!(done),
    " AND grp IS NOT NULL"
);

/// A claim's completion, of an item without a group (`"IS NULL"`) or with one.
macro_rules! complete {
    ($grp:literal) => {
        concat!(
            "UPDATE cairn_ledger SET state = ",
            state!(done),
            ", seq = NULL, due = NULL, holder = NULL, error = NULL, result = ?5, \
             result_kind = ?7, updated_at = ?6 \
             WHERE ns = ?1 AND id = ?2 AND state = ",
            state!(claimed),
            " AND worker = ?3 AND token = ?4 AND grp ",
            $grp
        )
    };
}
pub(crate) const COMPLETE: &str = complete!("IS NULL");
pub(crate) const COMPLETE_GROUPED: &str = complete!("IS NOT NULL");

/// An item's group. Completions and marks write an item without a group in one statement, and
/// one of a group (which the first leaves unchanged) with a second, which then reads its group:
/// asking for the group with `RETURNING` cost every completion some 18,000 instructions
/// (callgrind: 37 M more for 2,000 claims and completions, which took 173 M), and reading it
/// after every write some 7,000, for the rare item that has one.
pub(crate) const GROUP_OF: &str = "SELECT grp FROM cairn_ledger WHERE ns = ?1 AND id = ?2";

/// Whether the row's claim is being taken over: its lease ran out, or its holder ?7 was found
/// dead. (Renewing a live claim by its own worker is not a takeover.)
macro_rules! takeover {
    () => {
        concat!(
            "(cairn_ledger.state = ",
            state!(claimed),
            " AND (cairn_ledger.seq <= ?5 OR cairn_ledger.holder = ?7))"
        )
    };
}

/// Whether that takeover is the item's last attempt: the lost claim makes the attempts
/// allowed, ?9 (the handle's), else the namespace's, else ?10.
macro_rules! last_attempt {
    () => {
        concat!(
            "(",
            takeover!(),
            " AND cairn_ledger.attempts + 1 >= coalesce(?9, \
             (SELECT p.max_attempts FROM cairn_ledger_ns p WHERE p.ns = ?1), ?10))"
        )
    };
}

/// A claim: on a new row, a pending one, or a claim whose lease has run out (or that this
/// worker already holds, or whose holder ?7 was found dead). Returns the new fencing token,
/// ?8, drawn from the namespace's counter: tokens never repeat in a namespace, not even for
/// an id deleted and claimed again (a per-row count would start over and let a claim from
/// before the delete pass for the new one). A takeover counts an attempt; at the last one the
/// item is given up instead, with the error ?11 (no error before) or ?12 (see `Takeover`).
pub(crate) const CLAIM: &str = concat!(
    "INSERT INTO cairn_ledger (ns, id, state, seq, worker, token, holder, updated_at) \
     VALUES (?1, ?2, ",
    state!(claimed),
    ", ?4, ?3, ?8, ?6, ?5) \
     ON CONFLICT (ns, id) DO UPDATE SET \
     state = CASE WHEN ",
    last_attempt!(),
    " THEN ",
    state!(failed),
    " ELSE ",
    state!(claimed),
    " END, seq = CASE WHEN ",
    last_attempt!(),
    " THEN NULL ELSE excluded.seq END, due = NULL, worker = CASE WHEN ",
    last_attempt!(),
    " THEN NULL ELSE excluded.worker END, token = CASE WHEN ",
    last_attempt!(),
    " THEN cairn_ledger.token ELSE excluded.token END, holder = CASE WHEN ",
    last_attempt!(),
    " THEN NULL ELSE excluded.holder END, attempts = cairn_ledger.attempts + CASE WHEN ",
    takeover!(),
    " THEN 1 ELSE 0 END, error = CASE WHEN ",
    last_attempt!(),
    " THEN CASE WHEN cairn_ledger.error IS NULL THEN replace(?11, '{n}', cairn_ledger.attempts + 1) \
       ELSE replace(replace(?12, '{n}', cairn_ledger.attempts + 1), '{error}', cairn_ledger.error) END \
       ELSE cairn_ledger.error END, updated_at = excluded.updated_at \
     WHERE cairn_ledger.state = ",
    state!(pending),
    " OR (cairn_ledger.state = ",
    state!(claimed),
    " AND (cairn_ledger.seq <= ?5 OR cairn_ledger.worker = ?3 \
            OR cairn_ledger.holder = ?7)) \
     RETURNING token, data, data_kind, attempts, state, grp"
);

/// The distinct processes holding claims in a namespace (expired ones included): a scan of the
/// claimed part of the queue index, which holds the holder.
pub(crate) const HOLDERS: &str = concat!(
    "SELECT DISTINCT holder FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(claimed),
    " AND due IS NULL AND seq IS NOT NULL AND holder IS NOT NULL"
);

/// The first claim of one holder, in the queue index's order (priority, then lease expiry).
pub(crate) const HELD_BY: &str = concat!(
    "SELECT id FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL AND holder = +?2 ORDER BY priority DESC, due, seq LIMIT 1"
);

// `ns = +?1`: SQLite recompiles a statement at each new binding of `ns = ?` beside a partial
// index (see storage/sqlite/cache.rs); the unary plus keeps the index and avoids that.
// A claimed row's `due` is always NULL, so the queue index, ordered by state, priority, due
// and then seq, serves the order of claims (by priority, then lease expiry) without a sort.
// (Saying `due IS NULL` makes SQLite drop `due` from the ORDER BY, and then sort for `seq`.) Claimed rows are few (one per worker), so the priorities above an expired
// claim cost little to step over.
pub(crate) const NEXT_EXPIRED: &str = concat!(
    "SELECT id FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL AND seq <= ?2 ORDER BY priority DESC, due, seq LIMIT 1"
);
/// Whether a namespace is paused at ?2: nothing is handed out while it is. Read by the claims
/// of the next item in their own transaction, beside the statement that picks the item.
pub(crate) const PAUSED: &str = "SELECT 1 FROM cairn_ledger_ns WHERE ns = ?1 AND paused_until > ?2";
/// The pending item of highest priority, then due first, then first queued, among those due
/// by ?2: the queue index's order, read from its start. Items of a group other than its head
/// are `WAITING`, another state, so the scan never steps over them however many there are;
/// only items not due yet of a higher priority are stepped over.
pub(crate) const NEXT_PENDING: &str = concat!(
    "SELECT id FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND due <= ?2 ORDER BY priority DESC, due, seq LIMIT 1"
);

/// A group's first waiting item becomes pending, unless the group has a pending or claimed
/// item (its head) already. Both lookups are seeks in the group index.
pub(crate) const GROUP_ADVANCE: &str = concat!(
    "UPDATE cairn_ledger SET state = ",
    state!(pending),
    " WHERE ns = ?1 AND id = (SELECT id FROM cairn_ledger WHERE ns = +?1 AND grp = +?2 AND state = ",
    state!(waiting),
    " ORDER BY seq LIMIT 1) AND NOT EXISTS (SELECT 1 FROM cairn_ledger WHERE ns = +?1 AND grp = +?2 AND state IN (",
    state!(pending),
    ", ",
    state!(claimed),
    "))"
);

impl Engine {
    pub fn ledger_is_done(&self, ns: &str, id: &str) -> Result<bool> {
        Ok(self.row(IS_DONE, params![ns, id], |_| Ok(()))?.is_some())
    }

    pub fn ledger_item(&self, ns: &str, id: &str) -> Result<Option<ItemRow>> {
        self.row(
            &format!("SELECT {ITEM_COLUMNS} FROM cairn_ledger WHERE ns = ?1 AND id = ?2"),
            params![ns, id],
            item,
        )
    }

    /// True if this call made the item done.
    pub fn ledger_mark_done(
        &self,
        ns: &str,
        id: &str,
        result: Option<(&[u8], ValueKind)>,
        now: i64,
    ) -> Result<bool> {
        let (bytes, kind) = result.map_or((None, None), |(b, k)| (Some(b), Some(k.code())));
        if self.exec(MARK_DONE, params![ns, id, bytes, now, kind])? == 1 {
            return Ok(true);
        }
        if self.exec(MARK_DONE_GROUPED, params![ns, id, bytes, now, kind])? == 0 {
            return Ok(false);
        }
        self.group_of_left(ns, id)?;
        Ok(true)
    }

    /// After a write that may have ended item `id`'s place at its group's head.
    fn group_of_left(&self, ns: &str, id: &str) -> Result<()> {
        let grp: Option<String> = self.row(GROUP_OF, params![ns, id], |r| r.get(0))?.flatten();
        self.group_left(ns, grp.as_deref())
    }

    /// After a write that may have ended group `grp`'s head: let the next one in.
    fn group_left(&self, ns: &str, grp: Option<&str>) -> Result<()> {
        if let Some(grp) = grp {
            // Through the contract, which the cancel of an item (a feature's write) calls too.
            crate::storage::LedgerOps::ledger_group_advance(self, ns, grp)?;
        }
        Ok(())
    }

    /// See `LedgerOps::ledger_group_advance`.
    pub fn ledger_group_advance(&self, ns: &str, grp: &str) -> Result<bool> {
        Ok(self.exec(GROUP_ADVANCE, params![ns, grp])? == 1)
    }

    /// Reserve `n` queue positions in a namespace; returns the first.
    fn ledger_reserve_seq(&self, ns: &str, n: i64) -> Result<i64> {
        let end: i64 = self
            .row(
                "INSERT INTO cairn_ledger_ns (ns, next_seq) VALUES (?1, ?2) \
                 ON CONFLICT (ns) DO UPDATE SET next_seq = next_seq + excluded.next_seq RETURNING next_seq",
                params![ns, n],
                |r| r.get(0),
            )?
            .unwrap_or(n);
        Ok(end - n + 1)
    }

    /// Queue an item unless the ledger knows it already. True if queued. An item of a group
    /// waits; the caller lets the group's first one in (`ledger_group_advance`).
    fn ledger_enqueue(&self, ns: &str, item: &NewItem<'_>, seq: i64, now: i64) -> Result<bool> {
        let (data, kind) = item.data.map_or((None, None), |(b, k)| (Some(b), Some(k.code())));
        let state = if item.grp.is_some() { WAITING } else { PENDING };
        Ok(self.exec(
            "INSERT INTO cairn_ledger (ns, id, state, seq, updated_at, due, data, data_kind, priority, grp) \
             VALUES (?1, ?2, ?8, ?3, ?4, ?5, ?6, ?7, ?9, ?10) ON CONFLICT (ns, id) DO NOTHING",
            params![ns, item.id, seq, now, item.due, data, kind, state, item.priority, item.grp],
        )? == 1)
    }

    /// Claim `id` for `worker` until `lease_until`, tied to process `holder` (or to none). A
    /// claim held by `replace` (a holder found dead) is taken over too, as `lost` says. The new
    /// fencing token, or `None`.
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
        lost: Takeover,
    ) -> Result<Option<ClaimRow>> {
        let token = self.ledger_reserve_seq(ns, 1)?;
        let claimed = self.row(
            CLAIM,
            params![
                ns,
                id,
                worker,
                lease_until,
                now,
                holder,
                replace,
                token,
                lost.max_attempts.given,
                lost.max_attempts.default,
                lost.lost_every_time,
                lost.lost_last
            ],
            |r| claim_row_group(id, r),
        )?;
        Ok(match claimed {
            Some((row, grp)) => {
                if row.given_up {
                    self.group_left(ns, grp.as_deref())?;
                }
                Some(row)
            }
            None => None,
        })
    }

    /// The processes holding claims in `ns` (expired claims included), each once.
    pub fn ledger_holders(&self, ns: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(HOLDERS).map_err(|e| self.err(e))?;
        let rows = st.query_map(params![ns], |r| r.get(0));
        rows.and_then(Iterator::collect).map_err(|e| self.err(e))
    }

    /// The oldest item `holder` holds a claim on in `ns`.
    fn ledger_held_by(&self, ns: &str, holder: &str) -> Result<Option<String>> {
        self.row(HELD_BY, params![ns, holder], |r| r.get(0))
    }

    /// The process a claim on `id` is tied to, while it is claimed.
    pub fn ledger_holder(&self, ns: &str, id: &str) -> Result<Option<String>> {
        Ok(self
            .row(
                concat!(
                    "SELECT holder FROM cairn_ledger WHERE ns = ?1 AND id = ?2 AND state = ",
                    state!(claimed)
                ),
                params![ns, id],
                |r| r.get::<_, Option<String>>(0),
            )?
            .flatten())
    }

    /// The live or lapsed claim `worker` holds on `id`: its token and lease expiry.
    pub fn ledger_held(&self, ns: &str, id: &str, worker: &str) -> Result<Option<(i64, i64)>> {
        self.row(
            concat!(
                "SELECT token, seq FROM cairn_ledger WHERE ns = ?1 AND id = ?2 AND state IN (",
                state!(claimed),
                ", ",
                state!(done),
                ") AND worker = ?3"
            ),
            params![ns, id, worker],
            |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
        )
    }

    /// The ledger namespaces that hold items, sorted.
    pub fn ledger_namespaces(&self) -> Result<Vec<String>> {
        self.strings(concat!(
            "WITH RECURSIVE ",
            skip_scan_ns!("cairn_ledger"),
            " SELECT ns FROM n WHERE ns IS NOT NULL"
        ))
    }

    /// The claim whose lease ran out first.
    fn ledger_next_expired(&self, ns: &str, now: i64) -> Result<Option<String>> {
        self.row(NEXT_EXPIRED, params![ns, now], |r| r.get(0))
    }

    /// Whether `ns` is paused at `now`.
    fn ledger_paused(&self, ns: &str, now: i64) -> Result<bool> {
        Ok(self.row(PAUSED, params![ns, now], |_| Ok(()))?.is_some())
    }

    pub fn ledger_paused_until(&self, ns: &str) -> Result<Option<i64>> {
        Ok(self
            .row("SELECT paused_until FROM cairn_ledger_ns WHERE ns = ?1", params![ns], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .flatten())
    }

    /// The queue's counter and policy stay as they are.
    pub fn ledger_set_paused(&self, ns: &str, until: Option<i64>) -> Result<()> {
        self.exec(
            "INSERT INTO cairn_ledger_ns (ns, paused_until) VALUES (?1, ?2) \
             ON CONFLICT (ns) DO UPDATE SET paused_until = excluded.paused_until",
            params![ns, until],
        )?;
        Ok(())
    }

    /// Cancel `id` unless it is done or cancelled already: out of the queue (no position, no
    /// due time), its claim's holder cleared; the worker and token stay, so the claim's
    /// fenced writes (which ask for a claimed row) fail.
    pub fn ledger_cancel(&self, ns: &str, id: &str, now: i64) -> Result<bool> {
        // A group's head cancelled lets the group's next item in, in the same transaction.
        let cancelled = self.row(
            concat!(
                "UPDATE cairn_ledger SET state = ",
                state!(cancelled),
                ", seq = NULL, due = NULL, holder = NULL, updated_at = ?3 \
                 WHERE ns = ?1 AND id = ?2 AND state IN (",
                state!(pending),
                ", ",
                state!(claimed),
                ", ",
                state!(failed),
                ", ",
                state!(waiting),
                ") RETURNING grp"
            ),
            params![ns, id, now],
            |r| r.get::<_, Option<String>>(0),
        )?;
        match cancelled {
            Some(grp) => {
                self.group_left(ns, grp.as_deref())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The pending item due first, among those due by `now`.
    fn ledger_next_pending(&self, ns: &str, now: i64) -> Result<Option<String>> {
        self.row(NEXT_PENDING, params![ns, now], |r| r.get(0))
    }

    /// Claim the next item for `worker`: the claim whose lease ran out first, else the pending
    /// item due first.
    pub fn ledger_claim_next(
        &self,
        ns: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
        lost: Takeover,
    ) -> Result<Option<ClaimRow>> {
        if self.ledger_paused(ns, now)? {
            return Ok(None);
        }
        let id = match self.ledger_next_expired(ns, now)? {
            Some(id) => id,
            None => match self.ledger_next_pending(ns, now)? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        self.ledger_claim(ns, &id, worker, lease_until, now, holder, None, lost)
    }

    /// Claim up to `n` items, one after the other, in this transaction (the write lock makes
    /// them one step for every other process). Items given up on the way are returned too, and
    /// count toward `n`, as in one statement on a server.
    #[allow(clippy::too_many_arguments)]
    pub fn ledger_claim_next_many(
        &self,
        ns: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
        n: u32,
        lost: Takeover,
    ) -> Result<Vec<ClaimRow>> {
        let mut claimed = Vec::new();
        for _ in 0..n {
            match self.ledger_claim_next(ns, worker, lease_until, now, holder, lost)? {
                Some(c) => claimed.push(c),
                None => break,
            }
        }
        Ok(claimed)
    }

    /// Take over the oldest claim of `dead` (a holder found dead) for `worker`, as `lost` says.
    #[allow(clippy::too_many_arguments)]
    pub fn ledger_claim_held_by(
        &self,
        ns: &str,
        dead: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
        lost: Takeover,
    ) -> Result<Option<ClaimRow>> {
        if self.ledger_paused(ns, now)? {
            return Ok(None);
        }
        let Some(id) = self.ledger_held_by(ns, dead)? else { return Ok(None) };
        self.ledger_claim(ns, &id, worker, lease_until, now, holder, Some(dead), lost)
    }

    /// Which of `ids` are settled (done, given up or cancelled), from one snapshot.
    pub fn ledger_filter_settled(&self, ns: &str, ids: &[&str]) -> Result<Vec<bool>> {
        // Inside a transaction the reads already share its snapshot.
        let snapshot = if self.in_transaction() { None } else { Some(self.begin_read()?) };
        let settled = match self.ledger_settled_by_scan(ns, ids)? {
            Some(settled) => settled,
            None => {
                // One statement for the whole chunk: a cache lookup per id cost as much as a probe.
                let mut st = self.conn.prepare_cached(STATE).map_err(|e| self.err(e))?;
                let mut settled = Vec::with_capacity(ids.len());
                for id in ids {
                    let state: Option<i64> =
                        st.query_row(params![ns, id], |r| r.get(0)).optional().map_err(|e| self.err(e))?;
                    settled.push(matches!(state, Some(DONE | FAILED | CANCELLED)));
                }
                settled
            }
        };
        if let Some(tx) = snapshot {
            tx.commit()?;
        }
        Ok(settled)
    }

    /// A namespace no larger than the chunk is read whole, in key order, and the chunk's ids
    /// looked up in memory: a row read in order costs a fraction of a probe from the root of
    /// the B-tree (measured with callgrind: 10,000 ids against 10,000 items, 60 M instructions
    /// probing, 17 M reading). That is the case of a re-run over the list it recorded. A larger
    /// namespace stops the read after as many rows as the chunk has ids, is remembered as
    /// large, and is probed, now and from then on by this connection. `None`: probe.
    fn ledger_settled_by_scan(&self, ns: &str, ids: &[&str]) -> Result<Option<Vec<bool>>> {
        if ids.len() < SCAN_MIN_CHUNK || self.large_ledgers.borrow().iter().any(|n| n == ns) {
            return Ok(None);
        }
        let mut found: HashMap<&str, bool> = ids.iter().map(|id| (*id, false)).collect();
        let limit = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let mut st = self.conn.prepare_cached(SCAN).map_err(|e| self.err(e))?;
        let mut rows = st.query(params![ns, limit.saturating_add(1)]).map_err(|e| self.err(e))?;
        let mut read = 0;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            read += 1;
            if read > limit {
                self.large_ledgers.borrow_mut().push(ns.to_owned());
                return Ok(None);
            }
            let state: i64 = row.get(1).map_err(|e| self.err(e))?;
            if matches!(state, DONE | FAILED | CANCELLED) {
                let id = row.get_ref(0).map_err(|e| self.err(e))?.as_str().map_err(|e| self.err(e.into()))?;
                if let Some(settled) = found.get_mut(id) {
                    *settled = true;
                }
            }
        }
        Ok(Some(ids.iter().map(|id| found.get(id).copied().unwrap_or(false)).collect()))
    }

    /// Mark every id done; how many were not done before.
    pub fn ledger_mark_done_many(&self, ns: &str, ids: &[&str], now: i64) -> Result<u64> {
        let mut n = 0;
        for id in ids {
            n += u64::from(self.ledger_mark_done(ns, id, None, now)?);
        }
        Ok(n)
    }

    /// Queue the items the ledger does not know yet, in order; how many.
    pub fn ledger_enqueue_many(&self, ns: &str, items: &[NewItem<'_>], now: i64) -> Result<u64> {
        let first = self.ledger_reserve_seq(ns, i64::try_from(items.len()).unwrap_or(i64::MAX))?;
        let mut n = 0;
        let mut groups: Vec<&str> = Vec::new();
        for (seq, item) in (first..).zip(items) {
            let queued = self.ledger_enqueue(ns, item, seq, now)?;
            n += u64::from(queued);
            if let (true, Some(grp)) = (queued, item.grp) {
                if !groups.contains(&grp) {
                    groups.push(grp);
                }
            }
        }
        for grp in groups {
            self.ledger_group_advance(ns, grp)?;
        }
        Ok(n)
    }

    /// Given-up items pending again, attempts and error reset, due `now`, at the back of the
    /// queue: those of `ids` (cancelled ones too), or every given-up one with `None`.
    pub fn ledger_retry(&self, ns: &str, ids: Option<&[&str]>, now: i64) -> Result<u64> {
        let failed: Vec<String> = match ids {
            Some(ids) => ids.iter().map(|id| (*id).to_owned()).collect(),
            None => {
                let mut st = self
                    .conn
                    .prepare_cached(concat!(
                        "SELECT id FROM cairn_ledger WHERE ns = ?1 AND state = ",
                        state!(failed),
                        " ORDER BY updated_at, id"
                    ))
                    .map_err(|e| self.err(e))?;
                let rows = st.query_map(params![ns], |r| r.get(0));
                rows.and_then(Iterator::collect).map_err(|e| self.err(e))?
            }
        };
        let mut n = 0;
        for id in &failed {
            let seq = self.ledger_reserve_seq(ns, 1)?;
            // An item of a group re-enters it at the back, behind its head if it has one.
            let retried = self.row(
                concat!(
                    "UPDATE cairn_ledger SET state = CASE WHEN grp IS NULL THEN ",
                    state!(pending),
                    " ELSE ",
                    state!(waiting),
                    " END, seq = ?3, due = ?4, attempts = 0, error = NULL, worker = NULL, \
                     holder = NULL, updated_at = ?4 WHERE ns = ?1 AND id = ?2 AND state IN (",
                    state!(failed),
                    ", ",
                    state!(cancelled),
                    ") RETURNING grp"
                ),
                params![ns, id, seq, now],
                |r| r.get::<_, Option<String>>(0),
            )?;
            if let Some(grp) = retried {
                n += 1;
                self.group_left(ns, grp.as_deref())?;
            }
        }
        Ok(n)
    }

    /// Delete up to `limit` items of `ns` done before `before`; how many.
    pub fn ledger_prune_done(&self, ns: &str, before: i64, limit: i64) -> Result<u64> {
        Ok(self.exec(
            concat!(
                "DELETE FROM cairn_ledger WHERE ns = ?1 AND id IN \
                 (SELECT id FROM cairn_ledger WHERE ns = ?1 AND state = ",
                state!(done),
                " AND updated_at < ?2 LIMIT ?3)"
            ),
            params![ns, before, limit],
        )? as u64)
    }

    /// Record a failure of `id`: one more attempt, and the item pending again at the back of
    /// the queue, or given up once it has had `max_attempts`. With a claim (`worker`, `token`)
    /// only that claim may fail it. The state it is left in; a done or given-up item failed
    /// without a claim is left as it is. `None` if the claim no longer holds (fenced).
    pub fn ledger_fail(
        &self,
        ns: &str,
        id: &str,
        claim: Option<(&str, i64)>,
        error: &str,
        retry: RetryRule,
        now: i64,
    ) -> Result<Option<i64>> {
        let row = self.ledger_item(ns, id)?;
        if let Some(row) = &row {
            if matches!(row.state, DONE | FAILED | CANCELLED) && claim.is_none() {
                return Ok(Some(row.state));
            }
        }
        let attempts = row.as_ref().map_or(0, |r| r.attempts) + 1;
        let policy = self.ledger_policy(ns)?;
        let (state, seq, due) = if attempts >= retry.max_attempts.resolve(policy.max_attempts) {
            (FAILED, None, None)
        } else {
            let base = retry.base_ms.resolve(policy.retry_delay_ms);
            (
                PENDING,
                Some(self.ledger_reserve_seq(ns, 1)?),
                Some(now.saturating_add(retry.delay_ms(base, attempts))),
            )
        };
        Ok(self.ledger_fail_row(ns, id, claim, error, (state, seq, due), now)?.then_some(state))
    }

    /// Move a live claim's lease. False if the claim is no longer this one (fenced).
    pub fn ledger_extend(
        &self,
        ns: &str,
        id: &str,
        worker: &str,
        token: i64,
        lease_until: i64,
    ) -> Result<bool> {
        Ok(self.exec(
            concat!(
                "UPDATE cairn_ledger SET seq = ?5 WHERE ns = ?1 AND id = ?2 AND state = ",
                state!(claimed),
                " AND worker = ?3 AND token = ?4"
            ),
            params![ns, id, worker, token, lease_until],
        )? == 1)
    }

    /// Give a claim's item back: pending, due now, at the back of the queue, with the attempts
    /// it had. False if the claim is no longer this one (fenced).
    pub fn ledger_release(&self, ns: &str, id: &str, worker: &str, token: i64, now: i64) -> Result<bool> {
        self.ledger_snooze(ns, id, worker, token, now, now)
    }

    /// Give a claim's item back, due at `due`, at the back of the queue, with the attempts it
    /// had. False if the claim is no longer this one (fenced).
    pub fn ledger_snooze(
        &self,
        ns: &str,
        id: &str,
        worker: &str,
        token: i64,
        due: i64,
        now: i64,
    ) -> Result<bool> {
        let seq = self.ledger_reserve_seq(ns, 1)?;
        Ok(self.exec(
            concat!(
                "UPDATE cairn_ledger SET state = ",
                state!(pending),
                ", seq = ?5, due = ?7, worker = NULL, holder = NULL, updated_at = ?6 \
                 WHERE ns = ?1 AND id = ?2 AND state = ",
                state!(claimed),
                " AND worker = ?3 AND token = ?4"
            ),
            params![ns, id, worker, token, seq, now, due],
        )? == 1)
    }

    /// Complete a claim. False if the claim is no longer this one (fenced).
    pub fn ledger_complete(
        &self,
        ns: &str,
        id: &str,
        worker: &str,
        token: i64,
        result: Option<(&[u8], ValueKind)>,
        now: i64,
    ) -> Result<bool> {
        let (bytes, kind) = result.map_or((None, None), |(b, k)| (Some(b), Some(k.code())));
        // The worker and token stay on the done row: the same claim completing it again (after
        // a commit whose outcome it could not see) finds it done by itself.
        let params = params![ns, id, worker, token, bytes, now, kind];
        if self.exec(COMPLETE, params)? == 1 {
            return Ok(true);
        }
        if self.exec(COMPLETE_GROUPED, params)? == 1 {
            self.group_of_left(ns, id)?;
            return Ok(true);
        }
        self.ledger_done_by(ns, id, worker, token)
    }

    /// Complete claims one by one: inside the store's transaction each is a cached statement
    /// on a local file, which costs less than building one statement for the batch.
    pub fn ledger_complete_many(&self, ns: &str, claims: &[Fenced<'_>], now: i64) -> Result<Vec<bool>> {
        claims.iter().map(|c| self.ledger_complete(ns, c.id, c.worker, c.token, None, now)).collect()
    }

    fn ledger_done_by(&self, ns: &str, id: &str, worker: &str, token: i64) -> Result<bool> {
        Ok(self
            .row(
                concat!(
                    "SELECT 1 FROM cairn_ledger WHERE ns = ?1 AND id = ?2 AND state = ",
                    state!(done),
                    " AND worker = ?3 AND token = ?4"
                ),
                params![ns, id, worker, token],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// Record a failure: `state` PENDING (again, at queue position `seq`) or FAILED (gave up).
    /// With a claim (`worker`, `token`), only that claim may fail the item.
    fn ledger_fail_row(
        &self,
        ns: &str,
        id: &str,
        claim: Option<(&str, i64)>,
        error: &str,
        (state, seq, due): (i64, Option<i64>, Option<i64>),
        now: i64,
    ) -> Result<bool> {
        let failed = match claim {
            Some((worker, token)) => self.row(
                concat!(
                    "UPDATE cairn_ledger SET state = ?5, seq = ?6, due = ?9, attempts = attempts + 1, error = ?7, \
                     worker = NULL, holder = NULL, updated_at = ?8 \
                     WHERE ns = ?1 AND id = ?2 AND state = ",
                    state!(claimed),
                    " AND worker = ?3 AND token = ?4 RETURNING grp"
                ),
                params![ns, id, worker, token, state, seq, error, now, due],
                |r| r.get::<_, Option<String>>(0),
            )?,
            // An item waiting behind its group's head keeps waiting when it is to be retried.
            None => self.row(
                concat!(
                    "INSERT INTO cairn_ledger (ns, id, state, seq, due, attempts, error, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?7, 1, ?5, ?6) \
                     ON CONFLICT (ns, id) DO UPDATE SET state = CASE WHEN cairn_ledger.state = ",
                    state!(waiting),
                    " AND excluded.state = ",
                    state!(pending),
                    " THEN ",
                    state!(waiting),
                    " ELSE excluded.state END, seq = excluded.seq, \
                     due = excluded.due, attempts = cairn_ledger.attempts + 1, error = excluded.error, \
                     worker = NULL, holder = NULL, updated_at = excluded.updated_at \
                     WHERE cairn_ledger.state IN (",
                    state!(pending),
                    ", ",
                    state!(claimed),
                    ", ",
                    state!(waiting),
                    ") RETURNING grp"
                ),
                params![ns, id, state, seq, error, now, due],
                |r| r.get::<_, Option<String>>(0),
            )?,
        };
        match failed {
            Some(grp) => {
                if state == FAILED {
                    self.group_left(ns, grp.as_deref())?;
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Items by stored state, counting a claim whose lease ran out as pending.
    /// One pass over the namespace, each state counted by a filter: a `GROUP BY` of the states
    /// sorted every item in a temporary B-tree first, 2.5 times as long with a million items.
    /// The pending count is what is left (queued, waiting behind a group, claims run out).
    pub fn ledger_counts(&self, ns: &str, now: i64) -> Result<Vec<(i64, u64)>> {
        let counts = self.row(LEDGER_COUNTS, params![ns, now], |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
            Ok([n(0)?, n(1)?, n(2)?, n(3)?, n(4)?])
        })?;
        let [claimed, done, failed, cancelled, all] = counts.unwrap_or_default();
        let pending = all.saturating_sub(claimed + done + failed + cancelled);
        Ok(vec![
            (CLAIMED, claimed),
            (DONE, done),
            (FAILED, failed),
            (CANCELLED, cancelled),
            (PENDING, pending),
        ])
    }

    /// A page of items in id order after `after`, optionally of one stored state.
    pub fn ledger_list(&self, ns: &str, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<ItemRow>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM cairn_ledger WHERE ns = ?1 AND id > ?2 AND (?3 IS NULL OR state = ?3) \
             ORDER BY id LIMIT ?4"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map(params![ns, after, state, limit], item);
        rows.and_then(Iterator::collect).map_err(|e| self.err(e))
    }

    pub fn ledger_delete(&self, ns: &str, id: &str) -> Result<bool> {
        let deleted = self.row(
            "DELETE FROM cairn_ledger WHERE ns = ?1 AND id = ?2 RETURNING grp",
            params![ns, id],
            |r| r.get::<_, Option<String>>(0),
        )?;
        match deleted {
            Some(grp) => {
                self.group_left(ns, grp.as_deref())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The namespace's counter stays: the tokens of claims made before must never come back.
    /// So does its policy.
    pub fn ledger_clear(&self, ns: &str) -> Result<u64> {
        Ok(self.exec("DELETE FROM cairn_ledger WHERE ns = ?1", params![ns])? as u64)
    }

    pub fn ledger_policy(&self, ns: &str) -> Result<PolicyRow> {
        Ok(self
            .row(POLICY, params![ns], |r| {
                Ok(PolicyRow { max_attempts: r.get(0)?, retry_delay_ms: r.get(1)? })
            })?
            .unwrap_or_default())
    }

    /// The queue's counter stays as it is.
    pub fn ledger_set_policy(&self, ns: &str, policy: PolicyRow) -> Result<()> {
        self.exec(
            "INSERT INTO cairn_ledger_ns (ns, max_attempts, retry_delay_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (ns) DO UPDATE SET max_attempts = excluded.max_attempts, \
             retry_delay_ms = excluded.retry_delay_ms",
            params![ns, policy.max_attempts, policy.retry_delay_ms],
        )?;
        Ok(())
    }
}

/// A namespace's items by state in one pass (see `ledger_counts`): claimed under a live
/// lease, done, failed, cancelled, and all of them.
const LEDGER_COUNTS: &str = concat!(
    "SELECT count(*) FILTER (WHERE state = ",
    state!(claimed),
    " AND seq > ?2), count(*) FILTER (WHERE state = ",
    state!(done),
    "), count(*) FILTER (WHERE state = ",
    state!(failed),
    "), count(*) FILTER (WHERE state = ",
    state!(cancelled),
    "), count(*) FROM cairn_ledger WHERE ns = ?1"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Setting;
    use crate::Store;

    const LOST: Takeover =
        Takeover { max_attempts: Setting { given: None, default: 3 }, lost_every_time: "", lost_last: "" };

    /// The ledger's per-item statements must compile once whatever the bindings; see the
    /// test of the same name in cache.rs for why that needs watching.
    #[test]
    fn hot_statements_compile_once_whatever_the_bindings() -> Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        e.begin_immediate()?;
        for i in 0..50i64 {
            let (ns, id) = (format!("ns{}", i % 3), format!("id{i}"));
            e.ledger_enqueue(
                &ns,
                &NewItem { id: &id, data: None, due: i, priority: i % 3, grp: None },
                i,
                i,
            )?;
            e.ledger_next_expired(&ns, 1_000 + i)?;
            e.ledger_next_pending(&ns, 1_000 + i)?;
            e.ledger_paused(&ns, 1_000 + i)?;
            e.ledger_claim(&ns, &id, "w", 2_000 + i, 1_000 + i, Some("b/1/2"), None, LOST)?;
            e.ledger_holders(&ns)?;
            e.ledger_held_by(&ns, "b/1/2")?;
            e.ledger_next_expired(&ns, 5_000 + i)?; // finds the expired claims
            e.ledger_mark_done(&ns, &id, None, i)?;
            e.ledger_complete(&ns, &id, "w", i, None, i)?;
            e.ledger_is_done(&ns, &id)?;
            e.ledger_filter_settled(&ns, &[id.as_str()])?;
            e.ledger_policy(&ns)?;
            e.ledger_group_advance(&ns, &format!("g{}", i % 5))?;
        }
        e.commit()?;
        super::super::assert_compiled_once(
            e,
            &[
                IS_DONE,
                STATE,
                MARK_DONE,
                MARK_DONE_GROUPED,
                CLAIM,
                COMPLETE,
                COMPLETE_GROUPED,
                GROUP_OF,
                NEXT_EXPIRED,
                NEXT_PENDING,
                HOLDERS,
                HELD_BY,
                POLICY,
                GROUP_ADVANCE,
                PAUSED,
            ],
        )
    }

    /// The claim's lookups read the queue index in its own order (priority first), and a
    /// group's lookups seek the group index: no statement sorts (a temp B-tree) or scans the
    /// table, whatever the priorities and groups stored.
    #[test]
    fn queue_lookups_read_their_index_in_order_without_sorting() -> Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        e.begin_immediate()?;
        for i in 0..200i64 {
            let (id, grp) = (format!("id{i}"), format!("g{}", i % 7));
            let grp = (i % 2 == 0).then_some(grp.as_str());
            e.ledger_enqueue_many("q", &[NewItem { id: &id, data: None, due: i, priority: i % 5, grp }], i)?;
        }
        e.exec("ANALYZE", [])?;
        e.commit()?;
        let plans = [
            (NEXT_PENDING, "cairn_ledger_queue"),
            (NEXT_EXPIRED, "cairn_ledger_queue"),
            (HELD_BY, "cairn_ledger_queue"),
            (GROUP_ADVANCE, "cairn_ledger_group"),
        ];
        for (sql, index) in plans {
            let mut st = e.conn().prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(|err| e.err(err))?;
            let n = st.parameter_count();
            let binds: Vec<rusqlite::types::Value> =
                (0..n).map(|i| if i == 0 { "q".to_owned().into() } else { 100i64.into() }).collect();
            let plan: Vec<String> = st
                .query_map(rusqlite::params_from_iter(binds), |r| r.get::<_, String>(3))
                .and_then(Iterator::collect)
                .map_err(|err| e.err(err))?;
            let plan = plan.join("\n");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n{plan}");
            assert!(plan.contains(index), "{sql}\n{plan}");
            assert!(
                !plan.contains("SCAN cairn_ledger\n") && !plan.ends_with("SCAN cairn_ledger"),
                "{sql}\n{plan}"
            );
        }
        Ok(())
    }

    /// Reading a small namespace whole must answer exactly as probing does, whatever the
    /// states, duplicates and unknown ids; a namespace larger than the chunk is probed, and
    /// remembered as large.
    #[test]
    fn filter_reads_a_small_namespace_whole_and_probes_a_large_one_with_the_same_answers() -> Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        e.begin_immediate()?;
        // 100 items: done, failed, pending and claimed in turn; a neighbouring namespace done.
        for i in 0..100i64 {
            let id = format!("id{i:03}");
            e.ledger_enqueue("q", &NewItem { id: &id, data: None, due: 0, priority: 0, grp: None }, i, 0)?;
            match i % 4 {
                0 => drop(e.ledger_mark_done("q", &id, None, 0)?),
                1 => drop(e.ledger_fail_row("q", &id, None, "x", (FAILED, None, None), 0)?),
                2 => {}
                _ => drop(e.ledger_claim("q", &id, "w", 9, 0, None, None, LOST)?),
            }
            e.ledger_mark_done("other", &id, None, 0)?;
        }
        e.commit()?;
        let chunk: Vec<String> = (0..150).map(|i| format!("id{:03}", (i * 7) % 120)).collect();
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let want: Vec<bool> =
            chunk.iter().map(|id| id[2..].parse::<i64>().is_ok_and(|i| i < 100 && i % 4 < 2)).collect();
        assert_eq!(e.ledger_filter_settled("q", &chunk)?, want, "read whole");
        assert!(e.large_ledgers.borrow().is_empty());
        assert_eq!(e.ledger_filter_settled("q", &chunk[..80])?, want[..80], "probed");
        assert_eq!(*e.large_ledgers.borrow(), ["q"], "100 items are more than a chunk of 80");
        assert_eq!(e.ledger_filter_settled("q", &chunk)?, want, "probed from then on");
        assert_eq!(e.ledger_filter_settled("empty", &chunk)?, vec![false; chunk.len()]);
        Ok(())
    }
}
