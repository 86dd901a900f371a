//! cairn's own schema, as steps of the public migration runner on `PRAGMA user_version`.
//!
//! Append new steps; never edit a released one. Users' own migration scopes in the same file
//! are versioned in `cairn_migrations`, never in `user_version`, so the two cannot collide.

use crate::migrate::{Migrations, M};

/// Version 1: the cache, its per-namespace counters and settings, fill markers for
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
    entries     INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    max_entries INTEGER,
    max_bytes   INTEGER,
    lru         INTEGER NOT NULL DEFAULT 0,
    hits        INTEGER NOT NULL DEFAULT 0,
    misses      INTEGER NOT NULL DEFAULT 0,
    evictions   INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL DEFAULT 0  -- the last recency rank handed out
) WITHOUT ROWID;

-- Counters kept by triggers, so that every path that adds or removes an entry (set, add,
-- incr, delete, clear, sweep, eviction) keeps them right, in the same statement.
CREATE TRIGGER cairn_cache_ins AFTER INSERT ON cairn_cache BEGIN
    INSERT INTO cairn_cache_ns (ns, entries, bytes)
    VALUES (new.ns, 1, length(CAST(new.key AS BLOB)) + length(new.value))
    ON CONFLICT (ns) DO UPDATE SET entries = entries + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER cairn_cache_upd AFTER UPDATE OF value ON cairn_cache BEGIN
    UPDATE cairn_cache_ns SET bytes = bytes + length(new.value) - length(old.value)
    WHERE ns = new.ns;
END;
CREATE TRIGGER cairn_cache_del AFTER DELETE ON cairn_cache BEGIN
    UPDATE cairn_cache_ns
    SET entries = entries - 1, bytes = bytes - length(CAST(old.key AS BLOB)) - length(old.value)
    WHERE ns = old.ns;
END;

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
