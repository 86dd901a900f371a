//! Helpers for cairn's multi-process and crash tests: run the `cairn-child` binary, read its
//! progress lines while it runs, kill it with SIGKILL, and draw kill points.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn::{Migrations, M};

/// A running child process whose stdout lines are collected as they arrive.
pub struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
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
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Ok(Running { child, lines, reader: Some(reader) })
    }

    /// The lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait until a line satisfies `pred`, or `timeout` passes. True if one did.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.lines().iter().any(|l| pred(l)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
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
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr)?;
        }
        self.join_reader();
        Ok((status, self.lines(), stderr))
    }

    /// Wait for the child to exit; returns its status, its stdout lines and its stderr.
    pub fn finish(mut self) -> std::io::Result<(ExitStatus, Vec<String>, String)> {
        self.close_stdin();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr)?;
        }
        let status = self.child.wait()?;
        self.join_reader();
        Ok((status, self.lines(), stderr))
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
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
