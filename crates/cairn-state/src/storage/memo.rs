//! The memo outputs' part of the engine contract: chunks of large outputs.

use crate::error::Result;

engine_ops! {
    /// The chunks of large memo outputs.
    trait MemoOps {
        /// Store one chunk of a memo result's output (`gen`: which result of the key).
        fn memo_chunk_put(&self, ns: &str, key: &str, gen: i64, seq: i64, data: &[u8]) -> Result<()>;
        /// Hand a result's chunks to `f` in order, all from one snapshot; how many there were.
        fn memo_chunks_each(&self, ns: &str, key: &str, gen: i64, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64>;
        /// How many chunks a result has.
        fn memo_chunks_count(&self, ns: &str, key: &str, gen: i64) -> Result<u64>;
        /// Delete a result's chunks; how many.
        fn memo_chunks_drop(&self, ns: &str, key: &str, gen: i64) -> Result<u64>;
        /// Delete the chunks of a key's other results; how many.
        fn memo_chunks_drop_others(&self, ns: &str, key: &str, keep: i64) -> Result<u64>;
        /// Delete the chunks of keys that have neither an entry nor a live fill marker; how many.
        fn memo_chunks_gc(&self, now: i64) -> Result<u64>;
    }
}
