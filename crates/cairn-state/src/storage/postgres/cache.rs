//! The cache's SQL on PostgreSQL: the same operations as `storage/sqlite/cache.rs`, with key
//! locks inside write transactions and sweeps that skip rows other hosts hold.

use postgres::Row;

use super::Engine;
use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::{EntryRow, NsRow, Stored};

const CACHE: &str = "c";

fn stored(r: &Row, value: usize, kind: usize) -> Stored {
    Stored::new(r.get(value), i64::from(r.get::<_, i16>(kind)))
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Engine {
    pub fn cache_get(&self, ns: &str, key: &str, now: i64) -> Result<Option<Stored>> {
        self.lock_key(CACHE, ns, key)?;
        Ok(self
            .row(
                "SELECT value, kind FROM {s}.cairn_cache WHERE ns = $1 AND key = $2 \
                 AND (expires_at IS NULL OR expires_at > $3)",
                &[&ns, &key, &now],
            )?
            .map(|r| stored(&r, 0, 1)))
    }

    /// Each key's fresh value, read one by one (as many lone gets would be).
    pub fn cache_get_each(&self, ns: &str, keys: &[&str], now: i64) -> Result<Vec<Option<Stored>>> {
        keys.iter().map(|k| self.cache_get(ns, k, now)).collect()
    }

    pub fn cache_get_touch(&self, ns: &str, key: &str, now: i64, rank: i64) -> Result<Option<Stored>> {
        self.lock_key(CACHE, ns, key)?;
        Ok(self
            .row(
                "UPDATE {s}.cairn_cache SET touched = $4 WHERE ns = $1 AND key = $2 \
                 AND (expires_at IS NULL OR expires_at > $3) RETURNING value, kind",
                &[&ns, &key, &now, &rank],
            )?
            .map(|r| stored(&r, 0, 1)))
    }

    pub fn cache_next_rank(&self, ns: &str) -> Result<i64> {
        Ok(self
            .row("UPDATE {s}.cairn_cache_ns SET seq = seq + 1 WHERE ns = $1 RETURNING seq", &[&ns])?
            .map_or(0, |r| r.get(0)))
    }

    pub fn cache_entry(&self, ns: &str, key: &str, now: i64) -> Result<Option<EntryRow>> {
        self.lock_key(CACHE, ns, key)?;
        Ok(self
            .row(
                "SELECT value, kind, expires_at FROM {s}.cairn_cache WHERE ns = $1 AND key = $2 \
                 AND (expires_at IS NULL OR expires_at > $3)",
                &[&ns, &key, &now],
            )?
            .map(|r| EntryRow { value: stored(&r, 0, 1), expires_at: r.get(2) }))
    }

    pub fn cache_contains(&self, ns: &str, key: &str, now: i64) -> Result<bool> {
        self.lock_key(CACHE, ns, key)?;
        Ok(self
            .row(
                "SELECT 1 FROM {s}.cairn_cache WHERE ns = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
                &[&ns, &key, &now],
            )?
            .is_some())
    }

    pub fn cache_upsert(
        &self,
        ns: &str,
        key: &str,
        (value, kind): (&[u8], ValueKind),
        expires_at: Option<i64>,
        rank: Option<i64>,
    ) -> Result<()> {
        self.lock_key(CACHE, ns, key)?;
        let old = self.ranked_size(ns, key, rank)?;
        self.exec(
            "INSERT INTO {s}.cairn_cache (ns, key, value, expires_at, touched, kind) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, \
             touched = excluded.touched, kind = excluded.kind",
            &[&ns, &key, &value, &expires_at, &rank, &i16::from(kind.code())],
        )?;
        self.count_write(ns, key, value, rank, old)
    }

    pub fn cache_add(
        &self,
        ns: &str,
        key: &str,
        (value, kind): (&[u8], ValueKind),
        expires_at: Option<i64>,
        rank: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        self.lock_key(CACHE, ns, key)?;
        let old = self.ranked_size(ns, key, rank)?;
        let added = self.exec(
            "INSERT INTO {s}.cairn_cache AS c (ns, key, value, expires_at, touched, kind) \
             VALUES ($1, $2, $3, $4, $5, $7) \
             ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, \
             touched = excluded.touched, kind = excluded.kind \
             WHERE c.expires_at IS NOT NULL AND c.expires_at <= $6",
            &[&ns, &key, &value, &expires_at, &rank, &now, &i16::from(kind.code())],
        )? == 1;
        if added {
            self.count_write(ns, key, value, rank, old)?;
        }
        Ok(added)
    }

    fn ranked_size(&self, ns: &str, key: &str, rank: Option<i64>) -> Result<Option<Option<i64>>> {
        if rank.is_none() {
            return Ok(None);
        }
        Ok(self
            .row(
                "SELECT CASE WHEN touched IS NOT NULL THEN octet_length(key) + octet_length(value) END::bigint \
                 FROM {s}.cairn_cache WHERE ns = $1 AND key = $2",
                &[&ns, &key],
            )?
            .map(|r| r.get(0)))
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
            "UPDATE {s}.cairn_cache_ns SET entries = entries + $2, bytes = bytes + $3 WHERE ns = $1",
            &[&ns, &entries, &bytes],
        )
        .map(drop)
    }

    /// Take the removed ranked rows (namespace, size) off their namespaces' sizes.
    fn uncount(&self, removed: &[Row]) -> Result<u64> {
        let mut per_ns: Vec<(String, i64, i64)> = Vec::new();
        for r in removed {
            let Some(size) = r.get::<_, Option<i64>>(1) else { continue };
            let ns: String = r.get(0);
            match per_ns.iter_mut().find(|(n, _, _)| *n == ns) {
                Some((_, e, b)) => {
                    *e += 1;
                    *b += size;
                }
                None => per_ns.push((ns, 1, size)),
            }
        }
        per_ns.sort();
        for (ns, e, b) in per_ns {
            self.adjust_sizes(&ns, -e, -b)?;
        }
        Ok(removed.len() as u64)
    }

    pub fn cache_delete(&self, ns: &str, key: &str, now: i64) -> Result<Option<bool>> {
        self.lock_key(CACHE, ns, key)?;
        let rows = self.rows(
            "DELETE FROM {s}.cairn_cache WHERE ns = $1 AND key = $2 RETURNING ns, \
             CASE WHEN touched IS NOT NULL THEN octet_length(key) + octet_length(value) END::bigint, \
             (expires_at IS NULL OR expires_at > $3)",
            &[&ns, &key, &now],
        )?;
        let fresh = rows.first().map(|r| r.get::<_, bool>(2));
        self.uncount(&rows)?;
        Ok(fresh)
    }

    pub fn cache_set_expiry(&self, ns: &str, key: &str, now: i64, expires_at: Option<i64>) -> Result<bool> {
        self.lock_key(CACHE, ns, key)?;
        Ok(self.exec(
            "UPDATE {s}.cairn_cache SET expires_at = $4 WHERE ns = $1 AND key = $2 \
             AND (expires_at IS NULL OR expires_at > $3)",
            &[&ns, &key, &now, &expires_at],
        )? == 1)
    }

    pub fn cache_keys(
        &self,
        ns: &str,
        (from, until): (&str, Option<&str>),
        after: &str,
        limit: i64,
        now: i64,
    ) -> Result<Vec<String>> {
        let limit = if limit < 0 { i64::MAX } else { limit };
        let rows = self.rows(
            "SELECT key FROM {s}.cairn_cache WHERE ns = $1 AND key >= $2 AND key > $4 \
             AND ($5::text IS NULL OR key < $5) AND (expires_at IS NULL OR expires_at > $3) \
             ORDER BY key LIMIT $6",
            &[&ns, &from, &now, &after, &until, &limit],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn cache_clear(&self, ns: &str) -> Result<u64> {
        self.lock_namespace(CACHE, ns)?;
        self.exec("DELETE FROM {s}.cairn_cache_fill WHERE ns = $1", &[&ns])?;
        let n = self.exec("DELETE FROM {s}.cairn_cache WHERE ns = $1", &[&ns])?;
        self.exec("UPDATE {s}.cairn_cache_ns SET entries = 0, bytes = 0 WHERE ns = $1", &[&ns])?;
        Ok(n)
    }

    /// The keys of the range are locked first (sorted, one round trip), as every keyed write
    /// locks its key: a transaction that read one of them and writes it back (an increment)
    /// then runs wholly before or after this one, never across it.
    pub fn cache_clear_range(&self, ns: &str, (from, until): (&str, Option<&str>)) -> Result<u64> {
        let keys: Vec<String> = self
            .rows(
                "SELECT key FROM {s}.cairn_cache WHERE ns = $1 AND key >= $2 AND ($3::text IS NULL OR key < $3)",
                &[&ns, &from, &until],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.lock_keys(CACHE, ns, &refs)?;
        self.exec(
            "DELETE FROM {s}.cairn_cache_fill WHERE ns = $1 AND key >= $2 AND ($3::text IS NULL OR key < $3)",
            &[&ns, &from, &until],
        )?;
        let rows = self.rows(
            "DELETE FROM {s}.cairn_cache WHERE ns = $1 AND key >= $2 AND ($3::text IS NULL OR key < $3) \
             RETURNING ns, CASE WHEN touched IS NOT NULL THEN octet_length(key) + octet_length(value) END::bigint",
            &[&ns, &from, &until],
        )?;
        self.uncount(&rows)
    }

    pub fn cache_sweep_ns(&self, ns: &str, now: i64) -> Result<u64> {
        let rows = self.rows(
            "DELETE FROM {s}.cairn_cache c USING (SELECT ns, key FROM {s}.cairn_cache \
               WHERE ns = $1 AND expires_at IS NOT NULL AND expires_at <= $2 FOR UPDATE SKIP LOCKED) d \
             WHERE c.ns = d.ns AND c.key = d.key \
             RETURNING c.ns, CASE WHEN c.touched IS NOT NULL THEN octet_length(c.key) + octet_length(c.value) END::bigint",
            &[&ns, &now],
        )?;
        self.uncount(&rows)
    }

    /// Expired entries of any namespace, oldest first, skipping rows other hosts hold: many
    /// hosts sweep at once, and none should queue behind another.
    ///
    /// A bounded namespace's row is locked before any of its entries, as every write to it
    /// does (see `Cache::limits_in`): a sweep that deleted entries first and then waited for
    /// the row to take them off its sizes deadlocked with a writer holding the row and waiting
    /// for one of those entries. So the rows of bounded namespaces are locked first, skipping
    /// those another transaction holds, and the entries of those skipped stay for a later sweep.
    pub fn cache_sweep(&self, now: i64, many: bool) -> Result<u64> {
        self.exec("DELETE FROM {s}.cairn_cache_fill WHERE expires_at <= $1", &[&now])?;
        let limit: i64 = if many { i(crate::storage::SWEEP_MANY_BATCH) } else { 64 };
        let locked: Vec<String> = self
            .rows(
                "SELECT ns FROM {s}.cairn_cache_ns WHERE max_entries IS NOT NULL OR max_bytes IS NOT NULL \
                 ORDER BY ns FOR UPDATE SKIP LOCKED",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let rows = self.rows(
            "DELETE FROM {s}.cairn_cache c USING (SELECT ns, key FROM {s}.cairn_cache e \
               WHERE expires_at IS NOT NULL AND expires_at <= $1 \
               AND (ns = ANY($3::text[]) OR NOT EXISTS (SELECT 1 FROM {s}.cairn_cache_ns n \
                 WHERE n.ns = e.ns AND (n.max_entries IS NOT NULL OR n.max_bytes IS NOT NULL))) \
               ORDER BY expires_at LIMIT $2 FOR UPDATE OF e SKIP LOCKED) d \
             WHERE c.ns = d.ns AND c.key = d.key \
             RETURNING c.ns, CASE WHEN c.touched IS NOT NULL THEN octet_length(c.key) + octet_length(c.value) END::bigint",
            &[&now, &limit, &locked],
        )?;
        self.uncount(&rows)
    }

    pub fn cache_ns(&self, ns: &str) -> Result<Option<NsRow>> {
        let row = self.row(
            "SELECT entries, bytes, max_entries, max_bytes, lru, hits, misses, evictions \
             FROM {s}.cairn_cache_ns WHERE ns = $1",
            &[&ns],
        )?;
        Ok(row.map(|r| NsRow {
            entries: u(r.get(0)),
            bytes: u(r.get(1)),
            max_entries: r.get::<_, Option<i64>>(2).map(u),
            max_bytes: r.get::<_, Option<i64>>(3).map(u),
            lru: r.get(4),
            hits: u(r.get(5)),
            misses: u(r.get(6)),
            evictions: u(r.get(7)),
        }))
    }

    /// Lock a bounded namespace's row until the transaction ends.
    pub fn cache_lock_ns(&self, ns: &str) -> Result<()> {
        self.row("SELECT 1 FROM {s}.cairn_cache_ns WHERE ns = $1 FOR UPDATE", &[&ns]).map(drop)
    }

    /// Many hosts write at once: the shared counters stay out of their transactions.
    pub fn bookkeeping_apart(&self) -> bool {
        true
    }

    pub fn cache_namespaces(&self) -> Result<Vec<String>> {
        let rows = self.rows(
            "WITH RECURSIVE n(ns) AS (SELECT min(ns) FROM {s}.cairn_cache \
               UNION ALL SELECT (SELECT min(ns) FROM {s}.cairn_cache WHERE ns > n.ns) FROM n WHERE ns IS NOT NULL) \
             SELECT ns FROM n WHERE ns IS NOT NULL UNION SELECT ns FROM {s}.cairn_cache_ns ORDER BY 1",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn cache_set_limits(
        &self,
        ns: &str,
        max_entries: Option<u64>,
        max_bytes: Option<u64>,
        lru: bool,
    ) -> Result<()> {
        let (me, mb) = (max_entries.map(i), max_bytes.map(i));
        self.exec(
            "INSERT INTO {s}.cairn_cache_ns (ns, max_entries, max_bytes, lru) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (ns) DO UPDATE SET max_entries = excluded.max_entries, max_bytes = excluded.max_bytes, \
             lru = excluded.lru",
            &[&ns, &me, &mb, &lru],
        )?;
        if max_entries.is_some() || max_bytes.is_some() {
            // Entries written while the namespace was unbounded rank oldest, in key order.
            self.exec(
                "UPDATE {s}.cairn_cache c SET touched = r.rank FROM (SELECT key, \
                   row_number() OVER (ORDER BY key) - count(*) OVER () - 1 AS rank \
                   FROM {s}.cairn_cache WHERE ns = $1 AND touched IS NULL) r \
                 WHERE c.ns = $1 AND c.key = r.key",
                &[&ns],
            )?;
            let (entries, bytes) = self.cache_count(ns)?;
            self.exec(
                "UPDATE {s}.cairn_cache_ns SET entries = $2, bytes = $3 WHERE ns = $1",
                &[&ns, &i(entries), &i(bytes)],
            )?;
        } else {
            self.exec(
                "UPDATE {s}.cairn_cache SET touched = NULL WHERE ns = $1 AND touched IS NOT NULL",
                &[&ns],
            )?;
            self.exec("UPDATE {s}.cairn_cache_ns SET entries = 0, bytes = 0 WHERE ns = $1", &[&ns])?;
        }
        Ok(())
    }

    pub fn cache_len(&self, ns: &str, now: i64) -> Result<u64> {
        let r = self.rows(
            "SELECT count(*) FROM {s}.cairn_cache WHERE ns = $1 AND (expires_at IS NULL OR expires_at > $2)",
            &[&ns, &now],
        )?;
        Ok(r.first().map_or(0, |r| u(r.get(0))))
    }

    pub fn cache_count(&self, ns: &str) -> Result<(u64, u64)> {
        let r = self.rows(
            "SELECT count(*), coalesce(sum(octet_length(key) + octet_length(value)), 0)::bigint \
             FROM {s}.cairn_cache WHERE ns = $1",
            &[&ns],
        )?;
        Ok(r.first().map_or((0, 0), |r| (u(r.get(0)), u(r.get(1)))))
    }

    pub fn cache_evict(&self, ns: &str, keep: &str, n: u64) -> Result<u64> {
        let rows = self.rows(
            "DELETE FROM {s}.cairn_cache c USING (SELECT ns, key FROM {s}.cairn_cache \
               WHERE ns = $1 AND touched IS NOT NULL AND key <> $2 ORDER BY touched LIMIT $3) d \
             WHERE c.ns = d.ns AND c.key = d.key \
             RETURNING c.ns, CASE WHEN c.touched IS NOT NULL THEN octet_length(c.key) + octet_length(c.value) END::bigint",
            &[&ns, &keep, &i(n)],
        )?;
        let removed = self.uncount(&rows)?;
        if removed > 0 {
            self.exec(
                "UPDATE {s}.cairn_cache_ns SET evictions = evictions + $2 WHERE ns = $1",
                &[&ns, &i(removed)],
            )?;
        }
        Ok(removed)
    }

    pub fn cache_add_hit_counts(&self, ns: &str, hits: u64, misses: u64) -> Result<()> {
        self.exec(
            "INSERT INTO {s}.cairn_cache_ns AS n (ns, hits, misses) VALUES ($1, $2, $3) \
             ON CONFLICT (ns) DO UPDATE SET hits = n.hits + excluded.hits, misses = n.misses + excluded.misses",
            &[&ns, &i(hits), &i(misses)],
        )
        .map(drop)
    }

    pub fn fill_get(&self, ns: &str, key: &str) -> Result<Option<(String, i64)>> {
        Ok(self
            .row(
                "SELECT owner, expires_at FROM {s}.cairn_cache_fill WHERE ns = $1 AND key = $2",
                &[&ns, &key],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

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
            "INSERT INTO {s}.cairn_cache_fill AS f (ns, key, owner, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (ns, key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE f.expires_at <= $5 OR f.owner = $6",
            &[&ns, &key, &owner, &expires_at, &now, &dead],
        )? == 1)
    }

    pub fn fill_release(&self, ns: &str, key: &str, owner: &str) -> Result<()> {
        self.exec(
            "DELETE FROM {s}.cairn_cache_fill WHERE ns = $1 AND key = $2 AND owner = $3",
            &[&ns, &key, &owner],
        )
        .map(drop)
    }

    pub fn fill_renew(&self, ns: &str, key: &str, owner: &str, expires_at: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE {s}.cairn_cache_fill SET expires_at = $4 WHERE ns = $1 AND key = $2 AND owner = $3",
            &[&ns, &key, &owner, &expires_at],
        )? == 1)
    }
}
