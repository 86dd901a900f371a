//! `cairn memo`: run a command once, replay its result.

use std::io::{self, IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use cairn::{CommandKey, KeptInput, MemoOutcome, MemoPolicy, Options, Stream};

use super::signals::Forwarder;
use super::{command_of, spawn, yes_no, Ctx};
use crate::cli::MemoArgs;
use crate::output::{note, stdout_failure, Failure, Outcome};

/// How long overlapping calls wait for the first one's command before running it
/// themselves. A computer that dies on this host is noticed at once (its pid is gone), so
/// this bound only matters for hosts sharing a file system.
const FILL_TIMEOUT: Duration = Duration::from_secs(3600);

pub fn run(ctx: &Ctx, args: MemoArgs) -> Outcome {
    let ns = ctx.ns.as_deref().unwrap_or("memo");
    let (key, input) = key_of(&args)?;
    let mut policy = MemoPolicy::new(args.ttl).cache_failures(args.cache_failures).force(args.force);
    if let Some(stale) = args.stale {
        policy = policy.stale(stale);
    }
    let store = ctx.open_with(Options::new().fill_timeout(FILL_TIMEOUT))?;
    let cache = store.cache(ns);
    if args.forget {
        return Ok(yes_no(cache.memo_forget(&key)?));
    }
    let mut out = Passer::new();
    let mut passing_on: Option<io::Error> = None;
    let mut run_it = |rec: &mut cairn::MemoRecorder<'_, '_>| -> Outcome<i32> {
        let mut command = command_of(&args.command)?;
        let stdin = match &input {
            Some(kept) => kept.to_stdio().map_err(Failure::io("passing stdin on to the command"))?,
            None => Stdio::inherit(),
        };
        let (mut child, _forwarding) =
            Forwarder::around(|| spawn(command.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped())))?;
        let ran = rec.record_child(&mut child, &mut |stream, bytes| out.pass(stream, bytes, true))?;
        passing_on = ran.passing_on;
        Ok(ran.status)
    };
    if args.refresh {
        cache.memo_refresh_stream(&key, policy, &mut run_it)?;
        return Ok(crate::exit::OK);
    }
    let mut replay = Passer::new();
    let outcome = cache.memo_stream(
        &key,
        policy,
        &mut |s, b| replay.pass(s, b, false).map_err(stdout_failure),
        &mut run_it,
    )?;
    replay.finish().map_err(stdout_failure)?;
    if let Some(e) = passing_on {
        return Err(stdout_failure(e));
    }
    match outcome {
        MemoOutcome::Ran { status, stored: false } if status == 0 || args.cache_failures => {
            note("the result was not kept: its output was removed from the store while the command ran");
        }
        MemoOutcome::Stale { refreshing: false, .. } => {
            refresh_in_background(ctx, ns, &key, &args, input.as_ref())?
        }
        _ => {}
    }
    Ok(crate::exit::of_command(outcome.status()))
}

/// The result's key, and the stdin read into it (kept for the command): the command line and
/// working directory, or --key, then --env, --modtime and stdin unless it is a terminal or
/// --ignore-stdin says so. A background refresh is given the finished key.
fn key_of(args: &MemoArgs) -> Outcome<(String, Option<KeptInput>)> {
    if args.refresh {
        let key = args.key.clone().ok_or_else(|| Failure::Usage("--refresh needs --key".into()))?;
        return Ok((key, None));
    }
    let mut key = match &args.key {
        Some(name) => CommandKey::named(name),
        None => {
            let cwd = std::env::current_dir().map_err(Failure::io("reading the working directory"))?;
            CommandKey::new(&args.command, &cwd)
        }
    };
    for name in &args.env {
        key.env(name.as_ref(), std::env::var_os(name).as_deref());
    }
    for path in &args.modtime {
        key.modtime(path);
    }
    let stdin = io::stdin();
    let input = if args.ignore_stdin || stdin.is_terminal() {
        None
    } else {
        match key.input(stdin.lock()) {
            Ok(kept) => Some(kept),
            // No stdin at all (a closed descriptor): nothing to read, nothing to pass on.
            Err(e) if e.raw_os_error() == Some(nix::libc::EBADF) => None,
            Err(e) => return Err(Failure::Io("reading stdin".into(), e)),
        }
    };
    Ok((key.finish(), input))
}

/// Where output goes: stdout (buffered, flushed before anything goes to stderr, so that the
/// two interleave as written) and stderr.
pub(super) struct Passer {
    stdout: io::BufWriter<io::StdoutLock<'static>>,
    stderr: io::StderrLock<'static>,
}

impl Passer {
    pub(super) fn new() -> Self {
        Passer {
            stdout: io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
            stderr: io::stderr().lock(),
        }
    }

    /// Write a piece; `live`: the command is running, so the reader gets it now.
    pub(super) fn pass(&mut self, stream: Stream, bytes: &[u8], live: bool) -> io::Result<()> {
        match stream {
            Stream::Stdout => {
                self.stdout.write_all(bytes)?;
                if live {
                    self.stdout.flush()?;
                }
            }
            Stream::Stderr => {
                self.stdout.flush()?;
                // A closed stderr is no reason to stop: messages are not data.
                let _ = self.stderr.write_all(bytes);
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> io::Result<()> {
        self.stdout.flush()
    }
}

/// Start `cairn memo --refresh` detached (its own process group, no terminal; stdin the
/// one this call read), so the stale result is served now and the next call finds a fresh one.
fn refresh_in_background(
    ctx: &Ctx,
    ns: &str,
    key: &str,
    args: &MemoArgs,
    input: Option<&KeptInput>,
) -> Outcome<()> {
    let exe = std::env::current_exe().map_err(Failure::io("locating the cairn executable"))?;
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut cmd = Command::new(exe);
    cmd.arg("--db").arg(ctx.path()?).args(["--ns", ns, "--busy-timeout", &ms(ctx.busy_timeout)]);
    cmd.args(["--durability", ctx.durability.as_str()]);
    cmd.args(["memo", "--refresh", "--key", key]);
    cmd.args(["--ttl", &ms(args.ttl)]);
    if let Some(stale) = args.stale {
        cmd.args(["--stale", &ms(stale)]);
    }
    if args.cache_failures {
        cmd.arg("--cache-failures");
    }
    cmd.arg("--").args(&args.command);
    let stdin = match input {
        Some(kept) => kept.to_stdio().map_err(Failure::io("passing stdin on to the refresh"))?,
        None => Stdio::null(),
    };
    cmd.stdin(stdin).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    cmd.spawn().map_err(Failure::io("starting the background refresh"))?;
    Ok(())
}
