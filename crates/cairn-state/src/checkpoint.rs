//! Checkpoints: a job's named position (a cursor, a page token, an offset), saved in the same
//! transaction as the ledger marks it belongs to, so that progress and position never
//! disagree after a crash.

use crate::codec::{Decode, Encode};
use crate::error::{Error, Result};
use crate::names::validate_name;
use crate::storage::CheckpointOps;
use crate::store::Store;
use crate::tx::Tx;

impl Store {
    /// The checkpoint of `job`; see [`Checkpoint`]. Inside [`Store::transaction`] use
    /// [`Tx::checkpoint`].
    pub fn checkpoint<'a>(&'a self, job: &'a str) -> Checkpoint<'a> {
        Checkpoint::new(self, job, false)
    }
}

impl Tx<'_> {
    /// The checkpoint of `job`, inside this transaction.
    pub fn checkpoint<'a>(&'a self, job: &'a str) -> Checkpoint<'a> {
        Checkpoint::new(self.store(), job, true)
    }
}

/// A job's checkpoint, from [`Store::checkpoint`] or [`Tx::checkpoint`](crate::Tx::checkpoint).
///
/// ```
/// use cairn::{Error, Json, Store};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Cursor { page: u32, token: String }
///
/// let store = Store::open_in_memory()?;
/// // The marks of a page and the cursor past it commit together, or not at all.
/// store.transaction(|tx| {
///     tx.ledger("rows").mark_done_many(["r1", "r2"])?;
///     tx.checkpoint("export").set(Json(Cursor { page: 2, token: "abc".into() }))?;
///     Ok::<_, Error>(())
/// })?;
/// let Json(cursor) = store.checkpoint("export").get::<Json<Cursor>>()?.unwrap();
/// assert_eq!(cursor.page, 2);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint<'a> {
    store: &'a Store,
    job: &'a str,
    in_tx: bool,
}

impl<'a> Checkpoint<'a> {
    pub(crate) fn new(store: &'a Store, job: &'a str, in_tx: bool) -> Self {
        Checkpoint { store, job, in_tx }
    }

    /// The saved value, or `None` if the job has none.
    pub fn get<T: Decode>(&self) -> Result<Option<T>> {
        validate_job(self.job)?;
        self.store
            .engine
            .checkpoint_get(self.job)?
            .map(|v| {
                T::decode_typed(v.kind, v.bytes).map_err(|e| Error::Decode {
                    ns: "checkpoint".into(),
                    key: self.job.to_owned(),
                    expected: e.expected,
                    detail: e.detail,
                })
            })
            .transpose()
    }

    /// Save `value`, replacing the previous one.
    pub fn set(&self, value: impl Encode) -> Result<()> {
        validate_job(self.job)?;
        let bytes = value.encode()?;
        self.write(|s| s.engine.checkpoint_set(self.job, (&bytes, value.kind()), s.now()))
    }

    /// Remove the checkpoint. True if there was one.
    pub fn delete(&self) -> Result<bool> {
        validate_job(self.job)?;
        self.write(|s| s.engine.checkpoint_delete(self.job))
    }

    fn write<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        if self.in_tx {
            f(self.store)
        } else {
            self.store.write_tx(f)
        }
    }
}

fn validate_job(job: &str) -> Result<()> {
    validate_name("job name", job, crate::MAX_KEY_BYTES)
}
