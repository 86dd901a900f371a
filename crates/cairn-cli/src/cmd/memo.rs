//! `cairn memo`: run a command once, replay its result.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use cairn::Options;
use cairn::{command_key, CommandOutput, MemoPolicy, Memoized};

use super::Ctx;
use crate::cli::MemoArgs;
use crate::output::{note, Failure, Out, Outcome};

/// How long overlapping calls wait for the first one's command before running it
/// themselves. A computer that dies on this host is noticed at once (its pid is gone), so
/// this bound only matters for hosts sharing a file system.
const FILL_TIMEOUT: Duration = Duration::from_secs(3600);

pub fn run(ctx: &Ctx, args: MemoArgs) -> Outcome {
    let ns = ctx.ns.as_deref().unwrap_or("memo");
    let key = match &args.key {
        Some(k) => k.clone(),
        None => {
            let cwd = std::env::current_dir().map_err(Failure::io("reading the working directory"))?;
            command_key(&args.command, &cwd)
        }
    };
    let policy = MemoPolicy {
        ttl: args.ttl,
        stale: args.stale.unwrap_or(Duration::ZERO),
        cache_failures: args.cache_failures,
    };
    let store = ctx.open_with(Options::new().fill_timeout(FILL_TIMEOUT))?;
    let cache = store.cache(ns);
    let mut spawn_error = None;
    let mut run_it = || {
        execute(&args.command).map_err(|e| {
            // Not storable: a command that cannot start is reported, not memoized.
            spawn_error = Some(e);
            cairn::Error::InvalidInput("the command could not start".into())
        })
    };
    if args.refresh {
        let refreshed = cache.memo_refresh(&key, policy, &mut run_it);
        return match (refreshed, spawn_error) {
            (_, Some(e)) => Err(e),
            (r, None) => r.map(|_| crate::exit::OK).map_err(Failure::from),
        };
    }
    let outcome = cache.memo(&key, policy, &mut run_it);
    if let Some(e) = spawn_error {
        return Err(e);
    }
    let output = match outcome? {
        Memoized::Cached(output) => output,
        Memoized::Ran { output, stored } => {
            if !stored && (output.success() || policy.cache_failures) {
                note("the output is larger than a cache value may be; it was not stored");
            }
            output
        }
        Memoized::Stale { output, refreshing } => {
            if !refreshing {
                refresh_in_background(ctx, ns, &key, &args)?;
            }
            output
        }
        _ => return Err(Failure::Usage("unexpected memo outcome".into())),
    };
    drop(store);
    replay(&output)
}

/// Run the command with inherited stdin, capturing its stdout and stderr.
fn execute(argv: &[OsString]) -> Result<CommandOutput, Failure> {
    let (program, rest) = argv.split_first().ok_or_else(|| Failure::Usage("no command given".into()))?;
    let out = Command::new(program)
        .args(rest)
        .stdin(Stdio::inherit())
        .output()
        .map_err(|e| Failure::Spawn(program.to_string_lossy().into_owned(), e))?;
    Ok(CommandOutput { status: status_code(out.status), stdout: out.stdout, stderr: out.stderr })
}

/// The status a shell would report: the exit code, or 128 + the signal that killed it.
pub fn status_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Write the result back exactly: stdout, stderr, then exit with its status.
fn replay(output: &CommandOutput) -> Outcome {
    let mut out = Out::new();
    out.bytes(&output.stdout)?;
    out.flush()?;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(&output.stderr).and_then(|()| err.flush());
    Ok(u8::try_from(output.status & 0xff).unwrap_or(1))
}

/// Start `cairn memo --refresh` detached (its own process group, no terminal), so the stale
/// result is served now and the next call finds a fresh one.
fn refresh_in_background(ctx: &Ctx, ns: &str, key: &str, args: &MemoArgs) -> Outcome<()> {
    let exe = std::env::current_exe().map_err(Failure::io("locating the cairn executable"))?;
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut cmd = Command::new(exe);
    cmd.arg("--db").arg(ctx.path()?).args(["--ns", ns, "--busy-timeout", &ms(ctx.busy_timeout)]);
    cmd.args(["memo", "--refresh", "--key", key]);
    cmd.args(["--ttl", &ms(args.ttl)]);
    if let Some(stale) = args.stale {
        cmd.args(["--stale", &ms(stale)]);
    }
    if args.cache_failures {
        cmd.arg("--cache-failures");
    }
    cmd.arg("--").args(&args.command);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    cmd.spawn().map_err(Failure::io("starting the background refresh"))?;
    Ok(())
}
