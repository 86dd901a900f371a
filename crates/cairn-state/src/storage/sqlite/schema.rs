//! cairn's own schema, as steps that the store hands to the public migration runner on
//! `PRAGMA user_version`.
//!
//! Append new steps; never edit a released one. Users' own migration scopes in the same file
//! are versioned in `cairn_migrations`, never in `user_version`, so the two cannot collide.

use crate::codec::ValueKind;

/// Version 1: the cache, its per-namespace sizes and settings, fill markers for
/// compute-once, and the version table of users' migration scopes.
const V1: &str = r#"
PRAGMA application_id = 1667330670;

CREATE TABLE cairn_cache (
    ns         TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    expires_at INTEGER,            -- Unix ms; NULL: never
    touched    INTEGER,            -- recency rank in bounded namespaces; NULL elsewhere
    PRIMARY KEY (ns, key)
);
-- Partial indexes: rows without a TTL, and rows of unbounded namespaces, cost nothing here.
CREATE INDEX cairn_cache_expiry  ON cairn_cache (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX cairn_cache_recency ON cairn_cache (ns, touched) WHERE touched IS NOT NULL;

CREATE TABLE cairn_cache_ns (
    ns          TEXT PRIMARY KEY,
    entries     INTEGER NOT NULL DEFAULT 0,  -- kept by the storage layer while the namespace
    bytes       INTEGER NOT NULL DEFAULT 0,  -- is bounded; counted on demand otherwise
    max_entries INTEGER,
    max_bytes   INTEGER,
    lru         INTEGER NOT NULL DEFAULT 0,
    hits        INTEGER NOT NULL DEFAULT 0,
    misses      INTEGER NOT NULL DEFAULT 0,
    evictions   INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL DEFAULT 0  -- the last recency rank handed out
) WITHOUT ROWID;

CREATE TABLE cairn_cache_fill (
    ns         TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;

CREATE TABLE cairn_migrations (
    scope   TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 2: the ledger of processed items, checkpoints and named locks.
const V2: &str = r#"
-- state: 0 pending (queued, or waiting for a retry), 1 claimed, 2 done, 3 failed (gave up).
-- seq: the queue position of a pending row, the lease expiry (Unix ms) of a claimed one,
-- NULL otherwise, so that the index below holds only the work still to hand out.
CREATE TABLE cairn_ledger (
    ns         TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    state      INTEGER NOT NULL,
    seq        INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 0,
    worker     TEXT,
    token      INTEGER NOT NULL DEFAULT 0,   -- fencing: bumped by every claim
    result     BLOB,
    error      TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (ns, id)
) WITHOUT ROWID;
CREATE INDEX cairn_ledger_queue ON cairn_ledger (ns, state, seq) WHERE seq IS NOT NULL;

CREATE TABLE cairn_ledger_ns (
    ns       TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE cairn_checkpoint (
    job        TEXT    PRIMARY KEY,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cairn_lock (
    name        TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    boot_id     TEXT    NOT NULL,   -- the holder's machine and boot; '' if unknown
    pid         INTEGER NOT NULL,
    pid_start   INTEGER NOT NULL,   -- the holder's start time, against pid reuse; 0 if unknown
    expires_at  INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 3: a claim names the process it is tied to, so that a claim whose process died is
/// taken over at once on the same host instead of after its whole lease.
const V3: &str = r#"
-- holder: `boot/pid/start` of the process whose death frees the claim; NULL: only the lease.
-- The queue index carries it, so that finding the processes that hold claims reads the index
-- alone, and a claim or completion (which rewrites the row's index entry anyway) writes no
-- second index.
ALTER TABLE cairn_ledger ADD COLUMN holder TEXT;
DROP INDEX cairn_ledger_queue;
CREATE INDEX cairn_ledger_queue ON cairn_ledger (ns, state, seq, holder) WHERE seq IS NOT NULL;
"#;

/// Version 4: every stored value keeps its kind (bytes, text, int, float, JSON; see
/// `codec::ValueKind`), so that Rust, the CLI and Python read it back as the type it was
/// written as.
const V4: &str = r#"
ALTER TABLE cairn_cache ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cairn_checkpoint ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cairn_ledger ADD COLUMN result_kind INTEGER;
"#;

/// Values written before version 4 carry no kind: each gets the one it most likely has
/// (`ValueKind::guess`: what `incr` wrote reads as an integer, other UTF-8 as text).
fn v4_guess_kinds(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(V4)?;
    for (select, update) in [
        ("SELECT rowid, value FROM cairn_cache", "UPDATE cairn_cache SET kind = ?2 WHERE rowid = ?1"),
        ("SELECT job, value FROM cairn_checkpoint", "UPDATE cairn_checkpoint SET kind = ?2 WHERE job = ?1"),
        (
            "SELECT ns, id, result FROM cairn_ledger WHERE result IS NOT NULL",
            "UPDATE cairn_ledger SET result_kind = ?3 WHERE ns = ?1 AND id = ?2",
        ),
    ] {
        guess_kinds(conn, select, update)?;
    }
    Ok(())
}

/// For each row of `select` (its key columns, then the value), run `update` with the same
/// key columns and the guessed kind.
///
/// The scan and the updates share a table: each update moves the scan's cursor, which SQLite
/// puts back by key. In a damaged file whose B-tree is out of order that can land before rows
/// already seen, and the scan would never end (a fuzzed file did so). So it visits at most as
/// many rows as the table counts before it starts, and calls the file corrupt past that.
fn guess_kinds(conn: &rusqlite::Connection, select: &str, update: &str) -> rusqlite::Result<()> {
    use rusqlite::types::{Value, ValueRef};
    let count_sql = format!("SELECT count(*) FROM ({select})");
    let rows_before: i64 = conn.query_row(&count_sql, [], |r| r.get(0))?;
    let mut read = conn.prepare(select)?;
    let mut write = conn.prepare(update)?;
    let keys = read.column_count() - 1;
    let mut rows = read.query([])?;
    let mut visited = 0i64;
    while let Some(r) = rows.next()? {
        visited += 1;
        if visited > rows_before {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(format!("a scan of {rows_before} rows did not end while giving old values their kind")),
            ));
        }
        let kind = match r.get_ref(keys)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => ValueKind::guess(b),
            _ => ValueKind::Bytes,
        };
        let mut params: Vec<Value> = (0..keys).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
        params.push(Value::Integer(i64::from(kind.code())));
        write.execute(rusqlite::params_from_iter(params))?;
    }
    Ok(())
}

/// Version 5: queues. An item carries data for its worker, and a pending item is due at a
/// time (delayed items, retries after a backoff), so the next item handed out is the one due
/// first among those due. The queue index orders pending items by that time, then position;
/// claimed ones (due NULL) by lease expiry.
const V5: &str = r#"
ALTER TABLE cairn_ledger ADD COLUMN data BLOB;
ALTER TABLE cairn_ledger ADD COLUMN data_kind INTEGER;
ALTER TABLE cairn_ledger ADD COLUMN due INTEGER;
UPDATE cairn_ledger SET due = 0 WHERE state = 0;
DROP INDEX cairn_ledger_queue;
CREATE INDEX cairn_ledger_queue ON cairn_ledger (ns, state, due, seq, holder) WHERE seq IS NOT NULL;
"#;

/// Version 6: counting semaphores and memo results of any size. A lock has slots (a plain
/// lock is slot 0 alone; `Store::try_semaphore` takes any of the first N), so the lock table
/// is rebuilt with the slot in its key. A memoized command's output larger than fits in one
/// cache entry is kept in chunks, written while the command runs and read back one at a time;
/// `gen` tells the chunks of one result from another's of the same key.
const V6: &str = r#"
-- slot: 0 for a plain lock; 0 to N-1 for a semaphore of N. (Comments stay outside the
-- CREATE statements: SQLite keeps a statement's text in the file and parses it at every open.)
CREATE TABLE cairn_lock_v6 (
    name        TEXT    NOT NULL,
    slot        INTEGER NOT NULL,
    owner       TEXT    NOT NULL,
    boot_id     TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    pid_start   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    PRIMARY KEY (name, slot)
) WITHOUT ROWID;
INSERT INTO cairn_lock_v6 (name, slot, owner, boot_id, pid, pid_start, expires_at, acquired_at)
    SELECT name, 0, owner, boot_id, pid, pid_start, expires_at, acquired_at FROM cairn_lock;
DROP TABLE cairn_lock;
ALTER TABLE cairn_lock_v6 RENAME TO cairn_lock;

-- Chunks of large memo outputs: gen tells which result of the key (from its record in
-- cairn_cache), seq the chunk's place in the output, data holds frames (stream, length,
-- bytes). A rowid table: its rows are large, which a WITHOUT ROWID table stores badly.
CREATE TABLE cairn_memo_chunk (
    ns   TEXT    NOT NULL,
    key  TEXT    NOT NULL,
    gen  INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    data BLOB    NOT NULL,
    PRIMARY KEY (ns, key, gen, seq)
);
"#;

/// Version 7: a ledger namespace's policy (how many attempts before an item is given up, the
/// base of a failed item's backoff) is kept in the file, so that every handle of the namespace,
/// in every process and inside transactions, applies the same one. NULL: the default.
const V7: &str = r#"
ALTER TABLE cairn_ledger_ns ADD COLUMN max_attempts INTEGER;
ALTER TABLE cairn_ledger_ns ADD COLUMN retry_delay_ms INTEGER;
"#;

/// Version 9: the cache's expiry index no longer moves at every refresh. It indexes
/// `sweep_at`, a lower bound of the entry's expiry, instead of the expiry itself: a write that
/// keeps or extends an entry's expiry (a refresh with the same TTL, the common case) leaves
/// `sweep_at`, and so the index, as they are; only a write that brings the expiry earlier
/// lowers it. A sweep looks at the entries whose `sweep_at` has passed, removes those whose
/// expiry has too, and files the others again under their current expiry: one index move per
/// entry per TTL, at sweep time, instead of one per write. (Moving the entry cost a TTL write
/// three times the log pages of a write without one.)
const V9: &str = r#"
ALTER TABLE cairn_cache ADD COLUMN sweep_at INTEGER;
UPDATE cairn_cache SET sweep_at = expires_at WHERE expires_at IS NOT NULL;
DROP INDEX cairn_cache_expiry;
CREATE INDEX cairn_cache_sweep ON cairn_cache (sweep_at) WHERE sweep_at IS NOT NULL;
"#;

/// Version 10: queue controls and rate limits (issue 20). An item has a priority (higher is
/// handed out first; equal ones in due-then-enqueue order) and may belong to a group, of which
/// at most one item is claimed at once, in enqueue order; a cancelled item has state 4. A
/// namespace may be paused until a time. A rate limiter keeps one timestamp per name (GCRA's
/// theoretical arrival time), so an acquire is one statement.
const V10: &str = r#"
ALTER TABLE cairn_ledger ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cairn_ledger ADD COLUMN grp TEXT;
DROP INDEX cairn_ledger_queue;
-- Claimed rows (few: one per worker) share the index; pending ones are read in claim order.
CREATE INDEX cairn_ledger_queue ON cairn_ledger (ns, state, priority DESC, due, seq, holder) WHERE seq IS NOT NULL;
CREATE INDEX cairn_ledger_group ON cairn_ledger (ns, grp, state, seq) WHERE grp IS NOT NULL;
-- paused_until: Unix ms; NULL: not paused.
ALTER TABLE cairn_ledger_ns ADD COLUMN paused_until INTEGER;
-- tat: the theoretical arrival time of the next slot, Unix microseconds.
CREATE TABLE cairn_limit (
    name TEXT    PRIMARY KEY,
    tat  INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 11: cron jobs (issue 21). A job keeps its schedule, the start of the newest slot it
/// completed (every slot up to it is done: slots complete oldest first) and a counter numbering
/// its runs; each run is kept, newest `keep` per job.
const V11: &str = r#"
-- schedule: as given ("every 1h", "cron 0 3 * * * UTC"); done_through: a slot start, Unix ms,
-- NULL until one completes; runs: the number of the newest run; succeeded, failed: runs ever,
-- by outcome (counters for metrics: history is pruned).
CREATE TABLE cairn_job (
    name         TEXT    PRIMARY KEY,
    schedule     TEXT    NOT NULL,
    done_through INTEGER,
    runs         INTEGER NOT NULL,
    keep         INTEGER NOT NULL,
    succeeded    INTEGER NOT NULL,
    failed       INTEGER NOT NULL
) WITHOUT ROWID;
-- outcome: 0 running, 1 succeeded, 2 failed. Times in Unix ms; status: the exit status.
CREATE TABLE cairn_job_run (
    job         TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    slot        INTEGER NOT NULL,
    slot_end    INTEGER NOT NULL,
    started     INTEGER NOT NULL,
    finished    INTEGER,
    outcome     INTEGER NOT NULL,
    status      INTEGER,
    duration_ms INTEGER,
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    stderr_tail TEXT,
    PRIMARY KEY (job, seq)
) WITHOUT ROWID;
"#;

/// One step of cairn's own schema.
pub(crate) enum SchemaStep {
    /// SQL statements.
    Sql(&'static str),
    /// A data migration on the connection.
    Data(fn(&rusqlite::Connection) -> rusqlite::Result<()>),
}

/// Version 8: durable runs. A run is held by one attempt at a time (an owner, a lease, the
/// process whose death frees it, and a fencing token bumped by every attempt); each step keeps
/// the result of its first success, in the run's order, and a failed step its last error.
const V8: &str = r#"
-- state: 0 running (an attempt holds it), 1 failed (the last attempt ended unfinished),
-- 2 finished. owner, holder and lease_until are NULL while no attempt holds it.
CREATE TABLE cairn_run (
    id          TEXT    PRIMARY KEY,
    state       INTEGER NOT NULL,
    token       INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    owner       TEXT,
    holder      TEXT,
    lease_until INTEGER,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
) WITHOUT ROWID;
CREATE INDEX cairn_run_finished ON cairn_run (finished_at) WHERE finished_at IS NOT NULL;

-- state: 1 failed (its last execution raised; no result), 2 done (value and kind its result).
-- seq: its position in the run; fingerprint: its definition's, '' when none was given;
-- output: for a command step, the head of its output (done) or the tail (failed).
CREATE TABLE cairn_step (
    run         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    state       INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    value       BLOB,
    kind        INTEGER,
    attempts    INTEGER NOT NULL,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    output      TEXT,
    PRIMARY KEY (run, name)
) WITHOUT ROWID;
"#;

/// cairn's own schema: step `i` takes a store to version `i + 1`. Append; never edit.
pub(crate) const STEPS: &[SchemaStep] = &[
    SchemaStep::Sql(V1),
    SchemaStep::Sql(V2),
    SchemaStep::Sql(V3),
    SchemaStep::Data(v4_guess_kinds),
    SchemaStep::Sql(V5),
    SchemaStep::Sql(V6),
    SchemaStep::Sql(V7),
    SchemaStep::Sql(V8),
    SchemaStep::Sql(V9),
    SchemaStep::Sql(V10),
    SchemaStep::Sql(V11),
];

/// The digest ([`Engine::schema_fingerprint`](super::Engine::schema_fingerprint)) of cairn's own tables and indexes as the migrations leave them at the latest
/// version. A file that says it is a current cairn store but whose tables differ (edited by
/// hand, or damaged in the schema pages) is reported as corrupt at open instead of failing
/// later with "no such column". The unit test below recomputes it, so it cannot drift.
pub(crate) const SCHEMA_FINGERPRINT: &str = "55c2e6750875ee5a";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_what_the_migrations_produce() {
        let opened = super::super::open::open_in_memory(&crate::storage::OpenRequest::default()).unwrap();
        assert_eq!(opened.engine.sqlite().unwrap().schema_fingerprint().unwrap(), SCHEMA_FINGERPRINT);
    }

    /// A lock held in a store of version 5 is still held, as slot 0, once the lock table is
    /// rebuilt with slots.
    #[test]
    fn a_lock_held_at_version_5_is_slot_0_after_the_rebuild() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::invalid(e.to_string()))?;
        let path = dir.path().join("v5.db");
        {
            let conn = rusqlite::Connection::open(&path)?;
            conn.execute_batch(&format!("{V1}{V2}{V3}"))?;
            v4_guess_kinds(&conn)?;
            conn.execute_batch(&format!("{V5} PRAGMA user_version = 5;"))?;
            conn.execute(
                "INSERT INTO cairn_lock (name, owner, boot_id, pid, pid_start, expires_at, acquired_at) \
                 VALUES ('nightly', 'someone', '', 4242, 0, ?1, 0)",
                [i64::MAX],
            )?;
        }
        let store = crate::Store::open(&path)?;
        let h = store.lock_holder("nightly")?.ok_or("the lock was lost in the rebuild")?;
        assert_eq!((h.slot, h.pid, h.owner.as_str()), (0, 4242, "someone"));
        assert!(store.try_lock("nightly", std::time::Duration::from_secs(1))?.is_none());
        Ok(())
    }

    /// A store of version 6 (before ledger policies) opens at version 7: its namespaces keep
    /// their queue counters (tokens go on from them) and have the default policy until one
    /// is set.
    #[test]
    fn a_version_6_store_keeps_its_queue_and_gets_the_default_ledger_policy(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use crate::{LedgerPolicy, Store};
        let dir = tempfile::tempdir().map_err(|e| crate::Error::invalid(e.to_string()))?;
        let path = dir.path().join("v6.db");
        {
            let conn = rusqlite::Connection::open(&path)?;
            conn.execute_batch(&format!("{V1}{V2}{V3}"))?;
            v4_guess_kinds(&conn)?;
            conn.execute_batch(&format!("{V5}{V6} PRAGMA user_version = 6;"))?;
            conn.execute_batch(
                "INSERT INTO cairn_ledger_ns (ns, next_seq) VALUES ('q', 41);
                 INSERT INTO cairn_ledger (ns, id, state, seq, due, updated_at) VALUES ('q', 'a', 0, 41, 0, 0);",
            )?;
        }
        let store = Store::open(&path)?;
        let version: i64 =
            rusqlite::Connection::open(&path)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(version, i64::try_from(STEPS.len())?, "on to the latest");
        let q = store.ledger("q");
        assert_eq!(q.policy()?, LedgerPolicy::default());
        let claim = q.claim_next("w", std::time::Duration::from_secs(60))?.ok_or("the queued item")?;
        assert_eq!((claim.id(), claim.token()), ("a", 42), "the namespace's counter goes on");
        q.set_policy(LedgerPolicy { max_attempts: Some(1), retry_delay: None })?;
        assert_eq!(q.fail_claim(&claim, "x")?, crate::ItemState::Failed);
        Ok(())
    }

    /// A store of version 7 (the expiry index on `expires_at`, before durable runs) opens at
    /// the latest version with its entries filed for sweeping under their expiries (expired
    /// ones are swept, fresh ones and those without a TTL stay, and refreshing one works as in
    /// a new store), and runs work in it at once.
    #[test]
    fn a_version_7_store_keeps_its_entries_sweeps_them_by_expiry_and_gets_runs(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use crate::{ManualClock, Options};
        let dir = tempfile::tempdir().map_err(|e| crate::Error::invalid(e.to_string()))?;
        let path = dir.path().join("v7.db");
        {
            let conn = rusqlite::Connection::open(&path)?;
            conn.execute_batch(&format!("{V1}{V2}{V3}"))?;
            v4_guess_kinds(&conn)?;
            conn.execute_batch(&format!("{V5}{V6}{V7} PRAGMA user_version = 7;"))?;
            for (key, expires_at) in [("expired", Some(1_000)), ("fresh", Some(5_000)), ("forever", None)] {
                conn.execute(
                    "INSERT INTO cairn_cache (ns, key, value, expires_at, kind) VALUES ('c', ?1, 'v', ?2, 1)",
                    rusqlite::params![key, expires_at],
                )?;
            }
        }
        let clock = ManualClock::new(2_000);
        let store = Options::new().clock(clock.clone()).open(&path)?;
        let version: i64 =
            rusqlite::Connection::open(&path)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(version, i64::try_from(STEPS.len())?, "the latest version");
        assert_eq!(store.sweep()?, 1, "the expired entry");
        let c = store.cache("c");
        assert_eq!(c.keys("")?, ["forever", "fresh"]);
        c.set("fresh", "w", std::time::Duration::from_secs(10))?;
        clock.advance(std::time::Duration::from_secs(5));
        assert_eq!(store.sweep()?, 0, "refreshed past its old expiry");
        clock.advance(std::time::Duration::from_secs(10));
        assert_eq!(store.sweep()?, 1, "then swept at its new one");
        assert_eq!(c.keys("")?, ["forever"]);
        let mut run = store.run("r")?;
        assert_eq!(run.step("s", || Ok::<_, crate::Error>(5i64))?, 5);
        run.finish()?;
        Ok(())
    }

    /// A store written at version 2 (before values kept their kind) opens as a current store
    /// whose values read back as the types they most likely were.
    #[test]
    fn a_version_2_store_is_migrated_and_its_values_get_their_likely_kinds(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use crate::{Store, Value};
        let dir = tempfile::tempdir().map_err(|e| crate::Error::invalid(e.to_string()))?;
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path)?;
            conn.execute_batch(&format!("{V1}{V2} PRAGMA user_version = 2;"))?;
            for (key, value) in
                [("count", &b"42"[..]), ("name", b"hello"), ("doc", b"{\"a\":1}"), ("raw", b"\xff\x00")]
            {
                conn.execute(
                    "INSERT INTO cairn_cache (ns, key, value) VALUES ('c', ?1, ?2)",
                    rusqlite::params![key, value],
                )?;
            }
            conn.execute(
                "INSERT INTO cairn_checkpoint (job, value, updated_at) VALUES ('j', ?1, 0)",
                [&b"1700"[..]],
            )?;
            conn.execute(
                "INSERT INTO cairn_ledger (ns, id, state, result, updated_at) VALUES ('l', 'x', 2, ?1, 0)",
                [&b"ok"[..]],
            )?;
            conn.execute("INSERT INTO cairn_ledger (ns, id, state, updated_at) VALUES ('l', 'y', 2, 0)", [])?;
        }
        let store = Store::open(&path)?;
        let c = store.cache("c");
        assert_eq!(c.get::<Value>("count")?, Some(Value::Int(42)));
        assert_eq!(c.get::<Value>("name")?, Some(Value::Text("hello".into())));
        assert_eq!(
            c.get::<Value>("doc")?,
            Some(Value::Text("{\"a\":1}".into())),
            "text: JSON cannot be told from text"
        );
        assert_eq!(c.get::<Value>("raw")?, Some(Value::Bytes(vec![0xff, 0])));
        assert_eq!(store.checkpoint("j").get::<Value>()?, Some(Value::Int(1700)));
        assert_eq!(store.ledger("l").result::<Value>("x")?, Some(Value::Text("ok".into())));
        assert_eq!(store.ledger("l").result::<Value>("y")?, None);
        assert_eq!(c.incr("count", 1, None)?, 43, "counters keep counting");
        Ok(())
    }
}
