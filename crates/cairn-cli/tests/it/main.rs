//! The `cairn` binary, driven as scripts drive it: exit codes, exact stdout, one-line stderr.

mod cache;
mod claims;
mod idioms;
mod ledger;
mod maintenance;
mod memo_lock;
mod paths;
mod readonly;
mod types;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

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

    /// `cairn` with this store, whatever the caller's environment says.
    pub(crate) fn cairn(&self) -> Command {
        let mut c = Command::cargo_bin("cairn").unwrap();
        c.env("CAIRN_DB", self.db()).env_remove("XDG_STATE_HOME").current_dir(self.dir.path());
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
