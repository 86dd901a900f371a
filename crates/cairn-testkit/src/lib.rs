//! Helpers for cairn's multi-process and crash tests: run the `cairn-child` binary, read its
//! progress lines while it runs, kill it with SIGKILL, and draw kill points; the skip rule of
//! every test suite ([`skip_unless_ci`]), and its PostgreSQL fixture ([`postgres`]).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn::{Migrations, M};
use nix::fcntl::{Flock, FlockArg};

pub mod postgres;

/// How long [`Running::finish`] waits for a child: far beyond any workload here, so that
/// only a hang reaches it.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// A running child process whose stdout lines are collected as they arrive.
pub struct Running {
    child: Child,
    out: Arc<Output>,
    reader: Option<JoinHandle<()>>,
    /// Drains stderr as it comes, so that a chatty child never blocks on a full pipe.
    stderr: Option<JoinHandle<String>>,
}

/// The child's stdout so far, and a signal for each new line and for its end.
#[derive(Default)]
struct Output {
    state: Mutex<Lines>,
    changed: Condvar,
}

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    /// The child closed its stdout: the lines can no longer change.
    closed: bool,
}

impl Running {
    /// Start `bin` with `args`; stdin is piped (close it with [`Running::close_stdin`]).
    pub fn spawn(bin: &Path, args: &[&str]) -> std::io::Result<Running> {
        Self::spawn_command(Command::new(bin).args(args))
    }

    /// Start a prepared command (for a shell wrapper that sets a umask, say).
    pub fn spawn_command(cmd: &mut Command) -> std::io::Result<Running> {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut errors = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr"))?;
        let stderr = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut errors, &mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        });
        let out = Arc::new(Output::default());
        let sink = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut o) = sink.state.lock() {
                    o.lines.push(line);
                }
                sink.changed.notify_all();
            }
            if let Ok(mut o) = sink.state.lock() {
                o.closed = true;
            }
            sink.changed.notify_all();
        });
        Ok(Running { child, out, reader: Some(reader), stderr: Some(stderr) })
    }

    /// The lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.out.state.lock().map(|o| o.lines.clone()).unwrap_or_default()
    }

    /// Wait until a line satisfies `pred`, or `timeout` passes. True if one did.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        self.wait_until(timeout, |lines| lines.iter().any(|l| pred(l)))
    }

    /// Wait until `done` holds of the lines printed so far, or `timeout` passes. True if it
    /// did. False as soon as the child closes its stdout without `done` holding: its lines can
    /// no longer change, so waiting on is pointless.
    ///
    /// `done` runs again as soon as a line arrives, without polling, so that a short-lived
    /// moment ("the last line is a claim", until the child's next line) is seen while it lasts.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let until = Instant::now() + timeout;
        let Ok(mut out) = self.out.state.lock() else { return false };
        loop {
            if done(&out.lines) {
                return true;
            }
            let now = Instant::now();
            if out.closed || now >= until {
                return false;
            }
            out = match self.out.changed.wait_timeout(out, until - now) {
                Ok((out, _)) => out,
                Err(_) => return false,
            };
        }
    }

    /// Close the child's stdin.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// SIGKILL the child and collect everything it printed before dying.
    pub fn kill(self) -> std::io::Result<Vec<String>> {
        Ok(self.kill_and_wait()?.1)
    }

    /// SIGKILL the child unless it already exited; returns how it ended (a child that failed
    /// by itself before the kill shows here), its stdout lines and its stderr.
    pub fn kill_and_wait(mut self) -> std::io::Result<(ExitStatus, Vec<String>, String)> {
        self.child.kill()?;
        let status = self.child.wait()?;
        let stderr = self.join_readers();
        Ok((status, self.lines(), stderr))
    }

    /// Close the child's stdin and wait for it to exit, at most [`CHILD_TIMEOUT`]; returns its
    /// status, its stdout lines and its stderr.
    pub fn finish(self) -> std::io::Result<(ExitStatus, Vec<String>, String)> {
        self.finish_within(CHILD_TIMEOUT)
    }

    /// [`Running::finish`], waiting at most `timeout`: a child still running then is killed,
    /// and the error (`TimedOut`) carries its last lines and its stderr.
    pub fn finish_within(mut self, timeout: Duration) -> std::io::Result<(ExitStatus, Vec<String>, String)> {
        self.close_stdin();
        let until = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= until {
                let (_, lines, stderr) = self.kill_and_wait()?;
                let last: Vec<&String> = lines.iter().rev().take(5).rev().collect();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the child still ran after {timeout:?}: killed; last lines {last:?}; stderr: {stderr}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(5)); // pacing the poll
        };
        let stderr = self.join_readers();
        Ok((status, self.lines(), stderr))
    }

    /// Wait for the child's output to end (it has exited); returns its stderr.
    fn join_readers(&mut self) -> String {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.stderr.take().and_then(|e| e.join().ok()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave children running.
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `done` until it holds; fail the test, saying `what` was awaited, after 20 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10)); // pacing the poll
    }
}

/// A small deterministic generator (xorshift64*) for kill points: a failing run is
/// reproduced from the seed it prints.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from `CAIRN_SEED`, else from the clock.
    pub fn seed_from_env() -> u64 {
        std::env::var("CAIRN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
    }

    /// The next number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// A count from the environment variable `name`, else `default`: lets CI run short and a
/// person run long with the same test.
pub fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The [`exclusive`] name taken by the tests that load every core for long: the contention
/// tests with many writer processes, the crash torture, the fault tests, the kill-and-resume
/// ledger tests, and cairn-state's 256 MiB round-trip.
pub const HEAVY: &str = "heavy";

/// Held while a test that must have the machine to itself runs; see [`exclusive`].
#[derive(Debug)]
pub struct ExclusiveGuard {
    _lock: Flock<File>,
}

/// The file whose `flock` [`exclusive`] takes for `name`.
pub fn exclusive_lock_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cairn-test-{name}.lock"))
}

/// Wait until no other test holds `name`, then hold it until the guard drops.
///
/// Two heavy tests side by side on a two-core machine starve each other: busy timeouts and
/// leases run out, and the contention test then fails on an error it exists to rule out.
/// libtest runs the tests of one binary on parallel threads, cargo-nextest runs each test in
/// its own process: an `flock` conflicts between any two open file descriptions, so this
/// one lock serialises both.
pub fn exclusive(name: &str) -> std::io::Result<ExclusiveGuard> {
    let mut file = open_lock_file(&exclusive_lock_path(name))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(ExclusiveGuard { _lock: lock }),
            Err((f, nix::errno::Errno::EINTR)) => file = f,
            Err((_, e)) => return Err(e.into()),
        }
    }
}

/// [`exclusive`] without waiting: `None` while another test holds `name`.
pub fn try_exclusive(name: &str) -> std::io::Result<Option<ExclusiveGuard>> {
    let file = open_lock_file(&exclusive_lock_path(name))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(ExclusiveGuard { _lock: lock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// Read-only is enough for `flock`, and opens a lock file that another user's test run
/// created in a shared temporary directory.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            OpenOptions::new().create(true).append(true).open(path)
        }
        opened => opened,
    }
}

/// The rows each step of [`torture_migrations`] inserts into its table.
pub const STEP_ROWS: i64 = 400;

/// `steps` migration steps for the crash tests, each heavy enough to span many pages: step `k`
/// creates table `tK` with [`STEP_ROWS`] rows of varying length and bumps the one row of
/// `summary` (created by step 1); `mid_step(k)` runs half-way, inside the step's transaction.
pub fn torture_migrations(steps: i64, mid_step: fn(i64)) -> Migrations<'static> {
    Migrations::new(
        (1..=steps)
            .map(|k| {
                M::up_with(move |db| {
                    if k == 1 {
                        db.execute_batch(
                            "CREATE TABLE summary (steps INTEGER, rows INTEGER); INSERT INTO summary VALUES (0, 0);",
                        )?;
                    }
                    db.execute_batch(&format!("CREATE TABLE t{k} (i INTEGER PRIMARY KEY, v TEXT NOT NULL);"))?;
                    mid_step(k);
                    // Rows of 64 to 575 characters: printf pads i with zeros to that width.
                    db.execute(
                        &format!(
                            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1) \
                             INSERT INTO t{k} SELECT i, printf('%0*d', 64 + (i * ?2) % 512, i) FROM c"
                        ),
                        &[STEP_ROWS.into(), k.into()],
                    )?;
                    db.execute("UPDATE summary SET steps = steps + 1, rows = rows + ?1", &[STEP_ROWS.into()])?;
                    Ok(())
                })
            })
            .collect(),
    )
}

/// The sum of `length(v)` over table `tK` once step `k` of [`torture_migrations`] committed.
pub fn step_bytes(k: i64) -> i64 {
    (1..=STEP_ROWS).map(|i| 64 + (i * k) % 512).sum()
}

/// Say that a test skipped (part of) its work for want of `what`, and add a line naming the
/// test to the file `$CAIRN_SKIP_LOG` if set (`.ci/run` and `scripts/test` list them at the
/// end). Under `CAIRN_NO_SKIP` (see [`must_not_skip`]; `.ci/run` sets it, its machine being
/// root with mount(8) and a C compiler) fail instead: there a skip would pass a promise that
/// nothing checked.
pub fn skip_unless_ci(what: &str) {
    if must_not_skip(std::env::var_os("CAIRN_NO_SKIP").as_deref()) {
        panic!("this test needs {what}, and CAIRN_NO_SKIP forbids a skip: provide it or set CAIRN_NO_SKIP=0");
    }
    let line = format!("{}: needs {what}", std::thread::current().name().unwrap_or("a test"));
    eprintln!("skipped: {line}");
    if let Some(log) = std::env::var_os("CAIRN_SKIP_LOG").filter(|l| !l.is_empty()) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
            .unwrap_or_else(|e| panic!("cannot record the skip in CAIRN_SKIP_LOG={log:?}: {e}"));
    }
}

/// Whether `CAIRN_NO_SKIP` set to `value` makes a test that cannot run fail instead of
/// skipping: set, non-empty and not `0`.
pub fn must_not_skip(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::must_not_skip;

    #[test]
    fn cairn_no_skip_forbids_skipping_when_set_non_empty_and_not_0() {
        assert!(!must_not_skip(None));
        assert!(!must_not_skip(Some("".as_ref())));
        assert!(!must_not_skip(Some("0".as_ref())));
        assert!(must_not_skip(Some("1".as_ref())));
        assert!(must_not_skip(Some("yes".as_ref())));
    }
}
