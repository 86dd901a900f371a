//! The stored ledger states as SQL text. The ledger's statements name a state as a literal,
//! not a bound parameter, so that the planner sees which state a statement reads (and each
//! statement keeps one fixed text); each code is written here once, beside a check that it is
//! the code of the const of the same name in `storage`.
//!
//! `state!(done)` expands to the string literal `"2"`, to be spliced with `concat!`:
//! `concat!("SELECT 1 FROM cairn_ledger WHERE ns = ?1 AND state = ", state!(done))` is the
//! literal `"SELECT 1 FROM cairn_ledger WHERE ns = ?1 AND state = 2"`. A statement built at
//! run time with `format!` uses the consts instead.
//!
//! The schema migrations (`sqlite/schema.rs`, `postgres/schema.rs`) keep their literals: a
//! step already applied to a file must stay as it was written.

/// The code of a stored ledger state (`pending`, `claimed`, `done`, `failed`, `cancelled`) as a string
/// literal, for `concat!`.
macro_rules! state {
    (pending) => {
        "0"
    };
    (claimed) => {
        "1"
    };
    (done) => {
        "2"
    };
    (failed) => {
        "3"
    };
    (cancelled) => {
        "4"
    };
    (waiting) => {
        "5"
    };
}
pub(crate) use state;

/// The value of a code as `state!` writes it (decimal digits), at compile time.
const fn code(sql: &str) -> i64 {
    let digits = sql.as_bytes();
    assert!(!digits.is_empty());
    let mut value = 0;
    let mut i = 0;
    while i < digits.len() {
        assert!(digits[i].is_ascii_digit());
        value = value * 10 + (digits[i] - b'0') as i64;
        i += 1;
    }
    value
}

// A code written apart from its const fails the build, not only the test below.
const _: () = assert!(
    code(state!(pending)) == super::PENDING
        && code(state!(claimed)) == super::CLAIMED
        && code(state!(done)) == super::DONE
        && code(state!(failed)) == super::FAILED
        && code(state!(cancelled)) == super::CANCELLED
        && code(state!(waiting)) == super::WAITING,
    "a code in state! differs from its const in storage"
);

#[cfg(test)]
mod tests {
    use super::super::{CANCELLED, CLAIMED, DONE, FAILED, PENDING, WAITING};

    /// Each state's SQL text is its const written in decimal, nothing around it, and the
    /// codes differ.
    #[test]
    fn the_sql_codes_are_the_stored_state_consts() {
        let codes = [
            (state!(pending), PENDING),
            (state!(claimed), CLAIMED),
            (state!(done), DONE),
            (state!(failed), FAILED),
            (state!(cancelled), CANCELLED),
            (state!(waiting), WAITING),
        ];
        for (sql, code) in codes {
            assert_eq!(sql, code.to_string(), "the SQL text of state {code}");
            assert_eq!(sql.parse::<i64>(), Ok(code));
        }
        let distinct: std::collections::HashSet<i64> = codes.iter().map(|c| c.1).collect();
        assert_eq!(distinct.len(), codes.len());
        assert_eq!(
            concat!("WHERE state IN (", state!(done), ", ", state!(failed), ")"),
            format!("WHERE state IN ({DONE}, {FAILED})")
        );
    }
}
