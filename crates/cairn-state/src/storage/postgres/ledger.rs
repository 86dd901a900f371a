//! The ledger's SQL on PostgreSQL. Claims take rows with `FOR UPDATE SKIP LOCKED`, so workers
//! on many hosts never wait on each other's items; failures, batches of marks and queueing are
//! one statement (one round trip) each; queue positions and fencing tokens come from one
//! sequence, so a token never repeats, not even for an id deleted and claimed again.

use postgres::Row;

use super::Engine;
use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::states::state;
use crate::storage::{
    ClaimRow, Fenced, ItemRow, NewItem, PolicyRow, RetryRule, Stored, Takeover, CANCELLED, CLAIMED, DONE,
    FAILED, PENDING, WAITING,
};

const LEDGER: &str = "l";

/// Whether namespace `$1` is not paused at `now` (a parameter): the claims of the next item
/// hand nothing out while it is. Uncorrelated, so the server runs it once per statement.
macro_rules! not_paused {
    ($now:literal) => {
        concat!(
            " AND NOT EXISTS (SELECT FROM {s}.cairn_ledger_ns p WHERE p.ns = $1 AND p.paused_until > ",
            $now,
            ")"
        )
    };
}
/// The advisory locks of groups: taken by every write that lets a group's next item in, so
/// that each such write sees (in its next statement, under READ COMMITTED) what the one before
/// it committed, and a group is never left with waiting items and no head.
const GROUP: &str = "g";

/// A group's first waiting item becomes pending, unless the group has a pending or claimed
/// item already; both lookups are seeks in the group index.
const GROUP_ADVANCE: &str = concat!(
    "UPDATE {s}.cairn_ledger l SET state = ",
    state!(pending),
    " FROM (SELECT id FROM {s}.cairn_ledger WHERE ns = $1 AND grp = $2 AND state = ",
    state!(waiting),
    " ORDER BY seq LIMIT 1) w WHERE l.ns = $1 AND l.id = w.id AND l.state = ",
    state!(waiting),
    " AND NOT EXISTS (SELECT FROM {s}.cairn_ledger a WHERE a.ns = $1 AND a.grp = $2 AND a.state IN (",
    state!(pending),
    ", ",
    state!(claimed),
    "))"
);

/// The attempts after which an item is given up, as the handle asks for it: its own value
/// (parameter `$given`), else the namespace's stored one, else `$default`. `$1` is the
/// namespace.
macro_rules! max_attempts {
    ($given:literal, $default:literal) => {
        concat!(
            "coalesce(",
            $given,
            "::bigint, (SELECT p.max_attempts FROM {s}.cairn_ledger_ns p WHERE p.ns = $1), ",
            $default,
            "::bigint)"
        )
    };
}

/// Whether the claim of a row `l` that a claim statement takes is being taken over (its lease
/// ran out, or its holder died): in the statements that choose claimed rows for that alone
/// (`claim_next`'s expired claims, a dead holder's), any claimed row.
macro_rules! taken_over {
    () => {
        concat!("l.state = ", state!(claimed))
    };
}

/// In the CTE that chooses a claimed row to take over: whether that is the item's last attempt
/// (see [`max_attempts!`]), as its column `last`. Decided there, once per row chosen, rather
/// than in each `CASE` of the update: every subquery in a statement is set up at each execution
/// whether it runs or not, and six of them made a claim of a pending item measurably slower.
macro_rules! last_column {
    ($given:literal, $default:literal) => {
        concat!("attempts + 1 >= ", max_attempts!($given, $default), " AS last")
    };
}

/// Whether a claim of one id (`ledger_claim`) takes over the row's claim: its lease ran out
/// by `$5`, or its holder `$7` died. Renewing a live claim by its own worker is no takeover.
macro_rules! claim_taken_over {
    () => {
        concat!("(l.state = ", state!(claimed), " AND (l.seq <= $5 OR l.holder = $7))")
    };
}

/// The `SET` list of a claim of row `l`: claimed by worker `$worker` until `$lease`, tied to
/// `$holder`, with token `$token`; a takeover (`$takeover`) counts an attempt; where it is the
/// last (`$last`), the item is given up instead, its error made from the templates `$every`
/// (no error before) or `$before` (see `Takeover`).
macro_rules! claim_set {
    ($takeover:expr, $last:expr, $worker:literal, $lease:literal, $holder:literal, $token:literal, $now:literal, $every:literal, $before:literal) => {
        concat!(
            "state = CASE WHEN ",
            $last,
            " THEN ",
            state!(failed),
            " ELSE ",
            state!(claimed),
            " END, \
             seq = CASE WHEN ",
            $last,
            " THEN NULL ELSE ",
            $lease,
            "::bigint END, due = NULL, \
             worker = CASE WHEN ",
            $last,
            " THEN NULL ELSE ",
            $worker,
            "::text END, \
             token = CASE WHEN ",
            $last,
            " THEN l.token ELSE ",
            $token,
            " END, \
             holder = CASE WHEN ",
            $last,
            " THEN NULL ELSE ",
            $holder,
            "::text END, \
             attempts = l.attempts + CASE WHEN ",
            $takeover,
            " THEN 1 ELSE 0 END, \
             error = CASE WHEN ",
            $last,
            " THEN CASE WHEN l.error IS NULL \
                 THEN replace(",
            $every,
            "::text, '{n}', (l.attempts + 1)::text) \
                 ELSE replace(replace(",
            $before,
            "::text, '{n}', (l.attempts + 1)::text), '{error}', l.error) END \
               ELSE l.error END, \
             updated_at = ",
            $now
        )
    };
}

/// The base of the backoff in ms, as a float, chosen as [`max_attempts!`] chooses.
macro_rules! retry_base {
    ($given:literal, $default:literal) => {
        concat!(
            "coalesce(",
            $given,
            "::float8, (SELECT p.retry_delay_ms FROM {s}.cairn_ledger_ns p WHERE p.ns = $1)::float8, ",
            $default,
            "::float8)"
        )
    };
}

fn stored(bytes: Option<Vec<u8>>, kind: Option<i16>) -> Option<Stored> {
    bytes.map(|b| Stored::new(b, i64::from(kind.unwrap_or(0))))
}

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
        due: r.get(9),
        data: stored(r.get(10), r.get(11)),
    }
}

/// The ids in input order, each once: a statement may not touch one row twice.
fn distinct<'a>(ids: &[&'a str]) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// A claim as `RETURNING id, token, data, data_kind, attempts, state` gives it.
/// The groups of the rows given up (column `i`, the group, after `state` at 5): their next
/// items are due in.
fn given_up_groups(rows: &[Row], i: usize) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for r in rows {
        if i64::from(r.get::<_, i16>(5)) == FAILED {
            if let Some(g) = r.get::<_, Option<String>>(i) {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
    }
    groups
}

/// Each group named once, in order.
fn groups_of(rows: &[Row], i: usize) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for g in rows.iter().filter_map(|r| r.get::<_, Option<String>>(i)) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    groups
}

fn claimed(r: &Row) -> ClaimRow {
    ClaimRow {
        id: r.get(0),
        token: r.get(1),
        data: stored(r.get(2), r.get(3)),
        attempts: r.get(4),
        given_up: i64::from(r.get::<_, i16>(5)) == FAILED,
    }
}

impl Engine {
    pub fn ledger_is_done(&self, ns: &str, id: &str) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row(
                concat!(
                    "SELECT 1 FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 AND state = ",
                    state!(done)
                ),
                &[&ns, &id],
            )?
            .is_some())
    }

    pub fn ledger_item(&self, ns: &str, id: &str) -> Result<Option<ItemRow>> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row(
                "SELECT id, state, seq, attempts, worker, result, error, updated_at, result_kind, due, data, data_kind \
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
        let rows = self.rows(
            concat!(
                "INSERT INTO {s}.cairn_ledger AS l (ns, id, state, result, result_kind, updated_at) \
                 VALUES ($1, $2, ",
                state!(done),
                ", $3, $4, $5) \
                 ON CONFLICT (ns, id) DO UPDATE SET state = ",
                state!(done),
                ", seq = NULL, due = NULL, worker = NULL, holder = NULL, \
                 error = NULL, result = excluded.result, result_kind = excluded.result_kind, \
                 updated_at = excluded.updated_at WHERE l.state <> ",
                state!(done),
                " RETURNING grp"
            ),
            &[&ns, &id, &bytes, &kind, &now],
        )?;
        self.groups_advance(ns, &groups_of(&rows, 0))?;
        Ok(rows.len() == 1)
    }

    pub fn ledger_mark_done_many(&self, ns: &str, ids: &[&str], now: i64) -> Result<u64> {
        let ids = distinct(ids);
        self.lock_keys(LEDGER, ns, &ids)?;
        let rows = self.rows(
            concat!(
                "INSERT INTO {s}.cairn_ledger AS l (ns, id, state, updated_at) \
                 SELECT $1, t.id, ",
                state!(done),
                ", $3 FROM unnest($2::text[]) AS t(id) \
                 ON CONFLICT (ns, id) DO UPDATE SET state = ",
                state!(done),
                ", seq = NULL, due = NULL, worker = NULL, holder = NULL, \
                 error = NULL, result = NULL, result_kind = NULL, updated_at = excluded.updated_at WHERE l.state <> ",
                state!(done),
                " RETURNING grp"
            ),
            &[&ns, &ids, &now],
        )?;
        self.groups_advance(ns, &groups_of(&rows, 0))?;
        Ok(rows.len() as u64)
    }

    pub fn ledger_enqueue_many(&self, ns: &str, items: &[NewItem<'_>], now: i64) -> Result<u64> {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        let items: Vec<&NewItem<'_>> = items.iter().filter(|i| seen.insert(i.id)).collect();
        let ids: Vec<&str> = items.iter().map(|i| i.id).collect();
        let data: Vec<Option<&[u8]>> = items.iter().map(|i| i.data.map(|(b, _)| b)).collect();
        let kinds: Vec<Option<i16>> =
            items.iter().map(|i| i.data.map(|(_, k)| i16::from(k.code()))).collect();
        let dues: Vec<i64> = items.iter().map(|i| i.due).collect();
        let priorities: Vec<i64> = items.iter().map(|i| i.priority).collect();
        let groups: Vec<Option<&str>> = items.iter().map(|i| i.grp).collect();
        // One statement for the chunk. Queue positions are taken in input order: the subquery
        // is sorted before the outer select calls nextval row by row. Items of a group wait;
        // the group's first is let in below.
        let rows = self.rows(
            concat!(
                "INSERT INTO {s}.cairn_ledger (ns, id, state, seq, due, data, data_kind, updated_at, priority, grp) \
                 SELECT $1, q.id, CASE WHEN q.grp IS NULL THEN ",
                state!(pending),
                " ELSE ",
                state!(waiting),
                " END, nextval('{s}.cairn_queue_seq'), q.due, q.data, q.kind, $6, q.priority, q.grp \
                 FROM (SELECT * FROM unnest($2::text[], $3::bigint[], $4::bytea[], $5::smallint[], \
                       $7::bigint[], $8::text[]) \
                       WITH ORDINALITY AS t(id, due, data, kind, priority, grp, ord) ORDER BY t.ord) q \
                 ON CONFLICT (ns, id) DO NOTHING RETURNING grp"
            ),
            &[&ns, &ids, &dues, &data, &kinds, &now, &priorities, &groups],
        )?;
        self.groups_advance(ns, &groups_of(&rows, 0))?;
        Ok(rows.len() as u64)
    }

    /// See `LedgerOps::ledger_group_advance`.
    pub fn ledger_group_advance(&self, ns: &str, grp: &str) -> Result<bool> {
        Ok(self.groups_advance(ns, &[grp.to_owned()])? > 0)
    }

    /// Let each group's next item in where it has no head, under the groups' locks: in the
    /// caller's transaction, else in one of its own (the write that ended the head has
    /// committed by then; a crash between the two leaves the group's next item waiting until
    /// the next write that lets the group's items in: an enqueue into it, say).
    fn groups_advance(&self, ns: &str, groups: &[String]) -> Result<u64> {
        if groups.is_empty() {
            return Ok(0);
        }
        let own = !self.in_transaction();
        if own {
            self.begin_immediate()?;
        }
        let advanced = (|| {
            let keys: Vec<&str> = groups.iter().map(String::as_str).collect();
            self.lock_keys(GROUP, ns, &keys)?;
            let mut n = 0;
            for grp in groups {
                n += self.exec(GROUP_ADVANCE, &[&ns, grp])?;
            }
            Ok(n)
        })();
        if own {
            match &advanced {
                Ok(_) => self.commit()?,
                Err(_) => self.rollback_quietly(),
            }
        }
        advanced
    }

    /// A takeover (the claim's lease ran out, or its holder `$7` died) counts an attempt, and
    /// at the last one gives the item up instead (see `Takeover`).
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
        self.lock_key(LEDGER, ns, id)?;
        let (given, default) = (lost.max_attempts.given, lost.max_attempts.default);
        let row = self
            .row(
                concat!(
                    "WITH lim AS MATERIALIZED (SELECT ",
                    max_attempts!("$8", "$9"),
                    " AS n) \
                     INSERT INTO {s}.cairn_ledger AS l (ns, id, state, seq, worker, token, holder, updated_at) \
                     VALUES ($1, $2, ",
                    state!(claimed),
                    ", $4, $3, nextval('{s}.cairn_queue_seq'), $6, $5) \
                     ON CONFLICT (ns, id) DO UPDATE SET ",
                    claim_set!(
                        claim_taken_over!(),
                        concat!("(", claim_taken_over!(), " AND l.attempts + 1 >= (SELECT n FROM lim))"),
                        "$3",
                        "$4",
                        "$6",
                        "excluded.token",
                        "$5",
                        "$10",
                        "$11"
                    ),
                    " WHERE l.state = ",
                    state!(pending),
                    " OR (l.state = ",
                    state!(claimed),
                    " AND (l.seq <= $5 OR l.worker = $3 OR l.holder = $7)) \
                     RETURNING id, token, data, data_kind, attempts, state, grp"
                ),
                &[
                    &ns,
                    &id,
                    &worker,
                    &lease_until,
                    &now,
                    &holder,
                    &replace,
                    &given,
                    &default,
                    &lost.lost_every_time,
                    &lost.lost_last,
                ],
            )?;
        self.claimed_one(ns, row)
    }

    /// A claim statement's row; a given-up item's group lets its next item in.
    fn claimed_one(&self, ns: &str, row: Option<Row>) -> Result<Option<ClaimRow>> {
        let Some(row) = row else { return Ok(None) };
        self.groups_advance(ns, &given_up_groups(std::slice::from_ref(&row), 6))?;
        Ok(Some(claimed(&row)))
    }

    /// One statement: the claim whose lease ran out first, else the oldest pending item, each
    /// looked for among rows no other worker holds (`SKIP LOCKED`). The expired and pending
    /// choices are two CTEs (`FOR UPDATE` is not allowed in a UNION arm), fenced with
    /// MATERIALIZED so that the planner cannot fold them into the update and lock more rows
    /// than it claims; the update finds its row through the primary key. An expired claim at
    /// its last attempt is given up instead (its CTE says so: `last`).
    pub fn ledger_claim_next(
        &self,
        ns: &str,
        worker: &str,
        lease_until: i64,
        now: i64,
        holder: Option<&str>,
        lost: Takeover,
    ) -> Result<Option<ClaimRow>> {
        let (given, default) = (lost.max_attempts.given, lost.max_attempts.default);
        let row = self.row(
            concat!(
                "WITH expired AS MATERIALIZED ( \
                       SELECT id, ",
                last_column!("$6", "$7"),
                " FROM {s}.cairn_ledger \
                       WHERE ns = $1 AND state = ",
                state!(claimed),
                " AND due IS NULL AND seq IS NOT NULL AND seq <= $4 \
                       ORDER BY priority DESC, due, seq LIMIT 1 FOR UPDATE SKIP LOCKED), \
                     pending AS MATERIALIZED ( \
                       SELECT id FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
                state!(pending),
                " AND seq IS NOT NULL AND due <= $4 \
                       ORDER BY priority DESC, due, seq LIMIT 1 FOR UPDATE SKIP LOCKED), \
                     pick AS (SELECT id, last FROM expired UNION ALL SELECT id, false FROM pending LIMIT 1) \
                     UPDATE {s}.cairn_ledger l SET ",
                claim_set!(
                    taken_over!(),
                    "pick.last",
                    "$2",
                    "$3",
                    "$5",
                    "nextval('{s}.cairn_queue_seq')",
                    "$4",
                    "$8",
                    "$9"
                ),
                " FROM pick WHERE l.ns = $1 AND l.id = pick.id",
                not_paused!("$4"),
                " RETURNING l.id, l.token, l.data, l.data_kind, l.attempts, l.state, l.grp"
            ),
            &[
                &ns,
                &worker,
                &lease_until,
                &now,
                &holder,
                &given,
                &default,
                &lost.lost_every_time,
                &lost.lost_last,
            ],
        )?;
        self.claimed_one(ns, row)
    }

    /// Up to `n` items in one statement: expired claims first, then the oldest pending items,
    /// each set chosen among rows no other worker holds. Expired claims at their last attempt
    /// are given up instead, and returned as such.
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
        let n = i64::from(n);
        let (given, default) = (lost.max_attempts.given, lost.max_attempts.default);
        let rows = self.rows(
            concat!(
                "WITH expired AS MATERIALIZED ( \
                   SELECT id, priority, 0::bigint AS due, seq, ",
                last_column!("$7", "$8"),
                " FROM {s}.cairn_ledger \
                   WHERE ns = $1 AND state = ",
                state!(claimed),
                " AND due IS NULL AND seq IS NOT NULL AND seq <= $4 \
                   ORDER BY priority DESC, due, seq LIMIT $6 FOR UPDATE SKIP LOCKED), \
                 pending AS MATERIALIZED ( \
                   SELECT id, priority, due, seq FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
                state!(pending),
                " AND seq IS NOT NULL AND due <= $4 \
                   ORDER BY priority DESC, due, seq LIMIT $6 FOR UPDATE SKIP LOCKED), \
                 pick AS MATERIALIZED ( \
                   SELECT id, last, row_number() OVER (ORDER BY pri, priority DESC, due, seq) AS rn \
                   FROM (SELECT id, 0 AS pri, priority, due, seq, last FROM expired \
                         UNION ALL SELECT id, 1, priority, due, seq, false FROM pending) c \
                   ORDER BY pri, priority DESC, due, seq LIMIT $6) \
                 UPDATE {s}.cairn_ledger l SET ",
                claim_set!(
                    taken_over!(),
                    "pick.last",
                    "$2",
                    "$3",
                    "$5",
                    "nextval('{s}.cairn_queue_seq')",
                    "$4",
                    "$9",
                    "$10"
                ),
                " FROM pick WHERE l.ns = $1 AND l.id = pick.id",
                not_paused!("$4"),
                " RETURNING l.id, l.token, l.data, l.data_kind, l.attempts, l.state, pick.rn, l.grp"
            ),
            &[
                &ns,
                &worker,
                &lease_until,
                &now,
                &holder,
                &n,
                &given,
                &default,
                &lost.lost_every_time,
                &lost.lost_last,
            ],
        )?;
        self.groups_advance(ns, &given_up_groups(&rows, 7))?;
        // In queue order, whatever order the update visited the rows in.
        let mut claimed: Vec<(i64, ClaimRow)> = rows.iter().map(|r| (r.get(6), claimed(r))).collect();
        claimed.sort_by_key(|c| c.0);
        Ok(claimed.into_iter().map(|(_, c)| c).collect())
    }

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
        let (given, default) = (lost.max_attempts.given, lost.max_attempts.default);
        let row = self.row(
            concat!(
                "WITH pick AS MATERIALIZED ( \
                   SELECT id, ",
                last_column!("$7", "$8"),
                " FROM {s}.cairn_ledger \
                   WHERE ns = $1 AND state = ",
                state!(claimed),
                " AND due IS NULL AND seq IS NOT NULL AND holder = $2 \
                   ORDER BY priority DESC, due, seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 UPDATE {s}.cairn_ledger l SET ",
                claim_set!(
                    taken_over!(),
                    "pick.last",
                    "$3",
                    "$4",
                    "$6",
                    "nextval('{s}.cairn_queue_seq')",
                    "$5",
                    "$9",
                    "$10"
                ),
                " FROM pick WHERE l.ns = $1 AND l.id = pick.id AND l.state = ",
                state!(claimed),
                " AND l.holder = $2",
                not_paused!("$5"),
                " RETURNING l.id, l.token, l.data, l.data_kind, l.attempts, l.state, l.grp"
            ),
            &[
                &ns,
                &dead,
                &worker,
                &lease_until,
                &now,
                &holder,
                &given,
                &default,
                &lost.lost_every_time,
                &lost.lost_last,
            ],
        )?;
        self.claimed_one(ns, row)
    }

    pub fn ledger_holders(&self, ns: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            concat!(
                "SELECT DISTINCT holder FROM {s}.cairn_ledger WHERE ns = $1 AND state = ",
                state!(claimed),
                " AND due IS NULL AND seq IS NOT NULL AND holder IS NOT NULL"
            ),
            &[&ns],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn ledger_holder(&self, ns: &str, id: &str) -> Result<Option<String>> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row(
                concat!(
                    "SELECT holder FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 AND state = ",
                    state!(claimed)
                ),
                &[&ns, &id],
            )?
            .and_then(|r| r.get(0)))
    }

    pub fn ledger_held(&self, ns: &str, id: &str, worker: &str) -> Result<Option<(i64, i64)>> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self
            .row(
                concat!(
                    "SELECT token, seq FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 AND state IN (",
                    state!(claimed),
                    ", ",
                    state!(done),
                    ") AND worker = $3"
                ),
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
        Ok(self.exec_idempotent(
            concat!(
                "WITH bound AS MATERIALIZED (SELECT set_config('lock_timeout', $6, true)) \
                 UPDATE {s}.cairn_ledger SET seq = $5 \
                 WHERE ns = $1 AND id = $2 AND state = ",
                state!(claimed),
                " AND worker = $3 AND token = $4 AND EXISTS (SELECT FROM bound)"
            ),
            &[&ns, &id, &worker, &token, &lease_until, &self.lock_timeout()],
        )? == 1)
    }

    /// Pending again, due now, at the back of the queue, with the attempts it had. Not sent
    /// again on a new connection: a second run after a lost commit would find the item no
    /// longer claimed, and say fenced.
    pub fn ledger_release(&self, ns: &str, id: &str, worker: &str, token: i64, now: i64) -> Result<bool> {
        self.ledger_snooze(ns, id, worker, token, now, now)
    }

    /// Pending again, due at `due`, at the back of the queue, with the attempts it had; not
    /// sent again on a new connection, as for a release.
    pub fn ledger_snooze(
        &self,
        ns: &str,
        id: &str,
        worker: &str,
        token: i64,
        due: i64,
        now: i64,
    ) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        Ok(self.exec(
            concat!(
                "WITH bound AS MATERIALIZED (SELECT set_config('lock_timeout', $6, true)) \
                 UPDATE {s}.cairn_ledger SET state = ",
                state!(pending),
                ", seq = nextval('{s}.cairn_queue_seq'), due = $7, worker = NULL, holder = NULL, \
                 updated_at = $5 \
                 WHERE ns = $1 AND id = $2 AND state = ",
                state!(claimed),
                " AND worker = $3 AND token = $4 AND EXISTS (SELECT FROM bound)"
            ),
            &[&ns, &id, &worker, &token, &now, &self.lock_timeout(), &due],
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
        // The worker and token stay on the done row: the same claim completing it again, after
        // a commit whose outcome was lost with the connection, finds it done by itself.
        // Outside a transaction this runs on its own (see `Ledger::complete`): it bounds its
        // own wait for the row, and is safe to send again on a new connection.
        // An item without a group: the statement as it was before groups (the one of a group
        // below, set up at every execution, made every completion some 14% slower).
        let params: [&(dyn postgres::types::ToSql + Sync); 8] =
            [&ns, &id, &worker, &token, &bytes, &now, &kind, &self.lock_timeout()];
        let plain = self.exec_idempotent(
            concat!(
                "WITH bound AS MATERIALIZED (SELECT set_config('lock_timeout', $8, true)) \
                 UPDATE {s}.cairn_ledger SET state = ",
                state!(done),
                ", seq = NULL, due = NULL, holder = NULL, error = NULL, \
                 result = $5, result_kind = $7, updated_at = $6 \
                 WHERE ns = $1 AND id = $2 AND state = ",
                state!(claimed),
                " AND worker = $3 AND token = $4 AND grp IS NULL AND EXISTS (SELECT FROM bound)"
            ),
            &params,
        )?;
        if plain == 1 {
            return Ok(true);
        }
        // An item of a group was its group's head (claimed): the same statement lets the
        // group's first waiting item in, saving the transaction of `groups_advance` (four
        // round trips). Only where it lets none in (the group had none waiting as far as this
        // statement saw, or the one it chose went meanwhile) does that transaction follow, to
        // see what committed since (an enqueue into the group, a deleted waiting item).
        let rows = self.rows_idempotent(
            concat!(
                "WITH bound AS MATERIALIZED (SELECT set_config('lock_timeout', $8, true)), \
                 done AS (UPDATE {s}.cairn_ledger SET state = ",
                state!(done),
                ", seq = NULL, due = NULL, holder = NULL, error = NULL, \
                 result = $5, result_kind = $7, updated_at = $6 \
                 WHERE ns = $1 AND id = $2 AND state = ",
                state!(claimed),
                " AND worker = $3 AND token = $4 AND grp IS NOT NULL AND EXISTS (SELECT FROM bound) \
                 RETURNING grp), \
                 next AS MATERIALIZED (SELECT w.id FROM {s}.cairn_ledger w \
                   WHERE w.ns = $1 AND w.grp = (SELECT grp FROM done) AND w.state = ",
                state!(waiting),
                " ORDER BY w.seq LIMIT 1 FOR UPDATE), \
                 promoted AS (UPDATE {s}.cairn_ledger l SET state = ",
                state!(pending),
                " FROM next WHERE l.ns = $1 AND l.id = next.id RETURNING l.id) \
                 SELECT d.grp, (SELECT count(*) FROM promoted) FROM done d"
            ),
            &params,
        )?;
        let done = rows.len() == 1;
        let unmoved: Vec<Row> = rows.into_iter().filter(|r| r.get::<_, i64>(1) == 0).collect();
        self.groups_advance(ns, &groups_of(&unmoved, 0))?;
        Ok(done
            || self
                .row(
                    concat!(
                        "SELECT 1 FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 AND state = ",
                        state!(done),
                        " AND worker = $3 AND token = $4"
                    ),
                    &[&ns, &id, &worker, &token],
                )?
                .is_some())
    }

    /// One statement for the batch, each row fenced by its own worker and token. Its rows are
    /// locked in id order first, so two batches that overlap (a claim taken over after its
    /// lease lapsed) wait for each other rather than deadlock. Outside a transaction it runs
    /// on its own, bounds its own lock wait, and is safe to send again on a new connection.
    pub fn ledger_complete_many(&self, ns: &str, claims: &[Fenced<'_>], now: i64) -> Result<Vec<bool>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = claims.iter().map(|c| c.id).collect();
        self.lock_keys(LEDGER, ns, &distinct(&ids))?;
        let workers: Vec<&str> = claims.iter().map(|c| c.worker).collect();
        let tokens: Vec<i64> = claims.iter().map(|c| c.token).collect();
        let params: [&(dyn postgres::types::ToSql + Sync); 6] =
            [&ns, &ids, &workers, &tokens, &now, &self.lock_timeout()];
        let completed = self.rows_idempotent(
                concat!(
                    "WITH bound AS MATERIALIZED (SELECT set_config('lock_timeout', $6, true)), \
                     c AS (SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(id, worker, token)), \
                     mine AS MATERIALIZED (SELECT l.id FROM {s}.cairn_ledger l JOIN c ON l.id = c.id \
                       WHERE l.ns = $1 AND l.state = ",
                    state!(claimed),
                    " AND l.worker = c.worker AND l.token = c.token \
                       AND EXISTS (SELECT FROM bound) ORDER BY l.id FOR UPDATE OF l) \
                     UPDATE {s}.cairn_ledger l SET state = ",
                    state!(done),
                    ", seq = NULL, due = NULL, holder = NULL, error = NULL, \
                     result = NULL, result_kind = NULL, updated_at = $5 \
                     FROM mine WHERE l.ns = $1 AND l.id = mine.id RETURNING l.id, l.token, l.grp"
                ),
                &params,
            )?;
        self.groups_advance(ns, &groups_of(&completed, 2))?;
        let mut done: std::collections::HashSet<(String, i64)> =
            completed.iter().map(|r| (r.get(0), r.get(1))).collect();
        let key = |c: &Fenced<'_>| (c.id.to_owned(), c.token);
        if claims.iter().any(|c| !done.contains(&key(c))) {
            // Completed by the same claims already (a retry after a commit whose outcome was
            // lost with the connection): done by them, so done.
            let again = self.rows(
                concat!(
                    "SELECT l.id, l.token FROM {s}.cairn_ledger l \
                     JOIN unnest($2::text[], $3::text[], $4::bigint[]) AS c(id, worker, token) ON l.id = c.id \
                     WHERE l.ns = $1 AND l.state = ",
                    state!(done),
                    " AND l.worker = c.worker AND l.token = c.token"
                ),
                &[&ns, &ids, &workers, &tokens],
            )?;
            done.extend(again.iter().map(|r| (r.get(0), r.get(1))));
        }
        // Keyed by id and token alone: a token names one claim of an item, and the statements
        // above checked its worker.
        Ok(claims.iter().map(|c| done.contains(&key(c))).collect())
    }

    /// One statement decides and records: one more attempt, then pending again at the back of
    /// the queue or given up at `max_attempts`, so that two hosts failing an item at once
    /// cannot both read the same attempt count. The namespace's policy is read in the same
    /// statement.
    pub fn ledger_fail(
        &self,
        ns: &str,
        id: &str,
        claim: Option<(&str, i64)>,
        error: &str,
        retry: RetryRule,
        now: i64,
    ) -> Result<Option<i64>> {
        self.lock_key(LEDGER, ns, id)?;
        let (max, max_default) = (retry.max_attempts.given, retry.max_attempts.default);
        let base = retry.base_ms.given.map(|b| b as f64);
        let base_default = retry.base_ms.default as f64;
        let (cap, jitter) = (retry.cap_ms as f64, retry.jitter);
        // The backoff after the failure making `attempts + 1` in all: base × 2^attempts (the old
        // count), at most cap, scaled by the jitter; the same arithmetic as RetryRule::delay_ms.
        let row = match claim {
            // Fenced, and outside a transaction run on its own: it bounds its own lock wait.
            Some((worker, token)) => self.row(
                concat!(
                    "WITH bound AS MATERIALIZED (SELECT set_config('lock_timeout', $11, true)), \
                     pol AS MATERIALIZED (SELECT ",
                    max_attempts!("$6", "$12"),
                    " AS max_n, ",
                    retry_base!("$8", "$13"),
                    " AS base_ms) \
                     UPDATE {s}.cairn_ledger l SET attempts = l.attempts + 1, \
                     state = CASE WHEN l.attempts + 1 >= pol.max_n THEN ",
                    state!(failed),
                    " ELSE ",
                    state!(pending),
                    " END, \
                     seq = CASE WHEN l.attempts + 1 >= pol.max_n THEN NULL ELSE nextval('{s}.cairn_queue_seq') END, \
                     due = CASE WHEN l.attempts + 1 >= pol.max_n THEN NULL ELSE $7::bigint + \
                       (least($9::float8, pol.base_ms * power(2::float8, least(l.attempts, 62))) * $10::float8)::bigint END, \
                     error = $5, worker = NULL, holder = NULL, updated_at = $7 \
                     FROM pol \
                     WHERE l.ns = $1 AND l.id = $2 AND l.state = ",
                    state!(claimed),
                    " AND l.worker = $3 AND l.token = $4 AND EXISTS (SELECT FROM bound) \
                     RETURNING l.state, l.grp"
                ),
                &[
                    &ns,
                    &id,
                    &worker,
                    &token,
                    &error,
                    &max,
                    &now,
                    &base,
                    &cap,
                    &jitter,
                    &self.lock_timeout(),
                    &max_default,
                    &base_default,
                ],
            )?,
            None => self.row(
                concat!(
                    "INSERT INTO {s}.cairn_ledger AS l (ns, id, state, seq, due, attempts, error, updated_at) \
                     VALUES ($1, $2, CASE WHEN 1 >= ",
                    max_attempts!("$4", "$9"),
                    " THEN ",
                    state!(failed),
                    " ELSE ",
                    state!(pending),
                    " END, \
                       CASE WHEN 1 >= ",
                    max_attempts!("$4", "$9"),
                    " THEN NULL ELSE nextval('{s}.cairn_queue_seq') END, \
                       CASE WHEN 1 >= ",
                    max_attempts!("$4", "$9"),
                    " THEN NULL ELSE $5::bigint + (least($7::float8, ",
                    retry_base!("$6", "$10"),
                    ") * $8::float8)::bigint END, \
                       1, $3, $5) \
                     ON CONFLICT (ns, id) DO UPDATE SET attempts = l.attempts + 1, \
                     state = CASE WHEN l.attempts + 1 >= ",
                    max_attempts!("$4", "$9"),
                    " THEN ",
                    state!(failed),
                    " WHEN l.state = ",
                    state!(waiting),
                    " THEN ",
                    state!(waiting),
                    " ELSE ",
                    state!(pending),
                    " END, \
                     seq = CASE WHEN l.attempts + 1 >= ",
                    max_attempts!("$4", "$9"),
                    " THEN NULL ELSE nextval('{s}.cairn_queue_seq') END, \
                     due = CASE WHEN l.attempts + 1 >= ",
                    max_attempts!("$4", "$9"),
                    " THEN NULL ELSE $5::bigint + \
                       (least($7::float8, ",
                    retry_base!("$6", "$10"),
                    " * power(2::float8, least(l.attempts, 62))) * $8::float8)::bigint END, \
                     error = excluded.error, worker = NULL, holder = NULL, updated_at = excluded.updated_at \
                     WHERE l.state IN (",
                    state!(pending),
                    ", ",
                    state!(claimed),
                    ", ",
                    state!(waiting),
                    ") RETURNING state, grp"
                ),
                &[&ns, &id, &error, &max, &now, &base, &cap, &jitter, &max_default, &base_default],
            )?,
        };
        if let Some(r) = row {
            let state = i64::from(r.get::<_, i16>(0));
            if state == FAILED {
                self.groups_advance(ns, &groups_of(std::slice::from_ref(&r), 1))?;
            }
            // Waiting behind its group's first is pending to every reader.
            return Ok(Some(if state == WAITING { PENDING } else { state }));
        }
        if claim.is_some() {
            return Ok(None); // fenced
        }
        // Done or given up already: left as it is.
        Ok(self
            .row("SELECT state FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2", &[&ns, &id])?
            .map(|r| i64::from(r.get::<_, i16>(0))))
    }

    pub fn ledger_retry(&self, ns: &str, ids: Option<&[&str]>, now: i64) -> Result<u64> {
        let rows = match ids {
            Some(ids) => {
                let ids = distinct(ids);
                self.lock_keys(LEDGER, ns, &ids)?;
                self.rows(
                    concat!(
                        "UPDATE {s}.cairn_ledger SET state = CASE WHEN grp IS NULL THEN ",
                        state!(pending),
                        " ELSE ",
                        state!(waiting),
                        " END, seq = nextval('{s}.cairn_queue_seq'), due = $3, attempts = 0, \
                         error = NULL, worker = NULL, holder = NULL, updated_at = $3 \
                         WHERE ns = $1 AND id = ANY($2::text[]) AND state IN (",
                        state!(failed),
                        ", ",
                        state!(cancelled),
                        ") RETURNING grp"
                    ),
                    &[&ns, &ids, &now],
                )
            }
            None => self.lock_namespace(LEDGER, ns).and_then(|()| {
                self.rows(
                    concat!(
                        "UPDATE {s}.cairn_ledger SET state = CASE WHEN grp IS NULL THEN ",
                        state!(pending),
                        " ELSE ",
                        state!(waiting),
                        " END, seq = nextval('{s}.cairn_queue_seq'), due = $2, attempts = 0, \
                         error = NULL, worker = NULL, holder = NULL, updated_at = $2 WHERE ns = $1 AND state = ",
                        state!(failed),
                        " RETURNING grp"
                    ),
                    &[&ns, &now],
                )
            }),
        }?;
        // A retried item of a group re-enters it at the back, behind its head if it has one.
        self.groups_advance(ns, &groups_of(&rows, 0))?;
        Ok(rows.len() as u64)
    }

    pub fn ledger_prune_done(&self, ns: &str, before: i64, limit: i64) -> Result<u64> {
        self.exec(
            concat!(
                "DELETE FROM {s}.cairn_ledger l USING (SELECT id FROM {s}.cairn_ledger \
                   WHERE ns = $1 AND state = ",
                state!(done),
                " AND updated_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED) d \
                 WHERE l.ns = $1 AND l.id = d.id"
            ),
            &[&ns, &before, &limit],
        )
    }

    pub fn ledger_filter_settled(&self, ns: &str, ids: &[&str]) -> Result<Vec<bool>> {
        let rows = self.rows(
            concat!(
                "SELECT id FROM {s}.cairn_ledger WHERE ns = $1 AND id = ANY($2::text[]) AND state IN (",
                state!(done),
                ", ",
                state!(failed),
                ", ",
                state!(cancelled),
                ")"
            ),
            &[&ns, &ids],
        )?;
        let settled: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(ids.iter().map(|id| settled.contains(*id)).collect())
    }

    /// One pass over the namespace, each state counted by a filter, as on a file (no
    /// aggregate by a computed state); the pending count is what is left.
    pub fn ledger_counts(&self, ns: &str, now: i64) -> Result<Vec<(i64, u64)>> {
        let rows = self.rows(
            concat!(
                "SELECT count(*) FILTER (WHERE state = ",
                state!(claimed),
                " AND seq > $2), count(*) FILTER (WHERE state = ",
                state!(done),
                "), count(*) FILTER (WHERE state = ",
                state!(failed),
                "), count(*) FILTER (WHERE state = ",
                state!(cancelled),
                "), count(*) FROM {s}.cairn_ledger WHERE ns = $1"
            ),
            &[&ns, &now],
        )?;
        let n = |i: usize| rows.first().map_or(0, |r| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0));
        let (claimed, done, failed, cancelled) = (n(0), n(1), n(2), n(3));
        let pending = n(4).saturating_sub(claimed + done + failed + cancelled);
        Ok(vec![
            (CLAIMED, claimed),
            (DONE, done),
            (FAILED, failed),
            (CANCELLED, cancelled),
            (PENDING, pending),
        ])
    }

    pub fn ledger_list(&self, ns: &str, state: Option<i64>, after: &str, limit: i64) -> Result<Vec<ItemRow>> {
        let state = state.and_then(|s| i16::try_from(s).ok());
        let rows = self.rows(
            "SELECT id, state, seq, attempts, worker, result, error, updated_at, result_kind, due, data, data_kind \
             FROM {s}.cairn_ledger WHERE ns = $1 AND id > $2 AND ($3::smallint IS NULL OR state = $3) \
             ORDER BY id LIMIT $4",
            &[&ns, &after, &state, &limit],
        )?;
        Ok(rows.iter().map(item).collect())
    }

    pub fn ledger_delete(&self, ns: &str, id: &str) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        let rows =
            self.rows("DELETE FROM {s}.cairn_ledger WHERE ns = $1 AND id = $2 RETURNING grp", &[&ns, &id])?;
        self.groups_advance(ns, &groups_of(&rows, 0))?;
        Ok(rows.len() == 1)
    }

    /// The namespace's policy stays.
    pub fn ledger_clear(&self, ns: &str) -> Result<u64> {
        self.lock_namespace(LEDGER, ns)?;
        self.exec("DELETE FROM {s}.cairn_ledger WHERE ns = $1", &[&ns])
    }

    /// Out of the queue, its holder cleared; worker and token stay, and the claim's fenced
    /// writes (which ask for a claimed row) fail.
    pub fn ledger_cancel(&self, ns: &str, id: &str, now: i64) -> Result<bool> {
        self.lock_key(LEDGER, ns, id)?;
        let rows = self.rows(
            concat!(
                "UPDATE {s}.cairn_ledger SET state = ",
                state!(cancelled),
                ", seq = NULL, due = NULL, holder = NULL, updated_at = $3 \
                 WHERE ns = $1 AND id = $2 AND state IN (",
                state!(pending),
                ", ",
                state!(claimed),
                ", ",
                state!(failed),
                ", ",
                state!(waiting),
                ") RETURNING grp"
            ),
            &[&ns, &id, &now],
        )?;
        // A group's head cancelled lets the group's next item in.
        self.groups_advance(ns, &groups_of(&rows, 0))?;
        Ok(rows.len() == 1)
    }

    pub fn ledger_paused_until(&self, ns: &str) -> Result<Option<i64>> {
        Ok(self
            .row("SELECT paused_until FROM {s}.cairn_ledger_ns WHERE ns = $1", &[&ns])?
            .and_then(|r| r.get::<_, Option<i64>>(0)))
    }

    /// The policy stays as it is.
    pub fn ledger_set_paused(&self, ns: &str, until: Option<i64>) -> Result<()> {
        self.exec(
            "INSERT INTO {s}.cairn_ledger_ns (ns, paused_until) VALUES ($1, $2) \
             ON CONFLICT (ns) DO UPDATE SET paused_until = excluded.paused_until",
            &[&ns, &until],
        )?;
        Ok(())
    }

    pub fn ledger_policy(&self, ns: &str) -> Result<PolicyRow> {
        Ok(self
            .row("SELECT max_attempts, retry_delay_ms FROM {s}.cairn_ledger_ns WHERE ns = $1", &[&ns])?
            .map(|r| PolicyRow { max_attempts: r.get(0), retry_delay_ms: r.get(1) })
            .unwrap_or_default())
    }

    pub fn ledger_set_policy(&self, ns: &str, policy: PolicyRow) -> Result<()> {
        self.exec(
            "INSERT INTO {s}.cairn_ledger_ns (ns, max_attempts, retry_delay_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (ns) DO UPDATE SET max_attempts = excluded.max_attempts, \
             retry_delay_ms = excluded.retry_delay_ms",
            &[&ns, &policy.max_attempts, &policy.retry_delay_ms],
        )?;
        Ok(())
    }
}
