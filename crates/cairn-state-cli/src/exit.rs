//! Exit codes: the one place that maps what went wrong to the number a script branches on.

use cairn::ErrorKind;

/// Success, a hit, or true.
pub const OK: u8 = 0;
/// A clean "no": a miss, not done, a lock held, a claim not won or lost.
pub const NO: u8 = 1;
/// A usage error: unknown flag, invalid duration, empty key or id, malformed input, a
/// statement of the user's own SQL that fails (`cairn::Error::Sql`).
pub const USAGE: u8 = 2;
/// The database file or its directory cannot be read or written (permissions, disk full,
/// I/O error, a file system without the shared memory WAL needs), or the database server
/// cannot be reached.
pub const ACCESS: u8 = 3;
/// The file is not a cairn store: not SQLite, corrupt, or another application's database.
pub const NOT_A_STORE: u8 = 4;
/// The store's schema is from a newer cairn (or, for a read-only open, an older one).
pub const SCHEMA: u8 = 5;
/// Another process kept the store locked longer than the busy timeout.
pub const BUSY: u8 = 6;
/// Stored data cannot be used as asked (e.g. incr of a non-integer), or a migration failed.
pub const DATA: u8 = 7;
/// An unexpected error of SQLite or of the database server.
pub const INTERNAL: u8 = 8;
/// The command given to memo or lock exists but cannot be executed.
pub const CANNOT_EXECUTE: u8 = 126;
/// The command given to memo or lock was not found.
pub const NOT_FOUND: u8 = 127;

/// The exit code for a library error.
pub fn code_of(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => USAGE,
        ErrorKind::LeaseLost | ErrorKind::RunHeld => NO,
        ErrorKind::ReadOnly
        | ErrorKind::DiskFull
        | ErrorKind::Io
        | ErrorKind::WalUnavailable
        | ErrorKind::Unavailable => ACCESS,
        ErrorKind::NotADatabase | ErrorKind::Corrupt | ErrorKind::ForeignDatabase => NOT_A_STORE,
        ErrorKind::SchemaTooNew | ErrorKind::SchemaTooOld => SCHEMA,
        ErrorKind::Busy => BUSY,
        ErrorKind::Decode | ErrorKind::Migration | ErrorKind::StepChanged => DATA,
        _ => INTERNAL,
    }
}

/// The exit code for memo's and lock's command that ran with `status` (as a shell reports it,
/// 128+N if killed by signal N): that status, passed on.
pub fn of_command(status: i32) -> u8 {
    u8::try_from(status & 0xff).unwrap_or(1)
}

/// The EXIT STATUS section of `--help` and of the man page.
pub const HELP: &str = "\
Exit status:
  0    success, a hit, or true
  1    a clean \"no\": a miss, not done, lock held, claim not won or lost;
       doctor: something is wrong
  2    usage error: unknown flag, invalid duration, empty key or id, malformed input
  3    the database file or its directory cannot be read or written, or its server reached
  4    the file is not a cairn store (not SQLite, corrupt, another application's)
  5    the store's schema is from a newer cairn
  6    the store stayed locked by another process beyond the busy timeout
  7    stored data cannot be used as asked (e.g. incr of text); a migration failed
  8    unexpected error of SQLite or of the database server
  126  memo/lock: the command cannot be executed;  127: not found
memo and lock otherwise exit with the command's status (128+N if killed by signal N);
lock exits 1 instead of 0 if its lock was lost while the command ran.
Data goes to stdout, messages to stderr (one line, starting \"cairn: \").

Environment:
  CAIRN_DB         the store's file when --db is not given
  XDG_STATE_HOME   else the store is $XDG_STATE_HOME/cairn/state.db
  CAIRN_NS         the namespace when -n is not given (checkpoint and lock have none)
  CAIRN_DURABILITY --durability when it is not given: normal or full
  CAIRN_MEMO_TTL   memo's --ttl when it is not given";

/// The short form, for `-h`.
pub const SHORT_HELP: &str =
    "Exit status: 0 ok/hit/true, 1 a clean no, 2 usage, 3-8 errors (see --help), memo/lock: the command's.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_maps_to_a_documented_code_of_three_or_more_except_usage_and_lost() {
        use ErrorKind::*;
        for kind in [
            Busy,
            NotADatabase,
            Corrupt,
            ForeignDatabase,
            SchemaTooNew,
            SchemaTooOld,
            ReadOnly,
            DiskFull,
            Io,
            WalUnavailable,
            Unavailable,
            Decode,
            Migration,
            Internal,
        ] {
            let code = code_of(kind);
            assert!((3..=8).contains(&code), "{kind:?} -> {code}");
            assert!(HELP.contains(&format!("\n  {code}  ")), "{code} undocumented");
        }
        assert_eq!(code_of(InvalidInput), USAGE);
        assert_eq!(code_of(LeaseLost), NO);
    }

    #[test]
    fn a_failing_statement_of_the_users_own_sql_is_a_usage_error_not_an_internal_one() {
        let sql = cairn::Error::Sql {
            path: "state.db".into(),
            detail: "near \"SELEC\": syntax error".into(),
            statement: "SELEC 1".into(),
        };
        assert_eq!(code_of(sql.kind()), USAGE);
    }
}
