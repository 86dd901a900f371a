//! Memo output chunks on PostgreSQL: the same operations as `storage/sqlite/memo.rs`. A
//! result's chunks are written by the one process computing it (its own `gen`), so they need
//! no key locks; the commit that makes them current runs under the key's lock (the entry's
//! upsert takes it), and deletions remove a generation in one statement.

use postgres::fallible_iterator::FallibleIterator;

use super::Engine;
use crate::error::Result;

impl Engine {
    pub fn memo_chunk_put(&self, ns: &str, key: &str, gen: i64, seq: i64, data: &[u8]) -> Result<()> {
        self.exec(
            "INSERT INTO {s}.cairn_memo_chunk (ns, key, gen, seq, data) VALUES ($1, $2, $3, $4, $5)",
            &[&ns, &key, &gen, &seq, &data],
        )
        .map(drop)
    }

    /// One statement, its rows taken from the connection as they are consumed: one snapshot,
    /// and a chunk or so in memory.
    pub fn memo_chunks_each(
        &self,
        ns: &str,
        key: &str,
        gen: i64,
        f: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let mut client = self.client()?;
        let st = self
            .statement(
                &mut client,
                "SELECT data FROM {s}.cairn_memo_chunk WHERE ns = $1 AND key = $2 AND gen = $3 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let params: [&(dyn postgres::types::ToSql + Sync); 3] = [&ns, &key, &gen];
        let mut rows = client.query_raw(&st, params).map_err(|e| self.err(e))?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let data: &[u8] = row.try_get(0).map_err(|e| self.err(e))?;
            f(data)?;
            n += 1;
        }
        Ok(n)
    }

    pub fn memo_chunks_count(&self, ns: &str, key: &str, gen: i64) -> Result<u64> {
        Ok(self
            .row(
                "SELECT count(*) FROM {s}.cairn_memo_chunk WHERE ns = $1 AND key = $2 AND gen = $3",
                &[&ns, &key, &gen],
            )?
            .map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    pub fn memo_chunks_drop(&self, ns: &str, key: &str, gen: i64) -> Result<u64> {
        self.exec(
            "DELETE FROM {s}.cairn_memo_chunk WHERE ns = $1 AND key = $2 AND gen = $3",
            &[&ns, &key, &gen],
        )
    }

    pub fn memo_chunks_drop_others(&self, ns: &str, key: &str, keep: i64) -> Result<u64> {
        self.exec(
            "DELETE FROM {s}.cairn_memo_chunk WHERE ns = $1 AND key = $2 AND gen <> $3",
            &[&ns, &key, &keep],
        )
    }

    /// Chunks whose key has neither an entry nor a live fill marker. The statement's one
    /// snapshot sees a computation either still marked or already stored, never between.
    pub fn memo_chunks_gc(&self, now: i64) -> Result<u64> {
        if self.row("SELECT 1 FROM {s}.cairn_memo_chunk LIMIT 1", &[])?.is_none() {
            return Ok(0);
        }
        self.exec(
            "DELETE FROM {s}.cairn_memo_chunk c WHERE NOT EXISTS \
               (SELECT 1 FROM {s}.cairn_cache e WHERE e.ns = c.ns AND e.key = c.key) \
             AND NOT EXISTS (SELECT 1 FROM {s}.cairn_cache_fill f WHERE f.ns = c.ns AND f.key = c.key AND f.expires_at > $1)",
            &[&now],
        )
    }

    /// The server holds the pages; nothing is cached here beyond the rows in flight.
    pub fn release_memory(&self) {}
}
