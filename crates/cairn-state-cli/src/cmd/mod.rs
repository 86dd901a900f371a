//! One function per command: parse results in, library calls, printed results out.

mod batch;
mod cache;
mod checkpoint;
mod generate;
mod job;
mod ledger;
mod limit;
mod lock;
mod maintenance;
mod memo;
mod run;
mod signals;
mod step;
mod ui;

use std::ffi::OsString;
use std::io::{self, BufRead, Read};
use std::path::PathBuf;
use std::process;

use cairn::{Options, Store};

use crate::cli::{Cli, Command};
use crate::output::{note, Failure, Outcome};

/// What every command gets: the global options.
pub struct Ctx {
    db: Option<PathBuf>,
    ns: Option<String>,
    json: bool,
    busy_timeout: std::time::Duration,
    durability: cairn::Durability,
}

impl Ctx {
    /// The namespace given, or `default`.
    fn ns(&self) -> &str {
        self.ns.as_deref().unwrap_or("default")
    }

    fn path(&self) -> Outcome<PathBuf> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => Ok(cairn::default_path()?),
        }
    }

    fn open(&self) -> Outcome<Store> {
        self.open_with(Options::new())
    }

    /// For a command that only reads: a store that cannot be written (write-protected, in a
    /// read-only directory or file system) is opened read-only, hits not counted, instead of
    /// refused; a store that does not exist yet reads as an empty one and is not created (a
    /// mistyped --db must not look like a fresh start), which stderr says.
    fn open_for_reading(&self) -> Outcome<Store> {
        let store =
            self.open_with(Options::new().read_only_if_unwritable(true).read_missing_as_empty(true))?;
        if store.is_missing() {
            note(format_args!("no store at {} yet; the first write creates it", store.path().display()));
        }
        Ok(store)
    }

    /// For a command that only makes sense on a store that exists (`what` it would do, for the
    /// message): none at the path is refused (exit 3) and nothing is created.
    fn open_existing(&self, what: &'static str) -> Outcome<Store> {
        let store = self.open_with(Options::new().read_missing_as_empty(true))?;
        if store.is_missing() {
            return Err(Failure::NoStore(store.path().display().to_string(), what));
        }
        Ok(store)
    }

    fn open_with(&self, options: Options) -> Outcome<Store> {
        Ok(options.busy_timeout(self.busy_timeout).durability(self.durability).open(self.path()?)?)
    }
}

/// Run the parsed command; the exit code on success.
pub fn run(cli: Cli) -> Outcome {
    let ctx = Ctx {
        db: cli.db,
        ns: cli.ns,
        json: cli.json,
        busy_timeout: cli.busy_timeout,
        durability: cli.durability,
    };
    match cli.command {
        Command::Cache(c) => cache::run(&ctx, c),
        Command::Memo(m) => memo::run(&ctx, m),
        Command::Ledger(c) => ledger::run(&ctx, c),
        Command::Checkpoint(c) => checkpoint::run(&ctx, c),
        Command::Job(j) => job::run(&ctx, j),
        Command::Lock(l) => lock::run(&ctx, l),
        Command::Limit(l) => limit::run(&ctx, l),
        Command::Step(s) => step::run(&ctx, s),
        Command::Run(r) => run::run(&ctx, r),
        Command::Batch => batch::run(&ctx),
        Command::Migrate(m) => maintenance::migrate(&ctx, m),
        Command::Stats(args) => maintenance::stats(&ctx, args),
        Command::Doctor => maintenance::doctor(&ctx),
        Command::Backup { path } => maintenance::backup(&ctx, &path),
        Command::Vacuum => maintenance::vacuum(&ctx),
        Command::Ui(args) => ui::run(&ctx, args),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man { command, dir } => generate::man(&command, dir.as_deref()),
    }
}

/// A value given as an argument, else all of stdin (binary-safe), of the type `--type` says:
/// by default text if it is UTF-8, else bytes.
fn value_or_stdin(value: Option<OsString>, kind: &crate::cli::KindArgs) -> Outcome<cairn::Value> {
    use crate::cli::Kind;
    use cairn::{Value, ValueKind};
    let bytes = match value {
        Some(v) => os_bytes(v),
        None => {
            let mut buf = Vec::new();
            io::stdin().lock().read_to_end(&mut buf).map_err(Failure::io("reading stdin"))?;
            buf
        }
    };
    let kind = match kind.kind {
        None => return Ok(Value::text_or_bytes(bytes)),
        Some(Kind::Text) => ValueKind::Text,
        Some(Kind::Bytes) => ValueKind::Bytes,
        Some(Kind::Int) => ValueKind::Int,
        Some(Kind::Float) => ValueKind::Float,
        Some(Kind::Json) => ValueKind::Json,
    };
    Ok(Value::from_kind(kind, bytes)?)
}

#[cfg(unix)]
fn os_bytes(v: OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    v.into_vec()
}

#[cfg(not(unix))]
fn os_bytes(v: OsString) -> Vec<u8> {
    v.to_string_lossy().into_owned().into_bytes()
}

/// Ids from stdin, one per line, in chunks of at most `chunk`: each chunk is handed to `f`
/// before the next is read, so a pipeline streams and memory stays bounded. Blank lines are
/// skipped and a trailing `\r` is dropped (files written on Windows); a line that is not
/// UTF-8 is a usage error naming its number.
fn stdin_ids(chunk: usize, mut f: impl FnMut(Vec<String>) -> Outcome<()>) -> Outcome<()> {
    let stdin = io::stdin().lock();
    let mut ids = Vec::with_capacity(chunk);
    for (i, line) in stdin.split(b'\n').enumerate() {
        let mut line = line.map_err(Failure::io("reading stdin"))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        let id = String::from_utf8(line)
            .map_err(|_| Failure::Usage(format!("stdin line {}: ids must be UTF-8 text", i + 1)))?;
        ids.push(id);
        if ids.len() == chunk {
            f(std::mem::replace(&mut ids, Vec::with_capacity(chunk)))?;
        }
    }
    if !ids.is_empty() {
        f(ids)?;
    }
    Ok(())
}

/// The command given after `--` (memo, lock): its program with its arguments, not started.
fn command_of(argv: &[OsString]) -> Outcome<process::Command> {
    let (program, rest) = argv.split_first().ok_or_else(|| Failure::Usage("no command given".into()))?;
    let mut command = process::Command::new(program);
    command.args(rest);
    Ok(command)
}

/// Start `command`; a program that is missing or cannot be executed is a failure naming it.
/// It is marked as run for this process (`cairn::hold_while_running`): the lock or memo run
/// it runs under stays held while it runs, even if cairn is killed meanwhile.
fn spawn(command: &mut process::Command) -> Outcome<process::Child> {
    cairn::hold_while_running(command)
        .spawn()
        .map_err(|e| Failure::Spawn(command.get_program().to_string_lossy().into_owned(), e))
}

/// The status a shell would report: the exit code, or 128 + the signal that killed it.
fn status_code(status: process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Exit 0 for yes, 1 for no.
fn yes_no(yes: bool) -> u8 {
    if yes {
        crate::exit::OK
    } else {
        crate::exit::NO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_durability_given_is_the_one_the_store_is_opened_with() {
        let dir = tempfile::tempdir().unwrap();
        for durability in cairn::Durability::ALL {
            let ctx = Ctx {
                db: Some(dir.path().join("state.db")),
                ns: None,
                json: false,
                busy_timeout: std::time::Duration::from_secs(5),
                durability,
            };
            assert_eq!(ctx.open().unwrap().durability(), durability);
        }
    }
}
