//! One error type for the whole library, and the classification behind exit codes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The result type of every fallible cairn operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in cairn.
///
/// Each message says what happened to which file and what to do next. Use [`Error::kind`] to
/// branch on the class of failure rather than matching variants, which may grow.
///
/// ```
/// use cairn::{ErrorKind, Store};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("not-a-db");
/// std::fs::write(&path, b"this is a text file, not SQLite, and long enough to be checked")?;
/// let err = Store::open(&path).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotADatabase);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process held the write lock for longer than the busy timeout.
    #[error(
        "{path}: still locked by another process after waiting {waited:?}; retry later, or raise the busy timeout"
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// How long cairn waited before giving up.
        waited: Duration,
    },

    /// The file exists but is not a SQLite database.
    #[error(
        "{path} is not a SQLite database (or it is encrypted); cairn left it untouched: choose another path"
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },

    /// The file is a damaged SQLite database.
    #[error(
        "{path} is corrupt ({detail}); cairn left it untouched: restore it from a backup, or move it aside to start afresh"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite or cairn found wrong.
        detail: String,
    },

    /// The file is a SQLite database that belongs to another application.
    #[error(
        "{path} is a SQLite database of another application (application_id {application_id}, {tables} schema objects); cairn will not modify it: use a separate file"
    )]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
        /// The `PRAGMA application_id` found.
        application_id: i32,
        /// How many tables, indexes and other schema objects the file holds.
        tables: i64,
    },

    /// A schema on a PostgreSQL server that holds another application's objects.
    #[error(
        "{path}: schema '{schema}' holds {objects} objects of another application; cairn will not modify it: choose another schema (?cairn_schema=NAME in the URL, or Options::schema)"
    )]
    ForeignSchema {
        /// The server, its URL without a password.
        path: PathBuf,
        /// The schema.
        schema: String,
        /// How many tables, indexes and other objects it holds.
        objects: i64,
    },

    /// The file's schema is newer than this code knows: refusing avoids a silent downgrade.
    #[error(
        "{path}: schema '{scope}' is at version {found}, newer than version {supported} that this program knows; upgrade the program instead of downgrading the file"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Whose schema: `cairn` for the store's own, or a migration scope.
        scope: String,
        /// The version in the file.
        found: i64,
        /// The newest version this code can handle.
        supported: i64,
    },

    /// A read-only open found a schema that needs migrating first.
    #[error(
        "{path}: schema '{scope}' is at version {found} and needs migrating to {expected}, which a read-only open cannot do; open it read-write once"
    )]
    SchemaTooOld {
        /// The file.
        path: PathBuf,
        /// Whose schema.
        scope: String,
        /// The version in the file.
        found: i64,
        /// The version this code needs.
        expected: i64,
    },

    /// A write was refused because the file, its directory or the store is read-only.
    #[error("{path} cannot be written: {detail}")]
    ReadOnly {
        /// The file.
        path: PathBuf,
        /// What refused the write.
        detail: String,
    },

    /// The disk is full. The transaction was rolled back; committed data is intact.
    #[error(
        "{path}: the disk is full; the transaction was rolled back and committed data is intact: free some space and retry"
    )]
    DiskFull {
        /// The file.
        path: PathBuf,
    },

    /// An operating-system error on a file or directory.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What cairn was doing ("create directory", "open", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// WAL journal mode could not be enabled and no fallback was allowed.
    #[error(
        "{path}: WAL journal mode is unavailable (the journal stayed '{mode}'; the filesystem may lack shared-memory support): put the file on a local filesystem, or allow a rollback-journal fallback"
    )]
    WalUnavailable {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },

    /// An argument was out of range or malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A statement of the caller's own ([`Store::query`](crate::Store::query),
    /// [`Store::execute`](crate::Store::execute), [`Tx::execute`](crate::Tx::execute)) failed
    /// on its own terms: a syntax error, an unknown table or column, a constraint it broke, a
    /// parameter of the wrong type or count. Its kind is [`ErrorKind::InvalidInput`]: the
    /// statement is the input to fix.
    #[error("{path}: your SQL statement failed ({detail}); fix the statement: {statement}")]
    Sql {
        /// The database file, or the server's URL without a password.
        path: PathBuf,
        /// What SQLite or the server said.
        detail: String,
        /// The statement, truncated.
        statement: String,
    },

    /// A stored value could not be decoded as the requested type.
    #[error("the value of '{key}' in namespace '{ns}' is not {expected}: {detail}")]
    Decode {
        /// The namespace.
        ns: String,
        /// The key.
        key: String,
        /// What the caller asked for ("UTF-8 text", "JSON", "an integer").
        expected: &'static str,
        /// Why decoding failed.
        detail: String,
    },

    /// A migration step failed; the file stays at the version before that step.
    #[error(
        "migration '{scope}' step {version} failed and was rolled back (the file stays at version {}): {source}", .version - 1
    )]
    Migration {
        /// The migration scope (`user_version` for a plain file).
        scope: String,
        /// The version the failed step would have reached.
        version: i64,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// A claim or lock was taken over by another worker after its lease ran out: the work
    /// done under it must not be recorded.
    #[error(
        "the {what} '{name}' held by '{holder}' was taken over after its lease ran out; do not record this work, and renew leases sooner"
    )]
    LeaseLost {
        /// "claim" or "lock".
        what: &'static str,
        /// The item id or lock name.
        name: String,
        /// The worker or owner that lost it.
        holder: String,
    },

    /// A durable run is held by another live attempt (another process, or another run guard of
    /// this one): one attempt at a time.
    #[error(
        "the run '{run}' is held by another attempt ({holder}, its lease until {until}); let it finish, or wait for it (--wait on the command line, the run's wait option in Rust and Python), or, if that process is gone on another host, let its lease run out"
    )]
    RunHeld {
        /// The run's id.
        run: String,
        /// Who holds it.
        holder: String,
        /// When its lease runs out unless renewed (RFC 3339).
        until: String,
    },

    /// A recorded step was asked for again with another definition (its version, or for the
    /// CLI its command): replaying its result would be silently stale.
    #[error(
        "the step '{step}' of run '{run}' was recorded with another definition ({recorded}, now {given}); to run it again, reset the run from it: cairn run reset {} --from {}", shell_word(run), shell_word(step)
    )]
    StepChanged {
        /// The run's id.
        run: String,
        /// The step's name.
        step: String,
        /// The recorded definition's fingerprint, shown.
        recorded: String,
        /// The one asked for.
        given: String,
    },

    /// The database server could not be reached, or the connection to it was lost.
    #[error(
        "{path}: the database server is unavailable ({detail}){}", if *.maybe_committed {
            "; the commit was sent and may or may not have taken effect: check before redoing work (completing a claim again is safe)"
        } else {
            ": check that the server runs and is reachable, then retry"
        }
    )]
    Unavailable {
        /// The server, its URL without a password.
        path: PathBuf,
        /// What failed.
        detail: String,
        /// True if the connection was lost after a commit was sent: the commit may have happened.
        maybe_committed: bool,
    },

    /// The server refused the connection: the role may not log in, does not exist or gave the
    /// wrong password, or the database does not exist.
    #[error(
        "{path}: the server refused the connection ({detail}): check the role, its password and the database in the URL"
    )]
    Refused {
        /// The server, its URL without a password.
        path: PathBuf,
        /// What the server said.
        detail: String,
    },

    /// The server ran out of shared memory for its lock table (its other sessions' locks, or
    /// this transaction's own). Nothing of the transaction was committed.
    #[error(
        "{path}: the server ran out of room in its lock table ({detail}); nothing of the transaction was committed: \
         retry when other sessions hold fewer locks, write fewer tables or namespaces in one transaction, \
         or raise max_locks_per_transaction in postgresql.conf (and restart the server)"
    )]
    ServerOutOfLocks {
        /// The server, its URL without a password.
        path: PathBuf,
        /// What the server said.
        detail: String,
    },

    /// The server ended the transaction because it conflicted with another one (a deadlock,
    /// SQLSTATE 40P01, or a serialization failure, 40001): nothing of it was committed, and
    /// it can be run again at once. Its kind is [`ErrorKind::Busy`].
    #[error(
        "{path}: the server ended this transaction to resolve a conflict with another writer ({detail}); nothing of it was committed: retry it"
    )]
    Conflict {
        /// The server, its URL without a password.
        path: PathBuf,
        /// What the server said.
        detail: String,
    },

    /// Any other failure reported by a database server.
    #[error("{path}: PostgreSQL error: {source}")]
    Server {
        /// The server, its URL without a password.
        path: PathBuf,
        /// The server's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Any other SQLite failure.
    #[error("{path}: SQLite error: {source}")]
    Sqlite {
        /// The file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The class of an [`Error`]: what callers branch on, and what the CLI maps to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Locked by another process beyond the busy timeout.
    Busy,
    /// Not a SQLite database.
    NotADatabase,
    /// A damaged database.
    Corrupt,
    /// A SQLite database of another application.
    ForeignDatabase,
    /// A schema newer than the code.
    SchemaTooNew,
    /// A schema that needs migrating, seen by a read-only open.
    SchemaTooOld,
    /// A write refused by permissions or a read-only open.
    ReadOnly,
    /// No space left on the device.
    DiskFull,
    /// An operating-system error.
    Io,
    /// WAL mode unavailable.
    WalUnavailable,
    /// A bad argument.
    InvalidInput,
    /// A stored value of another type than requested.
    Decode,
    /// A failed migration step.
    Migration,
    /// A claim or lock lost to another worker.
    LeaseLost,
    /// A durable run held by another live attempt.
    RunHeld,
    /// A recorded step asked for with another definition.
    StepChanged,
    /// The database server cannot be reached or refuses the connection (a role that may not
    /// log in, a database that does not exist), the connection was lost, or the server ran
    /// out of room in its lock table.
    Unavailable,
    /// Anything else from the database.
    Internal,
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Busy { .. } | Error::Conflict { .. } => ErrorKind::Busy,
            Error::NotADatabase { .. } => ErrorKind::NotADatabase,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::ForeignDatabase { .. } | Error::ForeignSchema { .. } => ErrorKind::ForeignDatabase,
            Error::SchemaTooNew { .. } => ErrorKind::SchemaTooNew,
            Error::SchemaTooOld { .. } => ErrorKind::SchemaTooOld,
            Error::ReadOnly { .. } => ErrorKind::ReadOnly,
            Error::DiskFull { .. } => ErrorKind::DiskFull,
            Error::Io { .. } => ErrorKind::Io,
            Error::WalUnavailable { .. } => ErrorKind::WalUnavailable,
            Error::InvalidInput(_) | Error::Sql { .. } => ErrorKind::InvalidInput,
            Error::Decode { .. } => ErrorKind::Decode,
            Error::Migration { .. } => ErrorKind::Migration,
            Error::LeaseLost { .. } => ErrorKind::LeaseLost,
            Error::RunHeld { .. } => ErrorKind::RunHeld,
            Error::StepChanged { .. } => ErrorKind::StepChanged,
            Error::Unavailable { .. } | Error::Refused { .. } | Error::ServerOutOfLocks { .. } => {
                ErrorKind::Unavailable
            }
            Error::Server { .. } | Error::Sqlite { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(msg: impl fmt::Display) -> Self {
        Error::InvalidInput(msg.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message names the file and says what to do; pinned in one table so a careless
    /// edit that drops the advice shows up here.
    #[test]
    fn every_message_names_the_file_and_the_next_step() {
        let p = || PathBuf::from("/s/state.db");
        let cases: Vec<(Error, ErrorKind, &str)> = vec![
            (
                Error::Busy { path: p(), waited: Duration::from_secs(5) },
                ErrorKind::Busy,
                "/s/state.db: still locked by another process after waiting 5s; retry later, or raise the busy timeout",
            ),
            (
                Error::NotADatabase { path: p() },
                ErrorKind::NotADatabase,
                "/s/state.db is not a SQLite database (or it is encrypted); cairn left it untouched: choose another path",
            ),
            (
                Error::Corrupt { path: p(), detail: "truncated".into() },
                ErrorKind::Corrupt,
                "/s/state.db is corrupt (truncated); cairn left it untouched: restore it from a backup, or move it aside to start afresh",
            ),
            (
                Error::ForeignDatabase { path: p(), application_id: 7, tables: 3 },
                ErrorKind::ForeignDatabase,
                "/s/state.db is a SQLite database of another application (application_id 7, 3 schema objects); cairn will not modify it: use a separate file",
            ),
            (
                Error::ForeignSchema { path: "postgres://u@h/db".into(), schema: "app".into(), objects: 4 },
                ErrorKind::ForeignDatabase,
                "postgres://u@h/db: schema 'app' holds 4 objects of another application; cairn will not modify it: choose another schema (?cairn_schema=NAME in the URL, or Options::schema)",
            ),
            (
                Error::SchemaTooNew { path: p(), scope: "cairn".into(), found: 9, supported: 1 },
                ErrorKind::SchemaTooNew,
                "/s/state.db: schema 'cairn' is at version 9, newer than version 1 that this program knows; upgrade the program instead of downgrading the file",
            ),
            (
                Error::SchemaTooOld { path: p(), scope: "cairn".into(), found: 0, expected: 1 },
                ErrorKind::SchemaTooOld,
                "/s/state.db: schema 'cairn' is at version 0 and needs migrating to 1, which a read-only open cannot do; open it read-write once",
            ),
            (
                Error::ReadOnly { path: p(), detail: "opened read-only".into() },
                ErrorKind::ReadOnly,
                "/s/state.db cannot be written: opened read-only",
            ),
            (
                Error::DiskFull { path: p() },
                ErrorKind::DiskFull,
                "/s/state.db: the disk is full; the transaction was rolled back and committed data is intact: free some space and retry",
            ),
            (
                Error::Io {
                    action: "create directory",
                    path: PathBuf::from("/s"),
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                },
                ErrorKind::Io,
                "cannot create directory /s: permission denied",
            ),
            (
                Error::WalUnavailable { path: p(), mode: "delete".into() },
                ErrorKind::WalUnavailable,
                "/s/state.db: WAL journal mode is unavailable (the journal stayed 'delete'; the filesystem may lack shared-memory support): put the file on a local filesystem, or allow a rollback-journal fallback",
            ),
            (
                Error::invalid("key must not be empty"),
                ErrorKind::InvalidInput,
                "invalid input: key must not be empty",
            ),
            (
                Error::Sql {
                    path: p(),
                    detail: "near \"SELEC\": syntax error".into(),
                    statement: "SELEC 1".into(),
                },
                ErrorKind::InvalidInput,
                "/s/state.db: your SQL statement failed (near \"SELEC\": syntax error); fix the statement: SELEC 1",
            ),
            (
                Error::Decode { ns: "n".into(), key: "k".into(), expected: "an integer", detail: "found \"x\"".into() },
                ErrorKind::Decode,
                "the value of 'k' in namespace 'n' is not an integer: found \"x\"",
            ),
            (
                Error::Migration { scope: "app".into(), version: 3, source: Box::new(Error::invalid("boom")) },
                ErrorKind::Migration,
                "migration 'app' step 3 failed and was rolled back (the file stays at version 2): invalid input: boom",
            ),
            (
                Error::Unavailable { path: p(), detail: "connection closed".into(), maybe_committed: false },
                ErrorKind::Unavailable,
                "/s/state.db: the database server is unavailable (connection closed): check that the server runs and is reachable, then retry",
            ),
            (
                Error::Unavailable { path: p(), detail: "connection closed".into(), maybe_committed: true },
                ErrorKind::Unavailable,
                "/s/state.db: the database server is unavailable (connection closed); the commit was sent and may or may not have taken effect: check before redoing work (completing a claim again is safe)",
            ),
            (
                Error::Refused {
                    path: "postgres://u@h/db".into(),
                    detail: "role \"u\" is not permitted to log in (SQLSTATE 28000)".into(),
                },
                ErrorKind::Unavailable,
                "postgres://u@h/db: the server refused the connection (role \"u\" is not permitted to log in (SQLSTATE 28000)): check the role, its password and the database in the URL",
            ),
            (
                Error::Conflict {
                    path: "postgres://u@h/db".into(),
                    detail: "deadlock detected (SQLSTATE 40P01)".into(),
                },
                ErrorKind::Busy,
                "postgres://u@h/db: the server ended this transaction to resolve a conflict with another writer (deadlock detected (SQLSTATE 40P01)); nothing of it was committed: retry it",
            ),
            (
                Error::ServerOutOfLocks {
                    path: "postgres://u@h/db".into(),
                    detail: "out of shared memory (SQLSTATE 53200)".into(),
                },
                ErrorKind::Unavailable,
                "postgres://u@h/db: the server ran out of room in its lock table (out of shared memory (SQLSTATE 53200)); nothing of the transaction was committed: retry when other sessions hold fewer locks, write fewer tables or namespaces in one transaction, or raise max_locks_per_transaction in postgresql.conf (and restart the server)",
            ),
            (
                Error::LeaseLost { what: "claim", name: "item-7".into(), holder: "w1".into() },
                ErrorKind::LeaseLost,
                "the claim 'item-7' held by 'w1' was taken over after its lease ran out; do not record this work, and renew leases sooner",
            ),
            (
                Error::RunHeld { run: "deploy-1".into(), holder: "pid 42 on this host".into(), until: "2026-12-07T05:00:00.000Z".into() },
                ErrorKind::RunHeld,
                "the run 'deploy-1' is held by another attempt (pid 42 on this host, its lease until 2026-12-07T05:00:00.000Z); let it finish, or wait for it (--wait on the command line, the run's wait option in Rust and Python), or, if that process is gone on another host, let its lease run out",
            ),
            (
                Error::StepChanged { run: "deploy-1".into(), step: "build".into(), recorded: "version 1".into(), given: "version 2".into() },
                ErrorKind::StepChanged,
                "the step 'build' of run 'deploy-1' was recorded with another definition (version 1, now version 2); to run it again, reset the run from it: cairn run reset deploy-1 --from build",
            ),
        ];
        for (err, kind, msg) in cases {
            assert_eq!(err.kind(), kind, "{err:?}");
            assert_eq!(err.to_string(), msg);
        }
    }
}

/// `word` as one word of a shell command line, for the commands error messages suggest:
/// as it is when that is safe, else in single quotes (a quote inside as `'\''`).
pub(crate) fn shell_word(word: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return std::borrow::Cow::Borrowed(word);
    }
    std::borrow::Cow::Owned(format!("'{}'", word.replace('\'', "'\\''")))
}

#[cfg(test)]
mod shell_word_tests {
    use super::shell_word;

    /// The reset command a StepChanged error suggests can be pasted into a shell as it is.
    #[test]
    fn a_suggested_commands_words_are_quoted_when_they_need_it() {
        assert_eq!(shell_word("deploy-1"), "deploy-1");
        assert_eq!(shell_word("deploy prod"), "'deploy prod'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
