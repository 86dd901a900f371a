//! The `cairn` binary, driven as scripts drive it: exit codes, exact stdout, one-line stderr.

mod cache;
mod claims;
mod controls;
mod idioms;
mod jobs;
mod ledger;
mod limit;
mod maintenance;
mod memo;
mod memo_lock;
mod namespaces;
mod paths;
mod postgres;
mod queue_order;
mod readonly;
mod runs;
mod types;
mod ui;
mod wait;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use tempfile::TempDir;

/// The longest any one command of these tests may run: a hang fails the test with what the
/// command printed, instead of stalling the whole run.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A scratch store: a directory and the `cairn` command pointed at a file inside it.
pub(crate) struct Env {
    pub(crate) dir: TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        Env { dir: tempfile::tempdir().unwrap() }
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `cairn` with this store and its defaults, whatever the caller's environment says.
    pub(crate) fn cairn(&self) -> Command {
        let mut c = Command::cargo_bin("cairn").unwrap();
        c.env("CAIRN_DB", self.db())
            .env_remove("XDG_STATE_HOME")
            .env_remove("CAIRN_NS")
            .env_remove("CAIRN_MEMO_TTL")
            .env_remove("CAIRN_DURABILITY")
            .current_dir(self.dir.path())
            .timeout(COMMAND_TIMEOUT);
        c
    }

    /// Run with `args`; (exit code, stdout, stderr).
    pub(crate) fn run(&self, args: &[&str]) -> (i32, Vec<u8>, String) {
        self.run_stdin(args, b"")
    }

    pub(crate) fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
        let out = self.cairn().args(args).write_stdin(stdin.to_vec()).output().unwrap();
        (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Run, expecting `code`; the stdout as text.
    pub(crate) fn ok(&self, args: &[&str], code: i32) -> String {
        let (got, out, err) = self.run(args);
        assert_eq!(got, code, "cairn {args:?}: stderr: {err}");
        String::from_utf8(out).unwrap()
    }
}

/// The path of the built binary, for shell scripts.
pub(crate) fn cairn_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("cairn")
}

/// Every failure message is one line starting with `cairn: `, and nothing else went to stderr.
pub(crate) fn assert_one_line_error(stderr: &str) {
    assert!(stderr.starts_with("cairn: "), "{stderr:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr:?}");
}

pub(crate) fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Poll until a condition holds, failing after 20 s (the testkit's).
pub(crate) use cairn_testkit::wait_until;

/// Wait for `child` (started in its own process group) to exit; after [`COMMAND_TIMEOUT`],
/// kill its whole group and fail the test.
pub(crate) fn wait_within(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still ran after {COMMAND_TIMEOUT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5)); // pacing the poll
    }
}

/// `cmd.spawn()`, tried again while the program is "text file busy": a test that has just
/// written a program (a copy of cairn) runs it while another test's process, forked at that
/// moment and not yet replaced by its own program, still holds the file open for writing.
pub(crate) fn spawn_retrying(cmd: &mut std::process::Command) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5)); // the other fork's exec to happen
            }
            other => return other.unwrap(),
        }
    }
}

/// `cmd.output()`, bounded by [`COMMAND_TIMEOUT`] (see [`wait_within`]; `cmd` should start
/// its own process group, so that a timeout kills everything it started).
pub(crate) fn output_within(cmd: &mut std::process::Command, what: &str) -> Output {
    let mut child = spawn_retrying(cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = wait_within(&mut child, what);
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}
