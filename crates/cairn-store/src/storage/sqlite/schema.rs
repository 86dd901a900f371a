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

/// The store's own migrations.
pub(crate) fn cairn_migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1)])
}
