//! cairn's own schema, as steps of the public migration runner on `PRAGMA user_version`.
//!
//! Append new steps; never edit a released one. Users' own migration scopes in the same file
//! are versioned in `cairn_migrations`, never in `user_version`, so the two cannot collide.

use crate::migrate::{Migrations, M};

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
ALTER TABLE cairn_ledger ADD COLUMN holder TEXT;
CREATE INDEX cairn_ledger_holder ON cairn_ledger (ns, holder) WHERE state = 1 AND holder IS NOT NULL;
"#;

/// The store's own migrations.
pub(crate) fn cairn_migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1), M::up(V2), M::up(V3)])
}

/// The digest ([`Engine::schema_fingerprint`](super::Engine::schema_fingerprint)) of cairn's own tables and indexes as the migrations leave them at the latest
/// version. A file that says it is a current cairn store but whose tables differ (edited by
/// hand, or damaged in the schema pages) is reported as corrupt at open instead of failing
/// later with "no such column". The unit test below recomputes it, so it cannot drift.
pub(crate) const SCHEMA_FINGERPRINT: &str = "c20b30d3d0d31d30";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{self, Slot};
    use crate::storage::sqlite::{Engine, OpenSpec};

    #[test]
    fn the_fingerprint_is_what_the_migrations_produce() {
        let engine = Engine::open(&OpenSpec {
            path: None,
            read_only: false,
            create: true,
            immutable: false,
            busy_timeout: std::time::Duration::from_secs(1),
            vfs: None,
        })
        .unwrap();
        migrate::run(&engine, Slot::UserVersion, &cairn_migrations(), &|_, _| Ok(())).unwrap();
        assert_eq!(engine.schema_fingerprint().unwrap(), SCHEMA_FINGERPRINT);
    }
}
