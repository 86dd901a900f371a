//! Helpers for cairn's multi-process and crash tests: run the `cairn-child` binary, read its
//! progress lines while it runs, kill it with SIGKILL, and draw kill points.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    pub fn kill(mut self) -> std::io::Result<Vec<String>> {
        self.child.kill()?;
        self.child.wait()?;
        self.join_reader();
        Ok(self.lines())
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
