//! The SQL of memo outputs too large for one cache entry: chunks of one result (`gen`) of a
//! key, written while the command runs and read back in order. What a chunk holds, and when
//! chunks are kept or dropped, is decided in `crate::memo`.

use rusqlite::params;

use super::Engine;
use crate::error::Result;

const CHUNKS: &str = "SELECT data FROM cairn_memo_chunk WHERE ns = ?1 AND key = ?2 AND gen = ?3 ORDER BY seq";

const ANY_CHUNK: &str = "SELECT 1 FROM cairn_memo_chunk LIMIT 1";

/// Chunks whose key has neither an entry nor a live fill marker (a computation in progress).
const ORPHANS: &str = "DELETE FROM cairn_memo_chunk WHERE rowid IN (SELECT c.rowid FROM cairn_memo_chunk c \
     WHERE NOT EXISTS (SELECT 1 FROM cairn_cache e WHERE e.ns = c.ns AND e.key = c.key) \
     AND NOT EXISTS (SELECT 1 FROM cairn_cache_fill f WHERE f.ns = c.ns AND f.key = c.key AND f.expires_at > ?1))";

impl Engine {
    pub fn memo_chunk_put(&self, ns: &str, key: &str, gen: i64, seq: i64, data: &[u8]) -> Result<()> {
        self.exec(
            "INSERT INTO cairn_memo_chunk (ns, key, gen, seq, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ns, key, gen, seq, data],
        )
        .map(drop)
    }

    /// One statement, stepped a row at a time: one snapshot, and one chunk in memory.
    pub fn memo_chunks_each(
        &self,
        ns: &str,
        key: &str,
        gen: i64,
        f: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let mut st = self.conn.prepare_cached(CHUNKS).map_err(|e| self.err(e))?;
        let mut rows = st.query(params![ns, key, gen]).map_err(|e| self.err(e))?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let data = row.get_ref(0).and_then(|v| Ok(v.as_blob()?)).map_err(|e| self.err(e))?;
            f(data)?;
            n += 1;
        }
        Ok(n)
    }

    pub fn memo_chunks_count(&self, ns: &str, key: &str, gen: i64) -> Result<u64> {
        self.row(
            "SELECT count(*) FROM cairn_memo_chunk WHERE ns = ?1 AND key = ?2 AND gen = ?3",
            params![ns, key, gen],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    pub fn memo_chunks_drop(&self, ns: &str, key: &str, gen: i64) -> Result<u64> {
        self.exec(
            "DELETE FROM cairn_memo_chunk WHERE ns = ?1 AND key = ?2 AND gen = ?3",
            params![ns, key, gen],
        )
        .map(|n| n as u64)
    }

    pub fn memo_chunks_drop_others(&self, ns: &str, key: &str, keep: i64) -> Result<u64> {
        self.exec(
            "DELETE FROM cairn_memo_chunk WHERE ns = ?1 AND key = ?2 AND gen <> ?3",
            params![ns, key, keep],
        )
        .map(|n| n as u64)
    }

    /// Usually one probe of an empty table.
    pub fn memo_chunks_gc(&self, now: i64) -> Result<u64> {
        if self.row(ANY_CHUNK, [], |_| Ok(()))?.is_none() {
            return Ok(0);
        }
        self.exec(ORPHANS, params![now]).map(|n| n as u64)
    }

    /// Give back the page cache's unused memory: after a chunk of output has been written, its
    /// pages would otherwise stay cached (up to the 64 MiB the connection allows), so a
    /// command printing gigabytes would hold more memory than one printing kilobytes.
    pub fn release_memory(&self) {
        let _ = self.conn.execute_batch("PRAGMA shrink_memory");
    }
}
