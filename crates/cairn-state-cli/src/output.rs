//! Failures and printing: data to stdout, one-line messages to stderr.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use crate::exit;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// From the library.
    Cairn(cairn::Error),
    /// Bad input the parser could not see (e.g. an empty id on stdin).
    Usage(String),
    /// Reading stdin or writing a file failed.
    Io(String, io::Error),
    /// A command given to memo or lock could not be started.
    Spawn(String, io::Error),
    /// The reader of stdout went away: a quiet success, as for `cairn ledger filter | head`.
    BrokenPipe,
    /// A command that works on an existing store (backup, vacuum) found none at the path: a
    /// mistyped --db must not make a store only to copy or compact it.
    NoStore(String, &'static str),
}

impl Failure {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Cairn(e) => exit::code_of(e.kind()),
            Failure::Usage(_) => exit::USAGE,
            Failure::Io(..) => exit::ACCESS,
            Failure::Spawn(_, e) if e.kind() == io::ErrorKind::NotFound => exit::NOT_FOUND,
            Failure::Spawn(..) => exit::CANNOT_EXECUTE,
            Failure::BrokenPipe => exit::OK,
            Failure::NoStore(..) => exit::ACCESS,
        }
    }

    /// A failure to read or write something other than stdout.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Failure {
        let what = what.into();
        move |e| Failure::Io(what, e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Cairn(e) => write!(f, "{e}"),
            Failure::Usage(msg) => write!(f, "{msg}"),
            Failure::Io(what, e) => write!(f, "{what}: {e}"),
            Failure::Spawn(cmd, e) if e.kind() == io::ErrorKind::NotFound => {
                write!(f, "{cmd}: command not found; check the name and $PATH")
            }
            Failure::Spawn(cmd, e) => write!(f, "{cmd}: cannot execute ({e}); check its permissions"),
            Failure::BrokenPipe => write!(f, "broken pipe"),
            Failure::NoStore(path, what) => {
                write!(f, "no store at {path}: nothing to {what}; check --db and $CAIRN_DB")
            }
        }
    }
}

impl From<cairn::Error> for Failure {
    fn from(e: cairn::Error) -> Self {
        Failure::Cairn(e)
    }
}

/// A result of a command.
pub type Outcome<T = u8> = Result<T, Failure>;

/// Buffered stdout whose write errors become failures (a closed pipe a quiet one).
pub struct Out {
    inner: io::BufWriter<io::StdoutLock<'static>>,
    terminal: bool,
}

impl Out {
    /// Lock stdout for the command's duration.
    pub fn new() -> Self {
        Out {
            inner: io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
            terminal: io::stdout().is_terminal(),
        }
    }

    /// Write a value exactly as stored, and a newline after it when stdout is a terminal and
    /// the value does not end with one (so the shell's prompt starts on its own line; a pipe
    /// or a file gets the bytes unchanged).
    pub fn value(&mut self, b: &[u8]) -> Outcome<()> {
        self.bytes(b)?;
        if needs_newline(b, self.terminal) {
            self.bytes(b"\n")?;
        }
        Ok(())
    }

    /// Write bytes exactly as given.
    pub fn bytes(&mut self, b: &[u8]) -> Outcome<()> {
        self.inner.write_all(b).map_err(stdout_failure)
    }

    /// Write a line.
    pub fn line(&mut self, s: impl fmt::Display) -> Outcome<()> {
        writeln!(self.inner, "{s}").map_err(stdout_failure)
    }

    /// Write a JSON value as one line.
    pub fn json(&mut self, v: &serde_json::Value) -> Outcome<()> {
        self.line(v)
    }

    /// Push what is buffered to the reader now (a pipeline's next stage is waiting).
    pub fn flush(&mut self) -> Outcome<()> {
        self.inner.flush().map_err(stdout_failure)
    }
}

/// Whether a value printed to stdout needs a newline after it: on a terminal, when it does
/// not end with one (an empty value prints nothing).
fn needs_newline(value: &[u8], terminal: bool) -> bool {
    terminal && !value.is_empty() && !value.ends_with(b"\n")
}

/// A failure to write to stdout: a closed pipe is a quiet success, anything else an I/O failure.
pub fn stdout_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::BrokenPipe
    } else {
        Failure::Io("writing to stdout".into(), e)
    }
}

/// Print a message line to stderr (never stdout: that is for data).
pub fn note(msg: impl fmt::Display) {
    eprintln!("cairn: {msg}");
}

#[cfg(test)]
mod tests {
    use super::needs_newline;

    #[test]
    fn a_value_on_a_terminal_ends_with_a_newline_and_in_a_pipe_is_unchanged() {
        assert!(needs_newline(b"hello", true));
        assert!(!needs_newline(b"hello\n", true), "one newline is enough");
        assert!(!needs_newline(b"", true), "an empty value prints nothing");
        assert!(!needs_newline(b"hello", false), "a pipe gets the bytes as stored");
    }
}
