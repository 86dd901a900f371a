//! `cairn lock NAME -- CMD`: run a command holding a named lock.

use std::process::Stdio;
use std::time::Duration;

use super::signals::Forwarder;
use super::{command_of, spawn, status_code, Ctx};
use crate::cli::LockArgs;
use crate::exit;
use crate::output::{note, Failure, Outcome};

/// "Wait as long as it takes": long enough to be forever for a cron job.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub fn run(ctx: &Ctx, args: LockArgs) -> Outcome {
    // Refused before the lock is taken and the command runs: the lock is kept alive while it
    // runs, which a shorter TTL does not allow. (Zero is the library's to refuse: it gives
    // no mutual exclusion at all.)
    if !args.ttl.is_zero() && args.ttl < cairn::MIN_KEEP_ALIVE_TTL {
        return Err(cairn::Error::InvalidInput(format!(
            "--ttl {} is too short for a lock kept while the command runs: it is renewed every TTL/3, \
             and renewals that late let another process take it; give at least {}",
            cairn::format_duration(args.ttl),
            cairn::format_duration(cairn::MIN_KEEP_ALIVE_TTL)
        ))
        .into());
    }
    let store = ctx.open()?;
    let wait = if args.no_wait { Duration::ZERO } else { args.wait.unwrap_or(FOREVER) };
    let Some(guard) = store.semaphore(&args.name, args.max, args.ttl, wait)? else {
        let pids: Vec<String> =
            store.lock_holders(&args.name, args.max)?.iter().map(|h| h.pid.to_string()).collect();
        let by = match pids.len() {
            0 => String::new(),
            1 => format!(" by pid {}", pids[0]),
            _ => format!(" by pids {}", pids.join(", ")),
        };
        let what = if args.max == 1 { String::new() } else { format!(" ({} holders at most)", args.max) };
        note(format_args!("lock '{}'{what} is held{by}; not running the command", args.name));
        return Ok(args.held_exit);
    };

    let running = Running::start(&args.command)?;
    // The library renews the lock from its own connection while the command runs.
    let renewing = guard.keep_alive(args.ttl)?;
    let status = running.wait();
    let lost = match renewing.stop() {
        Ok(()) => None,
        Err(e) => {
            note(format_args!("lock '{}' was not held to the end: {e}", args.name));
            (e.kind() == cairn::ErrorKind::LeaseLost).then(|| exit::code_of(e.kind()))
        }
    };
    guard.release()?;
    let code = exit::of_command(status?);
    // The command ran partly unprotected: a script must not take that for success. A command
    // that failed keeps its own status.
    Ok(match lost {
        Some(lost) if code == exit::OK => lost,
        _ => code,
    })
}

/// A command running with cairn's stdin, stdout and stderr, the signals sent to cairn passed
/// on to it: how `cairn lock` and `cairn limit` run theirs.
pub(super) struct Running {
    child: std::process::Child,
    forwarding: Forwarder,
    tail: Option<Tail>,
}

/// The end of a command's stderr as read so far, and word that the reader saw it close.
type Tail = (std::sync::Arc<std::sync::Mutex<Vec<u8>>>, std::sync::mpsc::Receiver<()>);

/// How long `Running::wait_with_tail` waits, once the command ended, for its stderr to close:
/// something it left running may hold it open for ever.
const TAIL_GRACE: Duration = Duration::from_millis(500);

/// How much of a command's stderr `Running::start_with` keeps: its end, for a job's history.
const TAIL_BYTES: usize = 4096;

impl Running {
    pub(super) fn start(command: &[std::ffi::OsString]) -> Outcome<Running> {
        Running::start_with(command_of(command)?, false)
    }

    /// [`Running::start`] of a prepared command; with `keep_tail`, its stderr passes through
    /// cairn, which keeps its end ([`Running::wait_with_tail`]).
    pub(super) fn start_with(mut command: std::process::Command, keep_tail: bool) -> Outcome<Running> {
        let stderr = if keep_tail { Stdio::piped() } else { Stdio::inherit() };
        let (mut child, forwarding) = Forwarder::around(|| {
            spawn(command.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(stderr))
        })?;
        let tail = child.stderr.take().map(|mut from| {
            let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let (closed, on_close) = std::sync::mpsc::channel();
            let shared = std::sync::Arc::clone(&kept);
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                    if let Ok(mut kept) = shared.lock() {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > 2 * TAIL_BYTES {
                            let cut = kept.len() - TAIL_BYTES;
                            kept.drain(..cut);
                        }
                    }
                }
                let _ = closed.send(());
            });
            (kept, on_close)
        });
        Ok(Running { child, forwarding, tail })
    }

    /// Wait for the command to end; its status as a shell reports it (128+N if killed by
    /// signal N).
    pub(super) fn wait(self) -> Outcome<i32> {
        Ok(self.wait_with_tail()?.0)
    }

    /// [`Running::wait`], and the end of its stderr if it was kept (the last 4 KiB).
    pub(super) fn wait_with_tail(mut self) -> Outcome<(i32, Option<Vec<u8>>)> {
        let status = self.child.wait().map_err(Failure::io("waiting for the command"));
        drop(self.forwarding);
        let tail = self.tail.take().map(|(kept, on_close)| {
            let _ = on_close.recv_timeout(TAIL_GRACE);
            let kept = kept.lock().map(|k| k.clone()).unwrap_or_default();
            kept[kept.len().saturating_sub(TAIL_BYTES)..].to_vec()
        });
        Ok((status_code(status?), tail))
    }
}
