//! Stores that cannot be written: a read-only directory, a write-protected file. Reading
//! commands still read; writing ones exit 3 saying what to fix; nothing is created or changed.
//!
//! Root ignores permission bits, so when the tests run as root (as in CI) the `cairn` commands
//! run as `nobody` (uid 65534), from a copy of the binary in a directory that user can reach.

use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::{assert_one_line_error, cairn_bin, read};

const NOBODY: u32 = 65534;

struct Unprivileged {
    dir: TempDir,
    bin: PathBuf,
    /// The uid to run as: `nobody` when the tests run as root, else ourselves.
    uid: Option<u32>,
}

impl Unprivileged {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root =
            std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap();
        let bin = dir.path().join("cairn");
        std::fs::copy(cairn_bin(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("store")).unwrap();
        let uid = root.then_some(NOBODY);
        if root {
            chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
            chown(dir.path().join("store"), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        Unprivileged { dir, bin, uid }
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn db(&self) -> PathBuf {
        self.store_dir().join("state.db")
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = Command::new(&self.bin);
        c.args(args).env("CAIRN_DB", self.db()).env_remove("XDG_STATE_HOME").current_dir(self.dir.path());
        if let Some(uid) = self.uid {
            c.uid(uid).gid(uid);
        }
        let out = crate::output_within(&mut c, "cairn");
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
    }

    fn ok(&self, args: &[&str], code: i32) -> String {
        let (got, out, err) = self.run(args);
        assert_eq!(got, code, "cairn {args:?} as uid {:?}: stderr: {err}", self.uid);
        out
    }

    fn chmod(&self, path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.store_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Unprivileged {
    fn drop(&mut self) {
        // Let the TempDir be removed whatever a test left read-only.
        let _ = std::fs::set_permissions(self.store_dir(), std::fs::Permissions::from_mode(0o700));
    }
}

#[test]
fn a_store_in_a_read_only_directory_is_read_and_a_write_names_the_directory_to_fix() {
    let env = Unprivileged::new();
    env.ok(&["cache", "set", "k", "v"], 0);
    env.ok(&["ledger", "mark", "a", "b"], 0);
    env.ok(&["checkpoint", "set", "job", "page-7"], 0);
    assert_eq!(env.listing(), ["state.db"], "the last close removes -wal and -shm");
    env.chmod(&env.store_dir(), 0o555);
    let before = read(&env.db());

    // SQLite cannot create the -shm a WAL reader needs here; with no -wal there is nothing
    // but the file to read, so reading commands work.
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "v");
    env.ok(&["ledger", "has", "a"], 0);
    env.ok(&["ledger", "has", "zzz"], 1);
    assert_eq!(env.ok(&["ledger", "filter"], 0), "");
    assert!(env.ok(&["ledger", "count"], 0).contains("done\t2"));
    assert_eq!(env.ok(&["checkpoint", "get", "job"], 0), "page-7");
    assert!(env.ok(&["stats"], 0).contains("done=2"));
    let report = env.ok(&["doctor"], 0);
    assert!(report.contains("journal_mode  wal"), "{report}");

    for args in
        [&["cache", "set", "k", "w"][..], &["ledger", "mark", "c"], &["checkpoint", "set", "job", "x"]]
    {
        let (code, _, err) = env.run(args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert_one_line_error(&err);
        assert!(err.contains("its directory") && err.contains("is not writable"), "{err}");
        assert!(err.contains("chmod u+w"), "{err}");
    }
    assert_eq!(read(&env.db()), before, "the file changed");
    assert_eq!(env.listing(), ["state.db"]);

    env.chmod(&env.store_dir(), 0o700);
    env.ok(&["cache", "set", "k", "w"], 0);
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "w");
}

#[test]
fn a_write_protected_store_is_read_and_a_write_exits_3_saying_so() {
    let env = Unprivileged::new();
    env.ok(&["cache", "set", "k", "v"], 0);
    env.ok(&["ledger", "mark", "a"], 0);
    env.chmod(&env.db(), 0o400);
    let before = read(&env.db());

    assert_eq!(env.ok(&["cache", "get", "k"], 0), "v");
    env.ok(&["ledger", "has", "a"], 0);
    let (code, _, err) = env.run(&["cache", "set", "k", "w"]);
    assert_eq!(code, 3, "{err}");
    assert_one_line_error(&err);
    assert!(err.contains("write-protected"), "{err}");
    let (code, _, err) = env.run(&["ledger", "mark", "b"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("write-protected"), "{err}");
    assert_eq!(read(&env.db()), before, "the file changed");
}

/// A read of a write-protected store leaves its -wal and -shm behind (a reader cannot remove
/// them). They used to stay 0400, so after `chmod u+w` on the file, cairn's own advice, every
/// write still failed and `doctor` called the 0400 -shm ok. Now the write works, `doctor` is
/// clean, and side files left unwritable (by an earlier version) are named by `doctor` with
/// the exact command, then repaired by the next writing command.
#[test]
fn a_write_protected_store_that_was_read_takes_writes_once_made_writable_again() {
    let env = Unprivileged::new();
    env.ok(&["cache", "set", "k", "v"], 0);
    env.chmod(&env.db(), 0o400);
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "v");
    env.ok(&["ledger", "has", "a"], 1);
    assert_eq!(env.listing(), ["state.db", "state.db-shm", "state.db-wal"], "a reader leaves them");

    env.chmod(&env.db(), 0o600);
    env.ok(&["cache", "set", "k", "w"], 0);
    env.ok(&["ledger", "mark", "a"], 0);
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "w");
    env.ok(&["doctor"], 0);

    // What an earlier version left: a -shm nobody can write, with a reader keeping it there.
    env.chmod(&env.db(), 0o400);
    env.ok(&["cache", "get", "k"], 0);
    let shm = env.store_dir().join("state.db-shm");
    env.chmod(&shm, 0o400);
    env.chmod(&env.db(), 0o600);
    let report = env.ok(&["doctor"], 1);
    let fix = format!("fix: chmod u+w '{}'", shm.display());
    assert!(report.contains(&format!("FAIL  permissions   {} is 0400", shm.display())), "{report}");
    assert!(report.contains(&fix), "{report}");
    env.ok(&["cache", "set", "k", "x"], 0);
    assert_eq!(env.ok(&["cache", "get", "k"], 0), "x");
    env.ok(&["doctor"], 0);
}
