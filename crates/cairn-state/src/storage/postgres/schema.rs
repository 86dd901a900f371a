//! cairn's own schema on PostgreSQL: its tables in a schema of their own, its identity and
//! version in `cairn_meta`. A schema that holds tables but no `cairn_meta` belongs to someone
//! else and is refused; one whose version is ahead of this code is refused too.

use super::Engine;
use crate::error::{Error, Result};

/// Version 1: the layout SQLite's store reaches at its version 6 (kinds, claim holders, queue
/// data and due times, lock slots, memo chunks), with PostgreSQL's types; byte-ordered text (`COLLATE "C"`) so that key ranges, paging and
/// ordering match SQLite's; a sequence for queue positions; autovacuum settings suited to
/// queues, whose rows churn.
const V1: &str = r#"
CREATE TABLE {s}.cairn_meta (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE {s}.cairn_cache (
    ns         text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    value      bytea    NOT NULL,
    kind       smallint NOT NULL DEFAULT 0,
    expires_at bigint,
    touched    bigint,
    PRIMARY KEY (ns, key)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
CREATE INDEX cairn_cache_expiry  ON {s}.cairn_cache (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX cairn_cache_recency ON {s}.cairn_cache (ns, touched) WHERE touched IS NOT NULL;
CREATE TABLE {s}.cairn_cache_ns (
    ns          text COLLATE "C" PRIMARY KEY,
    entries     bigint  NOT NULL DEFAULT 0,
    bytes       bigint  NOT NULL DEFAULT 0,
    max_entries bigint,
    max_bytes   bigint,
    lru         boolean NOT NULL DEFAULT false,
    hits        bigint  NOT NULL DEFAULT 0,
    misses      bigint  NOT NULL DEFAULT 0,
    evictions   bigint  NOT NULL DEFAULT 0,
    seq         bigint  NOT NULL DEFAULT 0
) WITH (fillfactor = 80);
CREATE TABLE {s}.cairn_cache_fill (
    ns         text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    owner      text   NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (ns, key)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
CREATE TABLE {s}.cairn_migrations (
    scope   text COLLATE "C" PRIMARY KEY,
    version bigint NOT NULL
);
CREATE TABLE {s}.cairn_ledger (
    ns          text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    state       smallint NOT NULL,
    seq         bigint,
    attempts    bigint   NOT NULL DEFAULT 0,
    worker      text,
    token       bigint   NOT NULL DEFAULT 0,
    holder      text COLLATE "C",
    result      bytea,
    result_kind smallint,
    data        bytea,
    data_kind   smallint,
    due         bigint,
    error       text,
    updated_at  bigint   NOT NULL,
    PRIMARY KEY (ns, id)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
CREATE INDEX cairn_ledger_queue ON {s}.cairn_ledger (ns, state, due, seq) INCLUDE (holder) WHERE seq IS NOT NULL;
CREATE SEQUENCE {s}.cairn_queue_seq;
CREATE TABLE {s}.cairn_checkpoint (
    job        text COLLATE "C" PRIMARY KEY,
    value      bytea    NOT NULL,
    kind       smallint NOT NULL DEFAULT 0,
    updated_at bigint   NOT NULL
);
CREATE TABLE {s}.cairn_lock (
    name        text COLLATE "C" NOT NULL,
    slot        bigint NOT NULL,
    owner       text   NOT NULL,
    boot_id     text   NOT NULL,
    pid         bigint NOT NULL,
    pid_start   bigint NOT NULL,
    expires_at  bigint NOT NULL,
    acquired_at bigint NOT NULL,
    PRIMARY KEY (name, slot)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
CREATE TABLE {s}.cairn_memo_chunk (
    ns   text COLLATE "C" NOT NULL,
    key  text COLLATE "C" NOT NULL,
    gen  bigint NOT NULL,
    seq  bigint NOT NULL,
    data bytea  NOT NULL,
    PRIMARY KEY (ns, key, gen, seq)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
INSERT INTO {s}.cairn_meta (key, value) VALUES ('application', 'cairn'), ('schema_version', '0');
"#;

/// Version 2 (SQLite's version 7): a ledger namespace's policy (how many attempts before an
/// item is given up, the base of a failed item's backoff) is kept in the store, so that every
/// handle of the namespace, on every host and inside transactions, applies the same one. NULL:
/// the default. Queue positions and tokens come from the sequence, so this table holds nothing
/// else.
const V2: &str = r#"
CREATE TABLE {s}.cairn_ledger_ns (
    ns             text COLLATE "C" PRIMARY KEY,
    max_attempts   bigint,
    retry_delay_ms bigint
);
"#;

/// Version 3 (SQLite's version 8): durable runs, each held by one attempt at a time (an owner,
/// a lease, the process whose death frees it, a fencing token bumped by every attempt), and
/// their steps, each keeping the result of its first success.
const V3: &str = r#"
CREATE TABLE {s}.cairn_run (
    id          text COLLATE "C" PRIMARY KEY,
    state       smallint NOT NULL,
    token       bigint   NOT NULL,
    attempts    bigint   NOT NULL,
    owner       text,
    holder      text,
    lease_until bigint,
    error       text,
    started_at  bigint   NOT NULL,
    updated_at  bigint   NOT NULL,
    finished_at bigint
);
CREATE INDEX cairn_run_finished ON {s}.cairn_run (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE {s}.cairn_step (
    run         text COLLATE "C" NOT NULL,
    name        text COLLATE "C" NOT NULL,
    seq         bigint   NOT NULL,
    state       smallint NOT NULL,
    fingerprint text     NOT NULL,
    value       bytea,
    kind        smallint,
    attempts    bigint   NOT NULL,
    error       text,
    started_at  bigint   NOT NULL,
    finished_at bigint   NOT NULL,
    output      text,
    PRIMARY KEY (run, name)
);
"#;

/// Version 4 (SQLite's version 10): queue controls and rate limits. An item's priority
/// (higher first) and group (at most one claimed at once, in enqueue order); cancelled items
/// have state 4; a namespace may be paused until a time; a limiter keeps one timestamp per
/// name (GCRA), in microseconds of the server's clock.
const V4: &str = r#"
ALTER TABLE {s}.cairn_ledger ADD COLUMN priority bigint NOT NULL DEFAULT 0;
ALTER TABLE {s}.cairn_ledger ADD COLUMN grp text COLLATE "C";
DROP INDEX {s}.cairn_ledger_queue;
CREATE INDEX cairn_ledger_queue ON {s}.cairn_ledger (ns, state, priority DESC, due, seq) INCLUDE (holder) WHERE seq IS NOT NULL;
CREATE INDEX cairn_ledger_group ON {s}.cairn_ledger (ns, grp, state, seq) WHERE grp IS NOT NULL;
ALTER TABLE {s}.cairn_ledger_ns ADD COLUMN paused_until bigint;
CREATE TABLE {s}.cairn_limit (
    name text COLLATE "C" PRIMARY KEY,
    tat  bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
"#;

/// Version 5 (SQLite's version 11): cron jobs. A job's schedule, the newest slot it completed
/// (Unix ms; slots complete oldest first), a counter numbering its runs, and each run.
const V5: &str = r#"
CREATE TABLE {s}.cairn_job (
    name         text COLLATE "C" PRIMARY KEY,
    schedule     text   NOT NULL,
    done_through bigint,
    runs         bigint NOT NULL,
    keep         bigint NOT NULL,
    succeeded    bigint NOT NULL,
    failed       bigint NOT NULL
);
CREATE TABLE {s}.cairn_job_run (
    job         text COLLATE "C" NOT NULL,
    seq         bigint   NOT NULL,
    slot        bigint   NOT NULL,
    slot_end    bigint   NOT NULL,
    started     bigint   NOT NULL,
    finished    bigint,
    outcome     bigint   NOT NULL,
    status      bigint,
    duration_ms bigint,
    host        text     NOT NULL,
    pid         bigint   NOT NULL,
    stderr_tail text,
    PRIMARY KEY (job, seq)
);
"#;

/// cairn's schema steps on PostgreSQL: step `i` takes a schema to version `i + 1`. Append;
/// never edit.
pub(crate) const STEPS: &[&str] = &[V1, V2, V3, V4, V5];

/// The digest of cairn's tables, columns, types, nullability and collations, and of its
/// indexes, as the steps above leave them ([`Engine::schema_fingerprint`]). A schema that says
/// it is a current cairn schema but differs (altered by hand) is refused at open as corrupt,
/// instead of failing later, or reading a column as the wrong type. The test
/// `the_fingerprint_is_what_the_steps_produce` recomputes it on a live server.
pub(crate) const SCHEMA_FINGERPRINT: &str = "ffc5754879cb1b41";

/// What a schema holds, of every kind of object a schema can hold: relations (tables,
/// indexes, sequences, views, composite types), functions and procedures, types of their own
/// (enums, domains, ranges, base types; not the array and multirange types the server makes
/// beside them), operators and their classes and families, collations, conversions, text
/// search objects and extended statistics. Relations alone would take a schema of functions
/// or domains for an empty one.
const OBJECTS_IN_SCHEMA: &str = "\
    SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid) \
         + (SELECT count(*) FROM pg_proc WHERE pronamespace = n.oid) \
         + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = n.oid AND t.typrelid = 0 \
              AND t.typtype <> 'm' AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)) \
         + (SELECT count(*) FROM pg_operator WHERE oprnamespace = n.oid) \
         + (SELECT count(*) FROM pg_opclass WHERE opcnamespace = n.oid) \
         + (SELECT count(*) FROM pg_opfamily WHERE opfnamespace = n.oid) \
         + (SELECT count(*) FROM pg_collation WHERE collnamespace = n.oid) \
         + (SELECT count(*) FROM pg_conversion WHERE connamespace = n.oid) \
         + (SELECT count(*) FROM pg_ts_config WHERE cfgnamespace = n.oid) \
         + (SELECT count(*) FROM pg_ts_dict WHERE dictnamespace = n.oid) \
         + (SELECT count(*) FROM pg_ts_parser WHERE prsnamespace = n.oid) \
         + (SELECT count(*) FROM pg_ts_template WHERE tmplnamespace = n.oid) \
         + (SELECT count(*) FROM pg_statistic_ext WHERE stxnamespace = n.oid) \
    FROM pg_namespace n WHERE n.nspname = $1";

/// The version this code writes.
pub(crate) fn latest() -> i64 {
    STEPS.len() as i64
}

impl Engine {
    /// Create cairn's schema, or bring it to the latest version, or refuse it: all under a
    /// transaction-scoped advisory lock, so that processes opening a new store at once create
    /// it once. Returns the version found before.
    pub fn ensure_schema(&self, read_only: bool) -> Result<i64> {
        self.begin_immediate()?;
        let result = self.ensure_schema_locked(read_only);
        match result {
            Ok(found) => self.commit().map(|()| found),
            Err(e) => {
                self.rollback_quietly();
                Err(e)
            }
        }
    }

    fn ensure_schema_locked(&self, read_only: bool) -> Result<i64> {
        let lock = self.key_lock_id("schema", "", "");
        self.raw_one("SELECT pg_advisory_xact_lock($1)::text", &[&lock])?;
        let schema = self.schema().to_owned();
        let exists: bool =
            self.raw_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema])?.get(0);
        let found = if exists { self.identify()? } else { None };
        let found = match found {
            Some(v) => v,
            None if read_only => {
                return Err(Error::Io {
                    action: "open",
                    path: self.path().to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no cairn schema '{schema}' here; a read-only open never creates one"),
                    ),
                })
            }
            None => {
                if !exists {
                    self.batch("CREATE SCHEMA {s}")?;
                }
                0
            }
        };
        let latest = latest();
        if found < 0 {
            return Err(Error::Corrupt {
                path: self.path().to_path_buf(),
                detail: format!(
                    "schema '{schema}' says its cairn schema version is {found}, which no cairn ever wrote"
                ),
            });
        }
        if found > latest {
            return Err(Error::SchemaTooNew {
                path: self.path().to_path_buf(),
                scope: "cairn".into(),
                found,
                supported: latest,
            });
        }
        if found < latest && read_only {
            return Err(Error::SchemaTooOld {
                path: self.path().to_path_buf(),
                scope: "cairn".into(),
                found,
                expected: latest,
            });
        }
        for (i, step) in STEPS.iter().enumerate().skip(usize::try_from(found).unwrap_or(usize::MAX)) {
            // (each step with its version, in this one transaction)
            self.batch(step)?;
            let version = (i + 1).to_string();
            self.raw_one(
                &format!(
                    "UPDATE {}.cairn_meta SET value = $1 WHERE key = 'schema_version' RETURNING value",
                    super::quote_ident(&schema)
                ),
                &[&version],
            )?;
        }
        let fingerprint = self.schema_fingerprint()?;
        if fingerprint != SCHEMA_FINGERPRINT {
            return Err(Error::Corrupt {
                path: self.path().to_path_buf(),
                detail: format!(
                    "schema '{schema}' says it is a cairn schema at version {latest}, but its tables are not as cairn \
                     made them (changed by another program; fingerprint {fingerprint})"
                ),
            });
        }
        Ok(found)
    }

    /// A digest (FNV-1a, 64 bits, hex) of cairn's relations in its schema: every column's
    /// table, name, type, nullability and collation, and every index's definition.
    pub fn schema_fingerprint(&self) -> Result<String> {
        let schema = self.schema().to_owned();
        let rows = self.client()?.query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull::text, \
                    coalesce(co.collname::text, ''), \
                    coalesce(replace(pg_get_indexdef(c.oid), quote_ident($1) || '.', ''), '') \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0 \
             WHERE n.nspname = $1 AND c.relname LIKE 'cairn\\_%' AND c.relkind IN ('r', 'i', 'S') \
               AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY c.relname, a.attnum",
            &[&schema],
        ).map_err(|e| self.err(e))?;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for row in &rows {
            for i in 0..6 {
                let part: String = row.try_get(i).map_err(|e| self.err(e))?;
                for &b in part.as_bytes().iter().chain(b"|") {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        Ok(format!("{h:016x}"))
    }

    /// The version of cairn's schema here, `None` for an empty schema; refused if the schema
    /// holds something that is not cairn's.
    fn identify(&self) -> Result<Option<i64>> {
        let schema = self.schema().to_owned();
        let has_meta: bool = self
            .raw_one(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = 'cairn_meta')",
                &[&schema],
            )?
            .get(0);
        let objects: i64 = self.raw_one(OBJECTS_IN_SCHEMA, &[&schema])?.get(0);
        if !has_meta {
            if objects == 0 {
                return Ok(None);
            }
            return Err(Error::ForeignSchema {
                path: self.path().to_path_buf(),
                schema: schema.clone(),
                objects,
            });
        }
        let meta = self.raw_rows(&format!(
            "SELECT key, value FROM {}.cairn_meta WHERE key IN ('application', 'schema_version')",
            super::quote_ident(&schema)
        ))?;
        let get = |k: &str| meta.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        if get("application").as_deref() != Some("cairn") {
            return Err(Error::ForeignSchema {
                path: self.path().to_path_buf(),
                schema: schema.clone(),
                objects,
            });
        }
        let version =
            get("schema_version").and_then(|v| v.parse::<i64>().ok()).ok_or_else(|| Error::Corrupt {
                path: self.path().to_path_buf(),
                detail: "cairn_meta has no readable schema_version".into(),
            })?;
        Ok(Some(version))
    }

    fn raw_rows(&self, sql: &str) -> Result<Vec<(String, String)>> {
        let rows = self.client()?.query(sql, &[]).map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
