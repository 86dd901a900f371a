//! The command line, declared once: parsing, help, completions and the man page all come
//! from these definitions.
//!
//! The structs of arguments (`#[derive(Args)]`) carry `//` comments, not doc comments: clap
//! would show a struct's doc comment as the description of every command using it, in place
//! of the command's own.

use std::ffi::{OsStr, OsString};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use cairn::{Durability, ItemState};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::exit;

/// Crash-safe state for shell scripts: a TTL cache, a ledger of processed items,
/// checkpoints and locks in one SQLite file.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, after_long_help = format!("{}\n\n{DURATIONS}", exit::HELP), after_help = exit::SHORT_HELP)]
#[command(propagate_version = true, max_term_width = 100, arg_required_else_help = false)]
pub struct Cli {
    /// The store's file, or a postgres:// URL. Default: $CAIRN_DB, else
    /// $XDG_STATE_HOME/cairn/state.db, else ~/.local/state/cairn/state.db. A leading ~ is your
    /// home directory (also in $CAIRN_DB); another URL (sqlite:///x.db, file:x.db) is refused.
    /// The first write creates the file and missing directories (0700); before it, reading
    /// commands answer as an empty store would, create nothing, and say so on stderr.
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The namespace of cache entries, memo results and ledger items, the default of a batch's
    /// operations and the one stats shows [default: default; memo: memo]. Name one per job.
    /// Checkpoints, locks and commands on the whole store have none: they refuse -n, and leave
    /// $CAIRN_NS alone.
    #[arg(short = 'n', long = "ns", global = true, value_name = "NAME", env = "CAIRN_NS", value_parser = non_empty("namespace"))]
    pub ns: Option<String>,

    /// How long to wait for another process's write before failing with exit code 6 (e.g. 500ms,
    /// 30s, 2m).
    #[arg(long, global = true, value_name = "DUR", value_parser = duration, default_value = "5s")]
    pub busy_timeout: Duration,

    /// What a commit survives, for a store in a file (a server decides for itself).
    #[arg(long, global = true, value_name = "LEVEL", env = "CAIRN_DURABILITY", value_parser = durability(), default_value = "normal")]
    pub durability: Durability,

    /// Machine-readable output (JSON) for commands whose output is structured.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// A key/value cache with expiry.
    #[command(subcommand, subcommand_required = true, arg_required_else_help = false)]
    Cache(CacheCmd),

    /// Run a command once and replay its stdout, stderr and exit status while fresh.
    ///
    /// The key is the command line and the working directory (or --key), plus the inputs named
    /// with --env and --modtime, plus stdin when it is not a terminal: it is read to its end,
    /// becomes part of the key and still reaches the command (--ignore-stdin leaves it out and
    /// to the command; use it, or </dev/null, inside `while read` loops, whose input cairn
    /// would otherwise read). Overlapping identical calls run the command once; the others
    /// wait and replay its result. On a miss the command's output reaches you as it writes it,
    /// while it is recorded; a replay interleaves stdout and stderr as the command did. Output
    /// of any size is kept, in chunks, in bounded memory. A command that exits non-zero is
    /// not stored unless --cache-failures is given.
    #[command(after_long_help = DURATIONS)]
    Memo(MemoArgs),

    /// A ledger of processed items: re-runs skip done work; workers share a list by claims.
    #[command(subcommand, subcommand_required = true, arg_required_else_help = false)]
    Ledger(LedgerCmd),

    /// Named progress markers for resumable jobs.
    #[command(subcommand, subcommand_required = true, arg_required_else_help = false)]
    Checkpoint(CheckpointCmd),

    /// Run a command holding a named lock: no two runs overlap (or at most --max of them).
    ///
    /// Exits with the command's status; 1 (or --held-exit) if the lock stays held (at once with
    /// --no-wait, after DUR with --wait; without either, waits as long as it takes). The lock is
    /// renewed while the command runs, released when it ends, and recovered if cairn is killed:
    /// at once by processes on the same host (its pid is gone), elsewhere when its --ttl runs
    /// out. Signals sent to cairn (INT, TERM, HUP, QUIT, USR1, USR2) are passed on to the
    /// command.
    #[command(after_long_help = DURATIONS)]
    Lock(LockArgs),

    /// Run a command once a rate limit shared by every process (and host) has a slot for it.
    ///
    /// `cairn limit NAME --rate 10/s -- CMD...` waits for a slot of NAME (as long as it takes,
    /// or up to --wait: then exit 1, or --held-exit), then runs CMD and exits with its status;
    /// signals sent to cairn are passed on to it. `cairn limit take NAME --rate R` takes a slot
    /// without running anything: exit 0 if it took one, 1 if none is free, saying on stderr
    /// when the next one is (--json: {"taken": false, "retry_after_ms": N}). In any window of
    /// time W, at most rate x W + burst slots are handed out, whoever asks (GCRA: one atomic
    /// statement per slot, on the server's clock on PostgreSQL; nothing is held, so a killed
    /// cairn leaves nothing behind). Every caller of NAME should give the same rate and burst.
    /// E.g. `cairn limit github-api --rate 5000/h --burst 100 -- curl -s URL`, from any number of
    /// cron jobs and workers at once.
    #[command(after_long_help = DURATIONS, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Limit(LimitArgs),

    /// Cron jobs: run a command once per slot of a schedule, across processes and hosts.
    #[command(subcommand, subcommand_required = true, arg_required_else_help = false)]
    Job(JobCmd),

    /// Run a command as a step of a resumable script: once; a re-run of the script replays it.
    ///
    /// The run is --run ID or $CAIRN_RUN (e.g. deploy-<commit>). The first time, the command
    /// runs, its output reaching you as it writes it while it is recorded (any size, bounded
    /// memory); exit 0 records the step, and every later `cairn step` of that name in the run
    /// replays its stdout and stderr byte for byte and exits 0 without running it. A non-zero
    /// exit records nothing but the failure, and cairn exits with it: the script's next run
    /// runs the step again. The step name is taken as given: give repeated steps of one script
    /// names of their own (cairn step "fetch-$i"). A command that differs from the recorded one
    /// exits 7 naming `cairn run reset ID --from NAME`. The run is held for the process --pid
    /// (default: cairn's parent, the script's shell) while it lives; another live script's
    /// `cairn step` of the run exits 1 (or --held-exit) without running anything. The command
    /// gets CAIRN_RUN and CAIRN_STEP in its environment.
    #[command(after_long_help = DURATIONS)]
    Step(StepArgs),

    /// Durable runs of resumable scripts: finish, status, list, reset, forget, prune, sleep.
    #[command(subcommand, subcommand_required = true, arg_required_else_help = false)]
    Run(RunCmd),

    /// Apply JSON-lines operations from stdin in one transaction: all or nothing.
    ///
    /// One object per line: {"op":"set","ns":"n","key":"k","value":"v","ttl":"1h"}; ops: set,
    /// add, del, incr (by, ttl), touch (ttl), mark (id, result), fail (id, error), ledger_del (id),
    /// cancel (id), snooze (id, worker, for), pause (for or until; neither: until resumed),
    /// resume, checkpoint (job, value), checkpoint_del (job). "ns" defaults to --ns. Every line is read
    /// and checked before anything is written: a malformed line rejects the batch with its
    /// number, and a writer killed mid-stream applies nothing.
    Batch,

    /// Apply NNN_name.sql migrations from DIR to the --db database, in order, by user_version.
    ///
    /// For your own SQLite databases: each file runs in its own transaction with its version
    /// bump. A cairn store keeps its own user_version; migrate tables you keep inside it with
    /// --scope NAME instead.
    Migrate(MigrateArgs),

    /// Per namespace: cache entries, bytes and hit rate; ledger states. With --format
    /// prometheus, the whole store's metrics for Prometheus (ledger items by state and the age
    /// of the oldest queued item, cache entries, bytes, hits and misses, locks held).
    Stats(StatsArgs),

    /// Check the store: integrity, pragmas, schema, WAL size, permissions. Exit 1 if anything
    /// is wrong, with how to fix it.
    Doctor,

    /// Write a consistent copy of the store to PATH while other processes keep writing.
    Backup {
        /// Where to write it (replaced atomically if it exists).
        path: PathBuf,
    },

    /// Give free pages back to the file system and empty the write-ahead log.
    Vacuum,

    /// Serve a local web page to see and steer the store: queues, runs, jobs, caches, locks.
    ///
    /// Prints the page's URL (one line on stdout), which carries a random token: a request
    /// without it is refused, and the actions (retry, cancel, delete, pause, resume, reset a
    /// run) are POSTs that carry it too, so another site open in the same browser can trigger
    /// none. Serves until interrupted (Ctrl-C).
    Ui(UiArgs),

    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print a man page (roff): cairn's, or a subcommand's (`cairn man cache get`); with --dir,
    /// write every page, one per subcommand (cairn.1, cairn-cache.1, cairn-cache-get.1, ...),
    /// e.g. `cairn man --dir ~/.local/share/man/man1`.
    Man {
        /// The subcommand whose page to print, e.g. `memo` or `cache get`.
        #[arg(conflicts_with = "dir")]
        command: Vec<String>,
        /// Write every page into DIR (created if missing) and list the files written.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// Why `-n` does not apply to this command, if it does not: the namespace is that of cache
    /// entries, memo results and ledger items, and a batch's and stats' default.
    pub fn without_namespace(&self) -> Option<&'static str> {
        match self {
            Command::Cache(_)
            | Command::Memo(_)
            | Command::Ledger(_)
            | Command::Batch
            | Command::Stats(_) => None,
            Command::Checkpoint(_) => Some(
                "checkpoints have no namespace: name the job for what it belongs to (e.g. invoices-export)",
            ),
            Command::Step(_) | Command::Run(_) => {
                Some("runs have no namespace: name the run for what it does (e.g. deploy-<commit>)")
            }
            Command::Lock(_) => {
                Some("locks have no namespace: name the lock for what it guards (e.g. invoices-nightly)")
            }
            Command::Job(_) => {
                Some("jobs have no namespace: name the job for what it does (e.g. nightly-backup)")
            }
            Command::Limit(_) => {
                Some("rate limits have no namespace: name the limit for what it paces (e.g. github-api)")
            }
            Command::Migrate(_)
            | Command::Doctor
            | Command::Backup { .. }
            | Command::Vacuum
            | Command::Ui(_) => Some("it works on the whole store"),
            Command::Completions { .. } | Command::Man { .. } => Some("it has no namespace"),
        }
    }
}

/// The parsed command line from clap's `matches`. `-n` given on the command line to a command
/// that has no namespace is a usage error, not ignored; `$CAIRN_NS`, exported for a whole job,
/// applies where a namespace does and is left alone elsewhere.
pub fn from_matches(matches: &mut clap::ArgMatches) -> Result<Cli, clap::Error> {
    let n_given = matches.value_source("ns") == Some(clap::parser::ValueSource::CommandLine);
    let name = matches.subcommand_name().unwrap_or("cairn").to_owned();
    let cli = Cli::from_arg_matches_mut(matches)?;
    match cli.command.without_namespace() {
        Some(why) if n_given => Err(clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            format!("{name} takes no -n/--ns: {why}\n"),
        )),
        _ => Ok(cli),
    }
}

/// Cache commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum CacheCmd {
    /// Print a value's exact bytes (on a terminal, with a newline after a value that does not
    /// end with one). Exit 1 on a miss or an expired entry.
    Get {
        /// The key.
        #[arg(value_parser = non_empty("key"))]
        key: String,
    },
    /// Store a value (VALUE, or stdin when absent; binary-safe), replacing any previous one.
    #[command(after_long_help = DURATIONS)]
    Set(SetArgs),
    /// Store a value only if the key is absent or expired. Exit 1 if it is present.
    #[command(after_long_help = DURATIONS)]
    Add(SetArgs),
    /// Delete a key. Exit 1 if it was not there.
    Del {
        /// The key.
        #[arg(value_parser = non_empty("key"))]
        key: String,
    },
    /// Add BY (default 1, may be negative) to an integer value, atomically; print the result.
    #[command(after_long_help = DURATIONS)]
    Incr {
        /// The key (a missing key counts from 0).
        #[arg(value_parser = non_empty("key"))]
        key: String,
        /// How much to add.
        #[arg(allow_negative_numbers = true, default_value_t = 1)]
        by: i64,
        /// Expire after this long (a new key only; an existing key keeps its expiry).
        #[arg(long, value_name = "DUR", value_parser = duration)]
        ttl: Option<Duration>,
    },
    /// Give an entry a new expiry (none: never expires). Exit 1 if it is missing.
    #[command(after_long_help = DURATIONS)]
    Touch {
        /// The key.
        #[arg(value_parser = non_empty("key"))]
        key: String,
        /// Expire after this long from now.
        #[arg(long, value_name = "DUR", value_parser = duration)]
        ttl: Option<Duration>,
    },
    /// List the keys, one per line, sorted.
    List {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Remove expired entries (of the namespace -n or $CAIRN_NS names, else of every
    /// namespace); print how many.
    Sweep,
    /// Remove every entry of the namespace (or those whose key starts with --prefix); print how
    /// many.
    Clear {
        /// Only the keys that start with this.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
    },
}

// `cache set` and `cache add`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The key.
    #[arg(value_parser = non_empty("key"))]
    pub key: String,
    /// The value; read from stdin when absent.
    pub value: Option<OsString>,
    /// Expire after this long (e.g. 90s, 10m, 1h30m, 2d).
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub ttl: Option<Duration>,
    #[command(flatten)]
    pub kind: KindArgs,
}

// `--type`: what a stored value is, for readers in other languages.
#[derive(Debug, Args)]
pub struct KindArgs {
    /// What the value is, so that Python and Rust read it back as that type: text (str), bytes,
    /// int, float or json (checked). Default: text if the value is UTF-8, else bytes.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<Kind>,
}

/// A value's type, as the CLI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// Raw bytes.
    Bytes,
    /// A 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// JSON.
    Json,
}

// `memo`.
#[derive(Debug, Args)]
pub struct MemoArgs {
    /// How long a result is replayed [default: $CAIRN_MEMO_TTL, else 60s].
    #[arg(long, value_name = "DUR", value_parser = duration, env = "CAIRN_MEMO_TTL", default_value = "60s", hide_default_value = true, hide_env = true)]
    pub ttl: Duration,
    /// The cache key instead of the command line and working directory (inputs named with
    /// --env, --modtime and stdin are still added to it).
    #[arg(long, value_parser = non_empty("key"))]
    pub key: Option<String>,
    /// Serve an expired result for up to DUR more while one background run refreshes it.
    #[arg(long, value_parser = duration, value_name = "DUR")]
    pub stale: Option<Duration>,
    /// Store results of commands that exit non-zero too.
    #[arg(long)]
    pub cache_failures: bool,
    /// Run the command now even if a fresh result is stored, and store the new one.
    #[arg(long, conflicts_with = "forget")]
    pub force: bool,
    /// Make environment variable NAME's value (or its absence) part of the key. Repeatable.
    #[arg(long = "env", value_name = "NAME", value_parser = non_empty("variable name"))]
    pub env: Vec<String>,
    /// Make PATH's modification time (or its absence) part of the key. Repeatable.
    #[arg(long = "modtime", value_name = "PATH")]
    pub modtime: Vec<PathBuf>,
    /// Leave stdin out of the key: the command reads it as it would without cairn.
    #[arg(long)]
    pub ignore_stdin: bool,
    /// Drop the stored result of this command line instead of running it; exit 1 if there is
    /// none.
    #[arg(long)]
    pub forget: bool,
    /// Internal: the background refresh of a stale result (--key is used as is).
    #[arg(long, hide = true)]
    pub refresh: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// How a script's steps hold its run (`cairn step`, `run finish`, `run sleep`).
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The run's id [default: $CAIRN_RUN].
    #[arg(long = "run", value_name = "ID", env = "CAIRN_RUN", hide_env = true, value_parser = non_empty("run id"))]
    pub run: String,
    /// The process the run is held for while it lives [default: cairn's parent, the script's shell].
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,
    /// The exit status when another live process holds the run, instead of 1.
    #[arg(long, value_name = "CODE", default_value_t = 1)]
    pub held_exit: u8,
    /// How long the hold lasts without a renewal: how long another host waits to take over
    /// the run of a script that vanished (on this host a dead script's run is taken at once);
    /// renewed while a step's command runs.
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "10m")]
    pub lease: Duration,
    /// How long to wait for another live process holding the run to let it go, before exiting
    /// 1 (or --held-exit) [default: not at all].
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub wait: Option<Duration>,
}

// `cairn step`.
#[derive(Debug, Args)]
pub struct StepArgs {
    /// The step's name, unique within the script (no '#').
    #[arg(value_parser = non_empty("step name"))]
    pub name: String,
    #[command(flatten)]
    pub hold: HoldArgs,
    /// An environment variable the step depends on (repeatable): its value is part of the
    /// step's definition with the command line, so a recorded step asked for with another
    /// value exits 7 instead of replaying (e.g. --env RELEASE_TAG).
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Run commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum RunCmd {
    /// Finish the run: later `cairn step`s of it replay only and run nothing.
    #[command(after_long_help = DURATIONS)]
    Finish {
        #[command(flatten)]
        hold: HoldArgs,
    },
    /// Show a run's steps; exit 0 if it is finished, 1 if not (or there is no such run).
    ///
    /// Under each command step, the first lines of its output (the last lines of its error
    /// output when it failed). With --json, one object: {"id", "state" (running, failed or
    /// finished), "attempts", "error", "holder", "lease_until_ms", "started_at_ms",
    /// "updated_at_ms", "finished_at_ms", "steps": [{"name", "state" (done or failed),
    /// "attempts", "error", "started_at_ms", "finished_at_ms", "version", "output"}]}; absent
    /// values are null.
    Status {
        /// The run [default: $CAIRN_RUN].
        #[arg(value_name = "ID", env = "CAIRN_RUN", hide_env = true, value_parser = non_empty("run id"))]
        id: String,
    },
    /// List the runs, or those in one state: id, state, attempts and the last error.
    ///
    /// With --json, one object per line, as `run status --json` prints it (steps empty).
    List {
        /// Only the runs in this state.
        #[arg(long, value_parser = run_state())]
        state: Option<cairn::RunState>,
    },
    /// Forget a run's recorded steps (from STEP on) so that its next run executes them again.
    Reset {
        /// The run.
        #[arg(value_parser = non_empty("run id"))]
        id: String,
        /// The first step to forget, with every one after it [default: all of them].
        #[arg(long, value_name = "STEP", value_parser = non_empty("step name"))]
        from: Option<String>,
    },
    /// Delete a run and its steps: its id starts afresh. Exit 1 if there was no such run.
    Forget {
        /// The run.
        #[arg(value_parser = non_empty("run id"))]
        id: String,
    },
    /// Delete the runs finished more than DUR ago, with their steps; print how many.
    #[command(after_long_help = DURATIONS)]
    Prune {
        /// How long ago, e.g. 30d.
        #[arg(long, value_name = "DUR", value_parser = duration)]
        finished_before: Duration,
    },
    /// Sleep durably: the wake time is recorded the first time; a re-run waits what is left.
    ///
    /// With --no-wait, exit 0 at once if the wake time has passed, else exit 1 at once, saying
    /// how long is left (for a cron script that would rather come back later).
    #[command(after_long_help = DURATIONS)]
    Sleep {
        /// The sleep's name, a step of the run.
        #[arg(value_parser = non_empty("step name"))]
        name: String,
        /// How long, e.g. 2h.
        #[arg(value_name = "DUR", value_parser = duration)]
        duration: Duration,
        /// Do not wait: exit 1 at once while the sleep is not over.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        hold: HoldArgs,
    },
}

/// Ledger commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum LedgerCmd {
    /// Record ids as done: `mark ID...`, or `mark -` for ids on stdin, one per line.
    Mark {
        /// The ids, or - to read them from stdin (committed in batches).
        #[arg(required = true, value_parser = non_empty("id"))]
        ids: Vec<String>,
    },
    /// Exit 0 if ID is done, 1 if not.
    Has {
        /// The id.
        #[arg(value_parser = non_empty("id"))]
        id: String,
    },
    /// Read ids on stdin; write those not done (nor given up) to stdout, in input order.
    Filter,
    /// Queue ids (arguments, or - for stdin) for `ledger next`, in order; known ids are skipped.
    ///
    /// With --json, stdin holds one JSON object per line: {"id": "a1", "data": {...}} where
    /// "data" (any JSON; optional) is handed to the worker by `ledger next --json`, and
    /// "not_before" (optional) delays that item as --not-before does.
    #[command(after_help = ENQUEUE_EXAMPLES, after_long_help = format!("{ENQUEUE_EXAMPLES}\n\n{DURATIONS}"))]
    Enqueue {
        /// The ids, or - for stdin (one per line); with --json, none or - (the items come on
        /// stdin).
        #[arg(value_parser = non_empty("id"))]
        ids: Vec<String>,
        /// Hand the items out no earlier than this: a delay (10m, 2h) or an RFC 3339 time
        /// (2026-12-01T09:00:00Z, 2026-12-01T10:00:00+01:00).
        #[arg(long, value_name = "DUR|TIME", value_parser = not_before)]
        not_before: Option<NotBefore>,
        /// Hand the items out before those of lower priority (default 0; -1000 to 1000).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        priority: Option<i64>,
        /// Queue the items in group KEY: one item of a group is handed out at a time, in
        /// queue order (one customer's jobs in sequence, other customers' beside them).
        #[arg(long, value_name = "KEY", value_parser = non_empty("group"))]
        group: Option<String>,
    },
    /// Claim ID for a worker. Exit 0 if this worker now holds it, 1 if it is done, given up,
    /// or held by another worker whose lease has not run out.
    #[command(after_long_help = DURATIONS)]
    Claim {
        /// The id.
        #[arg(value_parser = non_empty("id"))]
        id: String,
        #[command(flatten)]
        worker: WorkerArgs,
        /// How long the claim lasts without renewal (claim again to renew). The default, 1m, is
        /// cairn::DEFAULT_LEASE, as in Python: a dead worker's item comes back soon.
        #[arg(long, value_name = "DUR", value_parser = duration, default_value = "1m")]
        lease: Duration,
        #[command(flatten)]
        holder: HolderArgs,
    },
    /// Claim the next queued item that is due for a worker and print its id (with --json:
    /// {"id", "data", "attempt"}). Exit 1 if there is none.
    #[command(after_long_help = DURATIONS)]
    Next {
        #[command(flatten)]
        worker: WorkerArgs,
        /// How long the claim lasts without renewal (`ledger claim ID` again to renew). The
        /// default, 1m, is cairn::DEFAULT_LEASE, as in Python.
        #[arg(long, value_name = "DUR", value_parser = duration, default_value = "1m")]
        lease: Duration,
        /// Wait up to DUR for an item instead of exiting 1 at once: woken within milliseconds
        /// when another process queues one, when a delayed item or a retry comes due, or a
        /// lease or pause ends. Exit 1 once DUR passes with none.
        #[arg(long, value_name = "DUR", value_parser = duration)]
        wait: Option<Duration>,
        #[command(flatten)]
        holder: HolderArgs,
    },
    /// Wait until no item of the namespace is queued (pending, delayed, waiting for a retry)
    /// or claimed: exit 0 once drained, 1 at --timeout. What a script that queued work for
    /// workers waits on before it goes on.
    #[command(after_long_help = DURATIONS)]
    Wait {
        /// Give up after DUR (exit 1); without it, wait as long as it takes.
        #[arg(long, value_name = "DUR", value_parser = duration)]
        timeout: Option<Duration>,
    },
    /// Complete a claim: ID is done. Exit 1 if the lease was lost to another worker.
    Done {
        /// The id.
        #[arg(value_parser = non_empty("id"))]
        id: String,
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// Record a failure of ID: pending again for a retry, or given up after the namespace's
    /// max attempts (`ledger policy`; --max-attempts for this failure alone). With --worker,
    /// only that worker's claim may fail it (exit 1 if it was lost).
    ///
    /// A retried item is not handed out again before a backoff: about the retry delay after
    /// the first failure, twice that after the second, and so on (at most 1h), each scaled by a
    /// random 50-100% so that items failing together do not come back together.
    #[command(after_long_help = DURATIONS)]
    Fail {
        /// The id.
        #[arg(value_parser = non_empty("id"))]
        id: String,
        /// The claim's worker.
        #[arg(long, value_parser = non_empty("worker"))]
        worker: Option<String>,
        /// What went wrong.
        #[arg(long)]
        error: String,
        /// Give up after this many attempts, instead of the namespace's policy [default: the
        /// policy's, else 3].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max_attempts: Option<u32>,
        /// The base of the backoff before a retry (0s: retry at once), instead of the
        /// namespace's policy [default: the policy's, else 1s].
        #[arg(long, value_name = "DUR", value_parser = duration)]
        retry_delay: Option<Duration>,
    },
    /// Print the namespace's policy (max attempts, retry delay; "default" where none was set),
    /// or set it with the options: every worker, `ledger fail`, `batch` and the library and
    /// Python handles of the namespace apply it. Options not given keep their value.
    ///
    /// An item is given up once this many attempts ended without it being done: failures, and
    /// claims lost because their worker died or hung (another worker took the claim over).
    #[command(
        after_help = POLICY_EXAMPLES,
        after_long_help = format!("{POLICY_EXAMPLES}\n\n{DURATIONS}")
    )]
    Policy {
        /// Give an item up after this many attempts.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max_attempts: Option<u32>,
        /// The base of a failed item's backoff (0s: retry at once).
        #[arg(long, value_name = "DUR", value_parser = duration)]
        retry_delay: Option<Duration>,
        /// Back to the defaults (3 attempts, 1s).
        #[arg(long, conflicts_with_all = ["max_attempts", "retry_delay"])]
        reset: bool,
    },
    /// Put given-up (or cancelled) items back in the queue with their attempts reset (once
    /// what made them fail is fixed); print how many. Items that are neither are left alone;
    /// --all-failed takes the given-up ones, not the cancelled.
    Retry {
        /// The ids.
        #[arg(value_parser = non_empty("id"), required_unless_present = "all_failed", conflicts_with = "all_failed")]
        ids: Vec<String>,
        /// Every given-up item of the namespace.
        #[arg(long)]
        all_failed: bool,
    },
    /// Delete done items older than DUR to keep the ledger small; print how many.
    ///
    /// A re-run no longer skips a pruned id: `ledger filter` and `ledger has` forget it, and
    /// `ledger enqueue` queues it again. Prune only ids that will not come back.
    #[command(after_long_help = DURATIONS)]
    Prune {
        /// Items done longer ago than this (e.g. 30d).
        #[arg(long, value_name = "DUR", value_parser = duration)]
        done_before: Duration,
    },
    /// Print how many items stand in each state, or in one.
    Count {
        /// Only this state.
        #[arg(long, value_parser = item_state())]
        state: Option<ItemState>,
    },
    /// List items in id order: id, state and, for a pending item, when it is due (RFC 3339,
    /// UTC), tab-separated ("-" when it has no due time).
    List {
        /// Only this state.
        #[arg(long, value_parser = item_state())]
        state: Option<ItemState>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Delete ID, as if it had never been seen. Exit 1 if it was unknown.
    #[command(visible_alias = "forget")]
    Del {
        /// The id.
        #[arg(value_parser = non_empty("id"))]
        id: String,
    },
    /// Delete every item of the namespace; print how many.
    #[command(visible_alias = "reset")]
    Clear,
    /// Cancel items: never handed out again (state cancelled; `ledger retry ID` puts one
    /// back); a worker holding one loses its claim (its `ledger done` exits 1). Prints how many
    /// this call cancelled. An unknown id or a done item is refused (exit 2) and nothing is
    /// cancelled.
    Cancel {
        /// The ids.
        #[arg(required = true, value_parser = non_empty("id"))]
        ids: Vec<String>,
    },
    /// Give a worker's claim on ID back to the queue, due after DUR, its attempts unchanged
    /// (a rate limit upstream, an input not there yet). Exit 1 if the claim was lost.
    #[command(after_long_help = DURATIONS)]
    Snooze {
        /// The id.
        #[arg(value_parser = non_empty("id"))]
        id: String,
        #[command(flatten)]
        worker: WorkerArgs,
        /// How long until the item is due again (e.g. 10m).
        #[arg(long = "for", value_name = "DUR", value_parser = duration)]
        for_: Duration,
    },
    /// Pause the namespace: `ledger next` and `ledger claim` hand nothing out (a worker may
    /// still renew the claim it holds; claims held go on) until `ledger resume`, or for DUR, or
    /// until TIME. `ledger count` says paused.
    #[command(after_long_help = DURATIONS)]
    Pause {
        /// Resume by itself after this long (e.g. 30m).
        #[arg(long = "for", value_name = "DUR", value_parser = duration, conflicts_with = "until")]
        for_: Option<Duration>,
        /// Resume by itself at this RFC 3339 time (2026-12-01T09:00:00Z); a time past is refused.
        #[arg(long, value_name = "TIME", value_parser = rfc3339)]
        until: Option<i64>,
    },
    /// End a pause: the queue hands items out again.
    Resume,
}

// `--worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The worker's name (unique per worker, e.g. "$(hostname)-$$").
    #[arg(long, value_parser = non_empty("worker"))]
    pub worker: String,
}

// `--pid`, for the commands that claim.
#[derive(Debug, Args)]
pub struct HolderArgs {
    /// Tie the claim to process PID of this host (e.g. $$, your script's shell): if it dies,
    /// other workers take the item over at once instead of after --lease. Without it, only the
    /// lease frees the claim (each cairn command exits at once, so its own pid says nothing).
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,
}

/// Checkpoint commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum CheckpointCmd {
    /// Record JOB's position (VALUE, or stdin when absent).
    Set {
        /// The job.
        #[arg(value_parser = non_empty("job"))]
        job: String,
        /// The position; read from stdin when absent.
        value: Option<OsString>,
        #[command(flatten)]
        kind: KindArgs,
    },
    /// Print JOB's position. Exit 1 if it has none.
    Get {
        /// The job.
        #[arg(value_parser = non_empty("job"))]
        job: String,
    },
    /// Forget JOB's position. Exit 1 if it had none.
    Del {
        /// The job.
        #[arg(value_parser = non_empty("job"))]
        job: String,
    },
}

// `job`.
#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// Run CMD once for the current slot of a schedule (--every DUR or --cron 'EXPR').
    ///
    /// CMD runs at most once per slot across every process and host sharing the store, never
    /// two at once. Exit: CMD's status when it ran; 0 when the slot is already done or running
    /// elsewhere (one line on stderr says which; --json prints {"ran": false, "reason": ...}).
    /// A failed run leaves its slot due: the next invocation in the slot runs it again
    /// (--no-retry keeps one attempt per slot). CMD sees CAIRN_JOB, CAIRN_SLOT and
    /// CAIRN_SLOT_END (RFC 3339, UTC) and CAIRN_RUN (job:NAME:SLOT), so that `cairn step`
    /// inside it makes the slot a durable run: a failed slot resumes at its failed step.
    /// Every run is recorded (slot, times, exit status, host, pid, the end of its stderr).
    #[command(after_long_help = DURATIONS)]
    Run(JobRunArgs),
    /// A job's runs, newest first.
    History {
        /// The job's name.
        #[arg(value_parser = non_empty("job name"))]
        name: String,
        /// At most N runs.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: u32,
    },
    /// Every job: schedule, last success, last failure, next slot, running now or not.
    List,
    /// Exit 0 if the job's last success finished within --max-age, 1 otherwise (or never),
    /// with one line saying when it last succeeded and how it last failed.
    #[command(after_long_help = DURATIONS)]
    Check {
        /// The job's name.
        #[arg(value_parser = non_empty("job name"))]
        name: String,
        /// The longest acceptable time since the last success ended.
        #[arg(long, value_name = "DUR", value_parser = duration)]
        max_age: Duration,
    },
}

// `job run`.
#[derive(Debug, Args)]
pub struct JobRunArgs {
    /// The job's name.
    #[arg(value_parser = non_empty("job name"))]
    pub name: String,
    /// Slots of DUR: multiples of it since the Unix epoch (UTC).
    #[arg(
        long,
        value_name = "DUR",
        allow_hyphen_values = true,
        required_unless_present = "cron",
        conflicts_with = "cron"
    )]
    pub every: Option<String>,
    /// Slots between the times of a five-field cron expression (minute hour day month weekday).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// The time zone of --cron (an IANA name).
    #[arg(long, value_name = "ZONE", default_value = "UTC", requires = "cron")]
    pub tz: String,
    /// After an outage, `all` runs each missed slot since the last completed one, oldest first.
    #[arg(long, value_name = "none|all", default_value = "none")]
    pub catch_up: String,
    /// The most slots one catch-up runs (the newest ones).
    #[arg(long, value_name = "N", default_value_t = cairn::DEFAULT_MAX_CATCH_UP, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_catch_up: u32,
    /// Keep one attempt per slot: a failed run completes its slot too.
    #[arg(long)]
    pub no_retry: bool,
    /// How many runs the job's history keeps.
    #[arg(long, value_name = "N", default_value_t = cairn::DEFAULT_KEEP, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// `lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The lock's name.
    #[arg(value_parser = non_empty("lock name"))]
    pub name: String,
    /// Wait up to DUR for the lock; exit 1 if it is still held then.
    #[arg(long, value_parser = duration, value_name = "DUR", conflicts_with = "no_wait")]
    pub wait: Option<Duration>,
    /// Exit 1 at once if the lock is held.
    #[arg(long)]
    pub no_wait: bool,
    /// How long the lock outlives a cairn that was killed on another host; renewed every
    /// DUR/3 while the command runs, so at least 100ms. If the lock was lost all the same
    /// (a renewal found it taken over), cairn exits 1 when the command exited 0.
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "60s")]
    pub ttl: Duration,
    /// Let up to N commands hold the lock at once (a counting semaphore; every caller of the
    /// name should give the same N). A plain lock is --max 1.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(cairn::MAX_SEMAPHORE_SLOTS)))]
    pub max: u32,
    /// The exit status when the lock could not be taken, instead of 1 (as flock -E).
    #[arg(long, value_name = "CODE", default_value_t = 1)]
    pub held_exit: u8,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// `limit`.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Take a slot without running a command.
    #[command(subcommand)]
    pub take: Option<LimitCmd>,
    /// The limit's name.
    #[arg(value_parser = non_empty("limit name"), required = true)]
    pub name: Option<String>,
    /// How many slots per period: N/s, N/min, N/h, N/d, or N per duration, N/DUR (5/10s,
    /// 3/1h30m). Slots are spaced evenly: 10/s is one every 100ms.
    #[arg(long, value_name = "RATE", value_parser = rate, required = true, allow_hyphen_values = true)]
    pub rate: Option<cairn::Rate>,
    /// How many slots may be taken at once after a quiet spell (the bound in any window grows
    /// by it).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = burst())]
    pub burst: u32,
    /// Wait up to DUR for a slot; exit 1 (or --held-exit) if none is free by then. Default: as
    /// long as it takes.
    #[arg(long, value_parser = duration, value_name = "DUR")]
    pub wait: Option<Duration>,
    /// The exit status when no slot was free within --wait, instead of 1.
    #[arg(long, value_name = "CODE", default_value_t = 1)]
    pub held_exit: u8,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// `limit take`.
#[derive(Debug, Subcommand)]
pub enum LimitCmd {
    /// Take a slot now if one is free: exit 0 if taken, 1 if not (stderr says when the next
    /// one frees; --json prints {"taken": true} or {"taken": false, "retry_after_ms": N}).
    #[command(after_long_help = DURATIONS)]
    Take {
        /// The limit's name.
        #[arg(value_parser = non_empty("limit name"))]
        name: String,
        /// How many slots per period: N/s, N/min, N/h, N/d, or N per duration, N/DUR (5/10s,
        /// 3/1h30m). Slots are spaced evenly: 10/s is one every 100ms.
        #[arg(long, value_name = "RATE", value_parser = rate, allow_hyphen_values = true)]
        rate: cairn::Rate,
        /// How many slots may be taken at once after a quiet spell.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = burst())]
        burst: u32,
    },
}

// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// text: a line per namespace (or JSON with --json); prometheus: the Prometheus text
    /// exposition format, names prefixed cairn_, namespaces in the label ns.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: StatsFormat,
    /// With --format prometheus: write to PATH instead of stdout, atomically (a temporary file
    /// beside it, synced, renamed over it), for node_exporter's textfile collector (which reads
    /// *.prom files). The file is 0644 whatever the umask: node_exporter runs as another user,
    /// and the metrics hold counts and names, never stored values.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
}

/// How `stats` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// A line per namespace, or JSON with --json.
    Text,
    /// The Prometheus text exposition format.
    Prometheus,
}

// `ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The address and port to listen on; port 0 picks a free one (the printed URL says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    pub listen: std::net::SocketAddr,
    /// Show no action and refuse every change: a page to look at.
    #[arg(long)]
    pub read_only: bool,
    /// Open the page in the default browser (xdg-open, or open on macOS).
    #[arg(long)]
    pub open: bool,
    /// Allow --listen on an address other than loopback. Anyone who reaches it and sees the
    /// token (sent in clear: plain HTTP) can steer the store.
    #[arg(long)]
    pub allow_remote: bool,
}

// `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The directory of NNN_name.sql files.
    pub dir: PathBuf,
    /// List what would run, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Migrate tables kept inside a cairn store, versioned under this name.
    #[arg(long, value_parser = non_empty("scope"))]
    pub scope: Option<String>,
}

/// What a DUR is: `cairn::parse_duration`'s grammar, at the end of the `--help` (and man page)
/// of every command that takes one.
pub const DURATIONS: &str = "\
Durations (DUR):
  A number and its unit, or several adding up: 90s, 10m, 1h30m, 1h 30m, 1.5h, 2d, 500ms,
  \"5 minutes\". Units, in any case: w, d, h, m, s, ms, us, ns, or their names (weeks, days,
  hours, min, minutes, sec, seconds...). Refused: a bare number (10), M (minutes or months?
  write m), and months and years (write days: 30d).";

/// `ledger enqueue`'s examples, under its help.
const POLICY_EXAMPLES: &str =
    "Examples:\n  cairn -n pages ledger policy --max-attempts 10 --retry-delay 30s\n  \
    cairn -n pages ledger policy\n  cairn -n pages ledger policy --reset";

const ENQUEUE_EXAMPLES: &str = "Examples:\n  cairn -n jobs ledger enqueue a b c\n  \
    find in/ -name '*.csv' | cairn -n imports ledger enqueue -\n  \
    echo '{\"id\":\"r1\",\"data\":{\"url\":\"https://x\"}}' | cairn -n pages --json ledger enqueue\n  \
    cairn -n reports ledger enqueue --not-before 1h weekly";

/// A value parser refusing empty strings: an empty key is a usage error, never a stored row.
fn run_state() -> impl TypedValueParser<Value = cairn::RunState> {
    PossibleValuesParser::new(["running", "failed", "finished"])
        .try_map(|s| s.parse::<cairn::RunState>().map_err(|e| e.to_string()))
}

/// An RFC 3339 time, in Unix milliseconds.
fn rfc3339(s: &str) -> Result<i64, String> {
    cairn::parse_time(s).map_err(|e| e.to_string())
}

fn non_empty(what: &'static str) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s: &str| {
        if s.is_empty() {
            Err(format!("the {what} must not be empty"))
        } else {
            Ok(s.to_owned())
        }
    }
}

/// `--state`: a ledger state, named and parsed by the library; the help lines are the CLI's.
fn item_state() -> LibraryEnum<ItemState> {
    LibraryEnum::new(ItemState::ALL.map(|s| {
        let help = match s {
            ItemState::Pending => Some("Queued or waiting for a retry"),
            ItemState::Claimed => Some("Held under a live lease"),
            ItemState::Done => Some("Done"),
            ItemState::Failed => Some("Given up"),
            ItemState::Cancelled => Some("Cancelled"),
            _ => None,
        };
        PossibleValue::new(s.as_str()).help(help)
    }))
}

/// `--durability`: a level, named and parsed by the library; the help lines are the CLI's.
fn durability() -> LibraryEnum<Durability> {
    LibraryEnum::new(Durability::ALL.map(|d| {
        let help = match d {
            Durability::Normal => Some("A crash of cairn or of your script loses nothing committed; a power loss may lose the last commits"),
            Durability::Full => Some("Every commit also survives a power loss, at the cost of an fsync each"),
            _ => None,
        };
        PossibleValue::new(d.as_str()).help(help)
    }))
}

/// A value parser for one of the library's enums that have `FromStr` (`ItemState`,
/// `Durability`; `Eviction` too, should an option take it): it offers the names the library gives and parses them with the library's `FromStr`, so the
/// mapping between names and values lives once, in the library. A value that is not one of
/// the names is a usage error listing them (with a near miss suggested), as for a `ValueEnum`;
/// `--help`, the completions and the man pages list them too.
#[derive(Clone)]
struct LibraryEnum<T> {
    names: PossibleValuesParser,
    parsed: PhantomData<fn() -> T>,
}

impl<T> LibraryEnum<T> {
    fn new(names: impl IntoIterator<Item = PossibleValue>) -> Self {
        LibraryEnum { names: PossibleValuesParser::new(names), parsed: PhantomData }
    }
}

impl<T> TypedValueParser for LibraryEnum<T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        // Not UTF-8: refused below as one more unknown name, the valid ones listed.
        let value = value.to_string_lossy();
        let name = self.names.parse_ref(cmd, arg, OsStr::new(value.as_ref()))?;
        name.parse().map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.names.possible_values()
    }
}

/// When queued items may be handed out: `--not-before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotBefore {
    /// After a delay from now.
    After(Duration),
    /// At a time, in Unix milliseconds.
    At(i64),
}

/// A delay, else an RFC 3339 time.
pub fn not_before(s: &str) -> Result<NotBefore, String> {
    let as_delay = match cairn::parse_duration(s) {
        Ok(d) => return Ok(NotBefore::After(d)),
        Err(e) => e,
    };
    cairn::parse_time(s).map(NotBefore::At).map_err(|e| {
        // What starts as a date does not need both forms explained: say what is wrong with it
        // (out of range, no such day); what starts as a number with a unit is a delay, whose
        // own message says what is wrong (5M: months are refused, write 5m or 150d).
        let t = s.trim().trim_start_matches(['+', '-']);
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let next = t.as_bytes().get(digits);
        match (e, as_delay) {
            (cairn::Error::InvalidInput(msg), _) if digits >= 4 && next == Some(&b'-') => msg,
            (_, cairn::Error::InvalidInput(msg)) if digits > 0 && unit_follows(&t[digits..]) => msg,
            _ => format!(
                "{s:?} is neither a delay (e.g. 10m, 2h) nor an RFC 3339 time (e.g. 2026-12-01T09:00:00Z)"
            ),
        }
    })
}

/// True if `rest`, what follows a number's leading digits, goes on as a duration's unit does
/// (`M`, ` months`, `.5y`) rather than as a date.
fn unit_follows(rest: &str) -> bool {
    rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
        .starts_with(|c: char| c.is_alphabetic())
}

/// `--rate`: `cairn::Rate`'s grammar; its message is the usage error.
fn rate(s: &str) -> Result<cairn::Rate, String> {
    s.parse().map_err(|e| match e {
        cairn::Error::InvalidInput(msg) => msg,
        other => other.to_string(),
    })
}

fn burst() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(1..=i64::from(cairn::MAX_BURST))
}

fn duration(s: &str) -> Result<Duration, String> {
    cairn::parse_duration(s).map_err(|e| match e {
        cairn::Error::InvalidInput(msg) => msg,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::any::TypeId;

    #[test]
    fn the_clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_default_lease_is_the_library_default_as_in_python() {
        for argv in [
            &["cairn", "ledger", "next", "--worker", "w"][..],
            &["cairn", "ledger", "claim", "a", "--worker", "w"],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            let lease = match cli.command {
                Command::Ledger(LedgerCmd::Next { lease, .. } | LedgerCmd::Claim { lease, .. }) => lease,
                other => panic!("{other:?}"),
            };
            assert_eq!(lease, cairn::DEFAULT_LEASE, "{argv:?}");
        }
    }

    #[test]
    fn bad_durations_and_empty_keys_are_usage_errors() {
        for argv in [
            &["cairn", "cache", "set", "k", "v", "--ttl", "soon"][..],
            &["cairn", "cache", "get", ""],
            &["cairn", "ledger", "mark", "a", ""],
            &["cairn", "lock", "x", "--wait", "5"],
            &["cairn", "--ns", "", "cache", "get", "k"],
        ] {
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
    }

    #[test]
    fn every_state_the_help_lists_is_the_librarys_and_others_are_usage_errors() {
        let listed: Vec<String> =
            item_state().possible_values().into_iter().flatten().map(|v| v.get_name().to_owned()).collect();
        let all: Vec<String> = ItemState::ALL.iter().map(ItemState::to_string).collect();
        assert_eq!(listed, all);
        for state in ItemState::ALL {
            let cli = Cli::try_parse_from(["cairn", "ledger", "count", "--state", state.as_str()]).unwrap();
            assert!(
                matches!(cli.command, Command::Ledger(LedgerCmd::Count { state: Some(s) }) if s == state)
            );
        }
        for bad in ["", "Done", "finished"] {
            let err = Cli::try_parse_from(["cairn", "ledger", "list", "--state", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
            assert!(
                err.to_string().contains("[possible values: pending, claimed, done, failed, cancelled]"),
                "{err}"
            );
        }
    }

    /// Every subcommand as `--help` and the man pages see it (built: the arguments of deferred
    /// subcommands added), depth first, with its full name (`cache get`).
    fn subcommands() -> Vec<(String, clap::Command)> {
        fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
            for sub in cmd.get_subcommands() {
                let name = format!("{prefix}{}", sub.get_name());
                out.push((name.clone(), sub.clone()));
                walk(sub, &format!("{name} "), out);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        let mut out = Vec::new();
        walk(&cli, "", &mut out);
        out
    }

    #[test]
    fn every_subcommand_is_described_by_a_sentence_about_it_not_by_its_argument_struct() {
        for (name, sub) in subcommands() {
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            assert!(
                about.starts_with(|c: char| c.is_ascii_uppercase()) && about.split_whitespace().count() >= 3,
                "cairn {name}: its description is {about:?}, not a sentence about it"
            );
            if let Some(long) = sub.get_long_about() {
                let first = about.trim_end_matches('.');
                assert!(
                    long.to_string().starts_with(first),
                    "cairn {name}: --help says {long:?}, -h {about:?}"
                );
            }
        }
    }

    #[test]
    fn every_duration_argument_is_a_dur_whose_grammar_its_commands_help_gives() {
        let mut cli = Cli::command();
        cli.build();
        let mut commands = vec![("".to_owned(), cli.clone())];
        commands.extend(subcommands());
        let mut seen = 0;
        for (name, cmd) in commands {
            let help = cmd.get_after_long_help().map(ToString::to_string).unwrap_or_default();
            // Global arguments (--busy-timeout) are checked where they are declared: on cairn.
            let own = cmd.get_arguments().filter(|a| name.is_empty() || !a.is_global_set());
            for arg in own {
                let parsed = arg.get_value_parser().type_id();
                if parsed != TypeId::of::<Duration>() && parsed != TypeId::of::<NotBefore>() {
                    continue;
                }
                seen += 1;
                let names: Vec<String> =
                    arg.get_value_names().into_iter().flatten().map(|n| n.to_string()).collect();
                assert!(
                    names == ["DUR"] || names == ["DUR|TIME"],
                    "cairn {name} --{}: {names:?}",
                    arg.get_id()
                );
                assert!(help.contains(DURATIONS), "cairn {name} --help does not say what a DUR is");
            }
        }
        assert!(seen >= 14, "only {seen} duration arguments found");
    }

    #[test]
    fn the_durations_the_help_shows_parse_and_those_it_refuses_are_refused() {
        for example in ["90s", "10m", "1h30m", "1h 30m", "1.5h", "2d", "500ms", "\"5 minutes\"", "30d"] {
            assert!(DURATIONS.contains(example), "{example}: {DURATIONS}");
            assert!(cairn::parse_duration(example.trim_matches('"')).is_ok(), "{example}");
        }
        for unit in [
            "w", "d", "h", "m", "s", "ms", "us", "ns", "weeks", "days", "hours", "min", "minutes", "sec",
            "seconds",
        ] {
            assert!(cairn::parse_duration(&format!("2{unit}")).is_ok(), "{unit}");
            assert!(
                cairn::parse_duration(&format!("2{}", unit.to_uppercase())).is_ok() || unit == "m",
                "{unit}"
            );
        }
        for refused in ["10", "5M", "1mo", "1y"] {
            assert!(cairn::parse_duration(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn negative_increments_and_trailing_commands_parse() {
        let cli = Cli::try_parse_from(["cairn", "cache", "incr", "k", "-5"]).unwrap();
        assert!(matches!(cli.command, Command::Cache(CacheCmd::Incr { by: -5, .. })));
        let cli =
            Cli::try_parse_from(["cairn", "memo", "--ttl", "1h30m", "--", "ls", "--color", "-l"]).unwrap();
        let Command::Memo(m) = cli.command else { panic!("memo") };
        assert_eq!(m.ttl, Duration::from_secs(5400));
        assert_eq!(m.command, ["ls", "--color", "-l"]);
    }
}
