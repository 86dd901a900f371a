//! The checkpoints' part of the engine contract.

use crate::codec::ValueKind;
use crate::error::Result;
use crate::storage::Stored;

engine_ops! {
    /// Checkpoints: one value per job.
    trait CheckpointOps {
        /// A job's checkpoint.
        fn checkpoint_get(&self, job: &str) -> Result<Option<Stored>>;
        /// Save a job's checkpoint.
        fn checkpoint_set(&self, job: &str, value: (&[u8], ValueKind), now: i64) -> Result<()>;
        /// Delete a job's checkpoint; true if there was one.
        fn checkpoint_delete(&self, job: &str) -> Result<bool>;
    }
}
