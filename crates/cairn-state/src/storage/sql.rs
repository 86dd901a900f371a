//! A user's own SQL: the part of the engine contract it uses.

use crate::codec::{Rows, SqlValue};
use crate::error::Result;

engine_ops! {
    /// A user's own SQL, fenced off from cairn's tables.
    trait SqlOps {
        /// One statement of the user's own, fenced off from cairn's tables; its rows.
        fn user_sql(&self, sql: &str, params: &[SqlValue], read_only: bool) -> Result<Rows>;
    }
}
