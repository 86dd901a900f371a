//! The cache's SQL. Policy (what is expired, when to evict, how long to wait) is decided in
//! `crate::cache`; these statements only carry it out, with `now` always a parameter.

use rusqlite::params;

use super::Engine;
use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::{EntryRow, NsRow, Stored};

const GET_TOUCH: &str = "UPDATE cairn_cache SET touched = ?4 \
                         WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3) RETURNING value, kind";

const NEXT_RANK: &str = "UPDATE cairn_cache_ns SET seq = seq + 1 WHERE ns = ?1 RETURNING seq";

const GET: &str = "SELECT value, kind FROM cairn_cache WHERE ns = ?1 AND key = ?2 \
                   AND (expires_at IS NULL OR expires_at > ?3)";

// Writes keep the sweep index still: a new entry is filed under its expiry, and a replaced
// one keeps its `sweep_at` (a lower bound of its expiry; schema version 8) as long as the new
// expiry is not earlier. Listing `sweep_at` in the upsert's SET, even to its own value, would
// rewrite the index entry at every refresh, which is the write this design avoids; and a
// `RETURNING` telling the caller when to file the entry again cost 12,000 instructions per
// set (callgrind), more than the page it saved. So the upsert updates only when the entry's
// place in the index stays valid, and when it does not (changes() == 0), REPLACE_EARLIER
// writes the whole entry, filed under its new expiry.
const UPSERT: &str = "INSERT INTO cairn_cache (ns, key, value, expires_at, touched, kind, sweep_at) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4) \
                      ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, \
                      expires_at = excluded.expires_at, touched = excluded.touched, kind = excluded.kind \
                      WHERE excluded.expires_at IS NULL OR cairn_cache.sweep_at <= excluded.expires_at";

/// After UPSERT changed nothing: the entry exists and its new expiry is before its `sweep_at`
/// (or it had none).
const REPLACE_EARLIER: &str = "UPDATE cairn_cache SET value = ?3, expires_at = ?4, touched = ?5, kind = ?6, \
                               sweep_at = ?4 WHERE ns = ?1 AND key = ?2";

/// A row's size if it counts towards its namespace's sizes (it has a recency rank), else NULL.
macro_rules! ranked_size {
    () => {
        "CASE WHEN touched IS NOT NULL THEN length(CAST(key AS BLOB)) + length(value) END"
    };
}

const DELETE_ONE: &str = concat!(
    "DELETE FROM cairn_cache WHERE ns = ?1 AND key = ?2 \
     RETURNING (expires_at IS NULL OR expires_at > ?3), ns, ",
    ranked_size!()
);

const SWEEP_NS: &str = concat!(
    "DELETE FROM cairn_cache WHERE ns = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2 RETURNING 1, ns, ",
    ranked_size!()
);

// SQLite recompiles a statement at each new binding of a parameter that its planner looked
// at: a bound LIMIT, or `ns = ?` beside the partial recency index (it checks whether the
// index applies). So limits here are literals, and evictions compare `ns = +?1`, which the
// planner treats as an opaque value and still serves from the index. Pinned by the test at
// the end of this file.

/// The amortized sweep: of the 64 entries filed longest ago among those whose `sweep_at` has
/// passed, those that have expired. (The others were refreshed since; REFILE_SOME files them
/// under their current expiry.)
const SWEEP_SOME: &str = concat!(
    "DELETE FROM cairn_cache WHERE rowid IN (SELECT rowid FROM cairn_cache \
     WHERE sweep_at IS NOT NULL AND sweep_at <= ?1 ORDER BY sweep_at LIMIT 64) \
     AND expires_at IS NOT NULL AND expires_at <= ?1 RETURNING 1, ns, ",
    ranked_size!()
);

/// After SWEEP_SOME: the entries still due for a look have not expired (they were
/// refreshed); at most 64 of them are filed again under their expiry (NULL: out of the index).
const REFILE_SOME: &str = "UPDATE cairn_cache SET sweep_at = expires_at WHERE rowid IN (SELECT rowid \
     FROM cairn_cache WHERE sweep_at IS NOT NULL AND sweep_at <= ?1 ORDER BY sweep_at LIMIT 64)";

/// After SWEEP_MANY: as REFILE_SOME, in the explicit sweep's batches.
const REFILE_MANY: &str = "UPDATE cairn_cache SET sweep_at = expires_at WHERE rowid IN (SELECT rowid \
     FROM cairn_cache WHERE sweep_at IS NOT NULL AND sweep_at <= ?1 ORDER BY sweep_at LIMIT 10000)";

/// The explicit sweep, in batches that keep each transaction short.
const SWEEP_MANY: &str = concat!(
    "DELETE FROM cairn_cache WHERE rowid IN (SELECT rowid FROM cairn_cache \
     WHERE sweep_at IS NOT NULL AND sweep_at <= ?1 ORDER BY sweep_at LIMIT 10000) \
     AND expires_at IS NOT NULL AND expires_at <= ?1 RETURNING 1, ns, ",
    ranked_size!()
);

/// Evicting one entry: what a full bounded namespace does at each insert.
const EVICT_ONE: &str = concat!(
    "DELETE FROM cairn_cache WHERE rowid IN (SELECT rowid FROM cairn_cache \
     WHERE ns = +?1 AND touched IS NOT NULL AND key <> ?2 ORDER BY touched LIMIT 1) RETURNING 1, ns, ",
    ranked_size!()
);

/// Evicting many (after a bound is lowered, or for a large value): rare, so a recompile is fine.
const EVICT_MANY: &str = concat!(
    "DELETE FROM cairn_cache WHERE rowid IN (SELECT rowid FROM cairn_cache \
     WHERE ns = +?1 AND touched IS NOT NULL AND key <> ?2 ORDER BY touched LIMIT ?3) RETURNING 1, ns, ",
    ranked_size!()
);

/// Whether any entry is due for a look (expired, or refreshed since it was filed): a probe of
/// the covering sweep index. The sweeps' `rowid IN
/// (subquery)` builds an ephemeral table even when it finds nothing (freshly mapped memory,
/// page faults: 8% of a single set when run at every eighth write).
const ANY_DUE: &str = "SELECT 1 FROM cairn_cache WHERE sweep_at IS NOT NULL AND sweep_at <= ?1 LIMIT 1";

const SWEEP_FILLS: &str = "DELETE FROM cairn_cache_fill WHERE expires_at <= ?1";

const NS_ROW: &str = "SELECT entries, bytes, max_entries, max_bytes, lru, hits, misses, evictions \
                      FROM cairn_cache_ns WHERE ns = ?1";

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Engine {
    pub fn cache_get(&self, ns: &str, key: &str, now: i64) -> Result<Option<Stored>> {
        self.row(GET, params![ns, key, now], |r| Ok(Stored::new(r.get(0)?, r.get(1)?)))
    }

    /// Each key's fresh value, from one read transaction (outside a transaction): the reads
    /// share one snapshot, and each saves the statement-level transaction a lone read pays
    /// (about a third of a lone get's cost).
    pub fn cache_get_each(&self, ns: &str, keys: &[&str], now: i64) -> Result<Vec<Option<Stored>>> {
        let snapshot = if self.in_transaction() { None } else { Some(self.begin_read()?) };
        let found = keys.iter().map(|k| self.cache_get(ns, k, now)).collect::<Result<Vec<_>>>()?;
        if let Some(s) = snapshot {
            s.commit()?;
        }
        Ok(found)
    }

    /// A hit in a least-recently-used namespace records its use with `rank`.
    pub fn cache_get_touch(&self, ns: &str, key: &str, now: i64, rank: i64) -> Result<Option<Stored>> {
        self.row(GET_TOUCH, params![ns, key, now, rank], |r| Ok(Stored::new(r.get(0)?, r.get(1)?)))
    }

    /// The next recency rank of a bounded namespace. A counter rather than
    /// `max(touched) + 1`: a subquery combining `ns = ?` with the partial recency index makes
    /// SQLite recompile the statement at every new binding, which cost 60 µs per write.
    pub fn cache_next_rank(&self, ns: &str) -> Result<i64> {
        Ok(self.row(NEXT_RANK, params![ns], |r| r.get(0))?.unwrap_or(0))
    }

    pub fn cache_entry(&self, ns: &str, key: &str, now: i64) -> Result<Option<EntryRow>> {
        self.row(
            "SELECT value, kind, expires_at FROM cairn_cache WHERE ns = ?1 AND key = ?2 \
             AND (expires_at IS NULL OR expires_at > ?3)",
            params![ns, key, now],
            |r| Ok(EntryRow { value: Stored::new(r.get(0)?, r.get(1)?), expires_at: r.get(2)? }),
        )
    }

    pub fn cache_contains(&self, ns: &str, key: &str, now: i64) -> Result<bool> {
        Ok(self
            .row(
                "SELECT 1 FROM cairn_cache WHERE ns = ?1 AND key = ?2 \
                 AND (expires_at IS NULL OR expires_at > ?3)",
                params![ns, key, now],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// Insert or replace. `rank` is the recency rank in a bounded namespace, else `None`.
    pub fn cache_upsert(
        &self,
        ns: &str,
        key: &str,
        (value, kind): (&[u8], ValueKind),
        expires_at: Option<i64>,
        rank: Option<i64>,
    ) -> Result<()> {
        let old = self.ranked_size(ns, key, rank)?;
        let p = params![ns, key, value, expires_at, rank, kind.code()];
        if self.exec(UPSERT, p)? == 0 {
            self.exec(REPLACE_EARLIER, p)?;
        }
        self.count_write(ns, key, value, rank, old)
    }

    /// Insert unless a fresh entry exists; an expired one is replaced. True if it inserted.
    pub fn cache_add(
        &self,
        ns: &str,
        key: &str,
        (value, kind): (&[u8], ValueKind),
        expires_at: Option<i64>,
        rank: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        let old = self.ranked_size(ns, key, rank)?;
        // Only an expired entry is replaced, and its `sweep_at` (at most its old expiry, so
        // past) stays a valid lower bound of any new expiry: no filing again here.
        let added = self.exec(
            "INSERT INTO cairn_cache (ns, key, value, expires_at, touched, kind, sweep_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?4) \
             ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at, touched = excluded.touched, kind = excluded.kind \
             WHERE cairn_cache.expires_at IS NOT NULL AND cairn_cache.expires_at <= ?6",
            params![ns, key, value, expires_at, rank, now, kind.code()],
        )? == 1;
        if added {
            self.count_write(ns, key, value, rank, old)?;
        }
        Ok(added)
    }

    // Bounded namespaces keep exact sizes in `cairn_cache_ns`, for eviction; the rows that
    // count are those with a recency rank, which only bounded namespaces' rows carry. Each
    // statement below that adds or removes such a row adjusts the sizes in the same
    // transaction. (Triggers did this once; merely existing, they cost every write in every
    // namespace 1.6 µs and a statement journal.)

    /// Before a write to a bounded namespace: whether the row exists, and its size if ranked.
    fn ranked_size(&self, ns: &str, key: &str, rank: Option<i64>) -> Result<Option<Option<i64>>> {
        if rank.is_none() {
            return Ok(None);
        }
        self.row(
            "SELECT CASE WHEN touched IS NOT NULL THEN length(CAST(key AS BLOB)) + length(value) END \
             FROM cairn_cache WHERE ns = ?1 AND key = ?2",
            params![ns, key],
            |r| r.get(0),
        )
    }

    fn count_write(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        rank: Option<i64>,
        old: Option<Option<i64>>,
    ) -> Result<()> {
        if rank.is_none() {
            return Ok(());
        }
        let size = (key.len() + value.len()) as i64;
        match old {
            None | Some(None) => self.adjust_sizes(ns, 1, size),
            Some(Some(was)) => self.adjust_sizes(ns, 0, size - was),
        }
    }

    fn adjust_sizes(&self, ns: &str, entries: i64, bytes: i64) -> Result<()> {
        if entries == 0 && bytes == 0 {
            return Ok(());
        }
        self.exec(
            "UPDATE cairn_cache_ns SET entries = entries + ?2, bytes = bytes + ?3 WHERE ns = ?1",
            params![ns, entries, bytes],
        )
        .map(drop)
    }

    /// Run a `DELETE ... RETURNING flag, ns, ranked size` and take the removed ranked rows
    /// off their namespaces' sizes. Returns how many rows it deleted, and the first row's flag.
    fn delete_counted(&self, sql: &str, params: impl rusqlite::Params) -> Result<(u64, Option<bool>)> {
        let (n, first, removed) = self.delete_returning(sql, params).map_err(|e| self.err(e))?;
        for (ns, entries, bytes) in removed {
            self.adjust_sizes(&ns, -entries, -bytes)?;
        }
        Ok((n, first))
    }

    #[allow(clippy::type_complexity)]
    fn delete_returning(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> rusqlite::Result<(u64, Option<bool>, Vec<(String, i64, i64)>)> {
        let mut st = self.conn.prepare_cached(sql)?;
        let mut rows = st.query(params)?;
        let mut removed: Vec<(String, i64, i64)> = Vec::new();
        let (mut n, mut first) = (0u64, None);
        while let Some(row) = rows.next()? {
            first.get_or_insert(row.get::<_, bool>(0)?);
            n += 1;
            if let Some(size) = row.get::<_, Option<i64>>(2)? {
                let ns: String = row.get(1)?;
                match removed.iter_mut().find(|(m, _, _)| *m == ns) {
                    Some((_, entries, bytes)) => {
                        *entries += 1;
                        *bytes += size;
                    }
                    None => removed.push((ns, 1, size)),
                }
            }
        }
        Ok((n, first, removed))
    }

    /// Delete an entry. `Some(true)` if it was fresh, `Some(false)` if it had expired.
    pub fn cache_delete(&self, ns: &str, key: &str, now: i64) -> Result<Option<bool>> {
        let (_, fresh) = self.delete_counted(DELETE_ONE, params![ns, key, now])?;
        Ok(fresh)
    }

    pub fn cache_set_expiry(&self, ns: &str, key: &str, now: i64, expires_at: Option<i64>) -> Result<bool> {
        self.exec(
            "UPDATE cairn_cache SET expires_at = ?4, \
             sweep_at = CASE WHEN ?4 IS NOT NULL AND (sweep_at IS NULL OR sweep_at > ?4) THEN ?4 ELSE sweep_at END \
             WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
            params![ns, key, now, expires_at],
        )
        .map(|n| n == 1)
    }

    /// Fresh keys after `after` (exclusive; `""` for the first), at least `from` (inclusive),
    /// below `until` (exclusive, or the end), in key order, at most `limit` of them.
    pub fn cache_keys(
        &self,
        ns: &str,
        (from, until): (&str, Option<&str>),
        after: &str,
        limit: i64,
        now: i64,
    ) -> Result<Vec<String>> {
        self.keys_query(ns, (from, until), after, limit, now).map_err(|e| self.err(e))
    }

    fn keys_query(
        &self,
        ns: &str,
        (from, until): (&str, Option<&str>),
        after: &str,
        limit: i64,
        now: i64,
    ) -> rusqlite::Result<Vec<String>> {
        let mut st = match until {
            Some(_) => self.conn.prepare_cached(
                "SELECT key FROM cairn_cache WHERE ns = ?1 AND key >= ?2 AND key > ?5 AND key < ?4 \
                 AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?6",
            ),
            None => self.conn.prepare_cached(
                "SELECT key FROM cairn_cache WHERE ns = ?1 AND key >= ?2 AND key > ?4 \
                 AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?5",
            ),
        }?;
        match until {
            Some(until) => st.query_map(params![ns, from, now, until, after, limit], |r| r.get(0))?.collect(),
            None => st.query_map(params![ns, from, now, after, limit], |r| r.get(0))?.collect(),
        }
    }

    pub fn cache_clear(&self, ns: &str) -> Result<u64> {
        self.exec("DELETE FROM cairn_cache_fill WHERE ns = ?1", params![ns])?;
        let n = self.exec("DELETE FROM cairn_cache WHERE ns = ?1", params![ns])? as u64;
        self.exec("UPDATE cairn_cache_ns SET entries = 0, bytes = 0 WHERE ns = ?1", params![ns])?;
        Ok(n)
    }

    /// Entries (and their fill markers) whose keys lie in `[from, until)`. Two statements
    /// each, bounded and unbounded, so that either is a plain range scan of the primary key.
    pub fn cache_clear_range(&self, ns: &str, (from, until): (&str, Option<&str>)) -> Result<u64> {
        let n = match until {
            Some(until) => {
                self.exec(
                    "DELETE FROM cairn_cache_fill WHERE ns = ?1 AND key >= ?2 AND key < ?3",
                    params![ns, from, until],
                )?;
                self.delete_counted(
                    concat!(
                        "DELETE FROM cairn_cache WHERE ns = ?1 AND key >= ?2 AND key < ?3 RETURNING 1, ns, ",
                        ranked_size!()
                    ),
                    params![ns, from, until],
                )?
            }
            None => {
                self.exec("DELETE FROM cairn_cache_fill WHERE ns = ?1 AND key >= ?2", params![ns, from])?;
                self.delete_counted(
                    concat!(
                        "DELETE FROM cairn_cache WHERE ns = ?1 AND key >= ?2 RETURNING 1, ns, ",
                        ranked_size!()
                    ),
                    params![ns, from],
                )?
            }
        };
        Ok(n.0)
    }

    /// Remove expired entries of one namespace.
    pub fn cache_sweep_ns(&self, ns: &str, now: i64) -> Result<u64> {
        self.delete_counted(SWEEP_NS, params![ns, now]).map(|(n, _)| n)
    }

    /// Remove expired entries of any namespace, oldest expiry first: at most
    /// 64 (`many` false) or [`SWEEP_MANY_BATCH`](crate::storage::SWEEP_MANY_BATCH). Abandoned fill markers go too.
    pub fn cache_sweep(&self, now: i64, many: bool) -> Result<u64> {
        self.exec(SWEEP_FILLS, params![now])?;
        if self.row(ANY_DUE, params![now], |_| Ok(()))?.is_none() {
            return Ok(0);
        }
        if many {
            // Each pass takes the next batch of entries due for a look: deletes the expired,
            // files the refreshed again, which takes them out of the due range for good. So
            // every due entry is visited once, and a batch of refreshed entries cannot hide
            // expired ones from the caller, which stops at a batch that removed fewer than a
            // full one.
            let mut removed = 0;
            loop {
                removed += self.delete_counted(SWEEP_MANY, params![now])?.0;
                if removed >= crate::storage::SWEEP_MANY_BATCH || self.exec(REFILE_MANY, params![now])? == 0 {
                    return Ok(removed);
                }
            }
        }
        let (n, _) = self.delete_counted(SWEEP_SOME, params![now])?;
        self.exec(REFILE_SOME, params![now])?;
        Ok(n)
    }

    pub fn cache_ns(&self, ns: &str) -> Result<Option<NsRow>> {
        self.row(NS_ROW, params![ns], |r| {
            Ok(NsRow {
                entries: u(r.get(0)?),
                bytes: u(r.get(1)?),
                max_entries: r.get::<_, Option<i64>>(2)?.map(u),
                max_bytes: r.get::<_, Option<i64>>(3)?.map(u),
                lru: r.get(4)?,
                hits: u(r.get(5)?),
                misses: u(r.get(6)?),
                evictions: u(r.get(7)?),
            })
        })
    }

    /// One writer at a time holds the whole file: nothing more to lock.
    pub fn cache_lock_ns(&self, _ns: &str) -> Result<()> {
        Ok(())
    }

    /// One writer at a time: the bookkeeping costs nothing inside the write transaction.
    pub fn bookkeeping_apart(&self) -> bool {
        false
    }

    pub fn cache_namespaces(&self) -> Result<Vec<String>> {
        self.strings(concat!(
            "WITH RECURSIVE ",
            skip_scan_ns!("cairn_cache"),
            " SELECT ns FROM n WHERE ns IS NOT NULL UNION SELECT ns FROM cairn_cache_ns ORDER BY 1"
        ))
    }

    /// Store a namespace's bounds, and give its entries recency ranks (or take them away).
    pub fn cache_set_limits(
        &self,
        ns: &str,
        max_entries: Option<u64>,
        max_bytes: Option<u64>,
        lru: bool,
    ) -> Result<()> {
        let as_i64 = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        self.exec(
            "INSERT INTO cairn_cache_ns (ns, max_entries, max_bytes, lru) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (ns) DO UPDATE SET max_entries = excluded.max_entries, \
             max_bytes = excluded.max_bytes, lru = excluded.lru",
            params![ns, as_i64(max_entries), as_i64(max_bytes), lru],
        )?;
        if max_entries.is_some() || max_bytes.is_some() {
            // Entries written while the namespace was unbounded rank oldest, in rowid order;
            // from now on every write keeps the sizes, starting from an exact count.
            self.exec(
                "UPDATE cairn_cache SET touched = rowid - (SELECT max(rowid) FROM cairn_cache) \
                 WHERE ns = ?1 AND touched IS NULL",
                params![ns],
            )?;
            let (entries, bytes) = self.cache_count(ns)?;
            self.exec(
                "UPDATE cairn_cache_ns SET entries = ?2, bytes = ?3 WHERE ns = ?1",
                params![ns, entries as i64, bytes as i64],
            )?;
        } else {
            self.exec(
                "UPDATE cairn_cache SET touched = NULL WHERE ns = ?1 AND touched IS NOT NULL",
                params![ns],
            )?;
            self.exec("UPDATE cairn_cache_ns SET entries = 0, bytes = 0 WHERE ns = ?1", params![ns])?;
        }
        Ok(())
    }

    /// Count a namespace's entries and bytes (a scan of the namespace).
    pub fn cache_len(&self, ns: &str, now: i64) -> Result<u64> {
        Ok(self
            .row(
                "SELECT count(*) FROM cairn_cache WHERE ns = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![ns, now],
                |r| Ok(u(r.get(0)?)),
            )?
            .unwrap_or(0))
    }

    pub fn cache_count(&self, ns: &str) -> Result<(u64, u64)> {
        Ok(self
            .row(
                "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + length(value)), 0) \
                 FROM cairn_cache WHERE ns = ?1",
                params![ns],
                |r| Ok((u(r.get(0)?), u(r.get(1)?))),
            )?
            .unwrap_or((0, 0)))
    }

    /// Delete the `n` lowest-ranked entries of a namespace, never `keep`. Returns how many.
    pub fn cache_evict(&self, ns: &str, keep: &str, n: u64) -> Result<u64> {
        let (removed, _) = if n == 1 {
            self.delete_counted(EVICT_ONE, params![ns, keep])?
        } else {
            self.delete_counted(EVICT_MANY, params![ns, keep, i64::try_from(n).unwrap_or(i64::MAX)])?
        };
        if removed > 0 {
            self.exec(
                "UPDATE cairn_cache_ns SET evictions = evictions + ?2 WHERE ns = ?1",
                params![ns, removed as i64],
            )?;
        }
        Ok(removed)
    }

    /// Add this process's hit and miss counts to the namespace's totals.
    pub fn cache_add_hit_counts(&self, ns: &str, hits: u64, misses: u64) -> Result<()> {
        self.exec(
            "INSERT INTO cairn_cache_ns (ns, hits, misses) VALUES (?1, ?2, ?3) \
             ON CONFLICT (ns) DO UPDATE SET hits = hits + excluded.hits, misses = misses + excluded.misses",
            params![ns, hits as i64, misses as i64],
        )
        .map(drop)
    }

    /// The fill marker of a key: who is computing it, and until when they may.
    pub fn fill_get(&self, ns: &str, key: &str) -> Result<Option<(String, i64)>> {
        self.row(
            "SELECT owner, expires_at FROM cairn_cache_fill WHERE ns = ?1 AND key = ?2",
            params![ns, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Take the fill marker of a key for `owner` until `expires_at`, if nobody holds a live one:
    /// it is absent, expired, or held by `dead` (an owner found dead). True if taken.
    pub fn fill_try_claim(
        &self,
        ns: &str,
        key: &str,
        owner: &str,
        expires_at: i64,
        now: i64,
        dead: Option<&str>,
    ) -> Result<bool> {
        Ok(self.exec(
            "INSERT INTO cairn_cache_fill (ns, key, owner, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (ns, key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE cairn_cache_fill.expires_at <= ?5 OR cairn_cache_fill.owner = ?6",
            params![ns, key, owner, expires_at, now, dead],
        )? == 1)
    }

    pub fn fill_release(&self, ns: &str, key: &str, owner: &str) -> Result<()> {
        self.exec(
            "DELETE FROM cairn_cache_fill WHERE ns = ?1 AND key = ?2 AND owner = ?3",
            params![ns, key, owner],
        )
        .map(drop)
    }

    pub fn fill_renew(&self, ns: &str, key: &str, owner: &str, expires_at: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE cairn_cache_fill SET expires_at = ?4 WHERE ns = ?1 AND key = ?2 AND owner = ?3",
            params![ns, key, owner, expires_at],
        )? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// The statements of every get and set, of the sweep that rides along with writes, and
    /// of eviction and least-recently-used hits, must compile once. A statement whose WHERE
    /// lets a bound value decide whether a partial index applies is recompiled at each new
    /// binding: that once tripled the cost of a set, and no functional test can notice it.
    #[test]
    fn hot_statements_compile_once_whatever_the_bindings() -> Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        e.begin_immediate()?;
        for i in 0..50 {
            let (ns, key) = (format!("ns{}", i % 3), format!("k{i}"));
            e.cache_upsert(&ns, &key, (b"v", ValueKind::Text), Some(1_000 + i), None)?; // expired by the sweep below
            e.cache_get(&ns, &key, i)?;
            e.cache_ns(&ns)?;
            e.cache_sweep(2_000 + i, false)?;
            e.cache_evict(&ns, &key, 1)?;
            let rank = e.cache_next_rank(&ns)?;
            e.cache_get_touch(&ns, &key, i, rank)?;
        }
        e.commit()?;
        super::super::assert_compiled_once(
            e,
            &[
                GET,
                UPSERT,
                NS_ROW,
                ANY_DUE,
                SWEEP_SOME,
                REFILE_SOME,
                SWEEP_FILLS,
                EVICT_ONE,
                GET_TOUCH,
                NEXT_RANK,
            ],
        )
    }

    /// The explicit sweep must reach expired entries filed behind more than a batch of
    /// refreshed ones (which a sweep files again rather than deletes), and visit each once.
    #[test]
    fn the_explicit_sweep_reaches_expired_entries_behind_a_batch_of_refreshed_ones() -> Result<()> {
        let store = Store::open_in_memory()?;
        let e = store.engine.sqlite()?;
        e.begin_immediate()?;
        for i in 0..10_050 {
            e.cache_upsert("n", &format!("k{i:05}"), (b"v", ValueKind::Text), Some(1_000), None)?;
        }
        for i in 0..10_020 {
            // A refresh to a later expiry keeps the entry filed under 1,000.
            e.cache_upsert("n", &format!("k{i:05}"), (b"v", ValueKind::Text), Some(9_000), None)?;
        }
        assert_eq!(e.cache_sweep(2_000, true)?, 30, "the 30 entries that were not refreshed");
        assert_eq!(e.cache_sweep(2_000, true)?, 0);
        assert_eq!(e.cache_count("n")?.0, 10_020);
        assert_eq!(e.cache_sweep(9_000, true)?, 10_000, "a full batch: the caller goes on");
        assert_eq!(e.cache_sweep(9_000, true)?, 20);
        e.commit()
    }
}
