//! The rate limiters' part of the engine contract, and the row it returns.

use crate::error::Result;

engine_ops! {
    /// Rate limits across processes and hosts: one timestamp per name (GCRA).
    trait LimitOps {
        /// Take a slot of `name` if its theoretical arrival time, less `tolerance`, is not after
        /// now, moving it to `max(tat, now) + interval`, in one atomic statement (all in
        /// microseconds). `now`: the time to judge on; `None`: the engine's own clock, read by
        /// the statement (a server's; an engine without one refuses `None`).
        fn limit_take(&self, name: &str, interval: i64, tolerance: i64, now: Option<i64>) -> Result<LimitRow>;
    }
}

/// What [`LimitOps::limit_take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitRow {
    /// A slot was taken.
    pub taken: bool,
    /// The name's theoretical arrival time after the statement (taken), or as last seen
    /// (refused: the time the next slot frees is `tat - tolerance`; `None` if no row was seen,
    /// a name another process created at that very moment).
    pub tat: Option<i64>,
    /// The time the decision was made on, in microseconds.
    pub now: i64,
}
