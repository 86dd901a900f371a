//! Faults in the middle of writes: a disk that fills up, a disk that fails. The writer runs
//! under an LD_PRELOAD shim (`faults/enospc.c`, compiled here with `cc`) that fails every
//! write with ENOSPC (or EIO) once a byte budget is spent, at a different point of the
//! transaction stream for each budget; and on real tmpfs file systems small enough to fill.
//! The writer must stop with a clear "disk full" error; the file must hold every commit it
//! reported, no partial transaction, and pass `integrity_check`; and once space returns (the
//! shim removed, the file system grown) the same store must take writes again.

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn::{Error, Store};
use cairn_testkit::Running;

use crate::crash::verify;
use crate::{child, heavy};

/// Build the shim, or say why this test cannot run here.
fn shim(dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("faults/enospc.c");
    let out = dir.join("enospc.so");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .is_ok_and(|s| s.success());
    built.then_some(out)
}

#[test]
fn a_disk_that_fills_mid_transaction_leaves_every_reported_commit_and_no_partial_one() -> Result<(), Error> {
    write_faults("disk-full", None, "DiskFull")
}

#[test]
fn write_errors_mid_transaction_leave_every_reported_commit_and_no_partial_one() -> Result<(), Error> {
    write_faults("I/O error", Some("FAULT_EIO"), "Io")
}

/// Run the writer under the shim at 40 budgets; `extra` selects the errno, `kind` is the
/// ErrorKind the writer must report.
fn write_faults(what: &str, extra: Option<&str>, kind: &str) -> Result<(), Error> {
    let _machine = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(shim) = shim(dir.path()) else {
        cairn_testkit::skip_unless_ci("a C compiler (cc) to build the fault shim: install gcc or clang");
        return Ok(());
    };
    let mut faults = 0;
    let mut commits = 0;
    // 40 budgets from 4 KB to 3.3 MB, each 19% above the last: the failure lands while the
    // store is created, in the WAL header, in a page write, in a commit record or in a
    // checkpoint, depending on the budget.
    let budgets = (0..40).map(|i| (4_000.0 * 1.19f64.powi(i)) as u64);
    for (round, budget) in budgets.enumerate() {
        let path = dir.path().join(format!("full-{round}.db"));
        let p = path.to_str().expect("utf-8");
        let mut cmd = Command::new(child());
        cmd.args(["crash-writer", "--db", p, "--size-cap", "4000"])
            .env("LD_PRELOAD", &shim)
            .env("FAULT_WRITE_BUDGET", budget.to_string());
        if let Some(var) = extra {
            cmd.env(var, "1");
        }
        let (status, lines, stderr) =
            Running::spawn_command(&mut cmd).expect("spawn").finish().expect("wait");
        assert!(!status.success(), "budget {budget}: the writer never hit the full disk");
        assert!(stderr.contains(&format!("({kind})")), "budget {budget}: not reported as {kind}: {stderr}");
        assert!(!stderr.contains("panicked"), "budget {budget}: {stderr}");
        faults += 1;
        let reported: Vec<i64> =
            lines.iter().filter_map(|l| l.strip_prefix("COMMIT ")).filter_map(|n| n.parse().ok()).collect();
        commits += reported.len();
        let before = verify(&path, &reported)?;
        // Space is back: the same file takes writes again, and they are whole.
        let store = Store::open(&path)?;
        store.cache("after").set("k", "v", None)?;
        drop(store);
        assert_eq!(verify(&path, &[])?, before, "budget {budget}: recovery changed the data");
        assert_eq!(Store::open(&path)?.cache("after").get::<String>("k")?.as_deref(), Some("v"));
    }
    eprintln!("{what} test: {faults} faults injected, {commits} reported commits all present, each store writable again");
    Ok(())
}

/// The same on a real file system that fills up, not a shim: the writer runs on a small tmpfs
/// until the kernel says ENOSPC, wherever that lands (a WAL append, a checkpoint growing the
/// database file, the -shm). Sizes from 1 to 9 MiB put the end before, at and after the first
/// automatic checkpoints (at 4 MB of log). Then the mount is grown, as when space is freed,
/// and the same store must take 4 MB more and stay whole. Needs root and mount(8) permission
/// (CI has both); says `skipped` otherwise.
#[test]
fn a_real_file_system_that_fills_up_keeps_every_reported_commit_and_takes_writes_once_grown(
) -> Result<(), Error> {
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _machine = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = |at: &Path, options: &str| {
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success())
    };
    let probe = dir.path().join("probe");
    std::fs::create_dir(&probe).expect("mkdir");
    if !mount(&probe, "size=1m") {
        cairn_testkit::skip_unless_ci("root and mount(8) permission, to mount a small tmpfs");
        return Ok(());
    }
    drop(Unmount(probe));
    let mut commits = 0;
    for mib in [1, 3, 5, 7, 9] {
        let at = dir.path().join(format!("fs-{mib}m"));
        std::fs::create_dir(&at).expect("mkdir");
        assert!(mount(&at, &format!("size={mib}m,mode=0700")), "mount a {mib} MiB tmpfs");
        let _unmount = Unmount(at.clone());
        let path = at.join("state.db");
        let p = path.to_str().expect("utf-8");
        let (status, lines, stderr) =
            Running::spawn(child(), &["crash-writer", "--db", p, "--size-cap", "4000"])
                .expect("spawn")
                .finish()
                .expect("wait");
        assert!(!status.success(), "{mib} MiB: the writer never filled the file system");
        assert!(stderr.contains("(DiskFull)"), "{mib} MiB: not reported as a full disk: {stderr}");
        let reported: Vec<i64> =
            lines.iter().filter_map(|l| l.strip_prefix("COMMIT ")).filter_map(|n| n.parse().ok()).collect();
        assert!(!reported.is_empty(), "{mib} MiB: nothing committed before the disk filled");
        commits += reported.len();
        let before = verify(&path, &reported)?;
        // Space comes back: the same store takes 4 MB more (past an automatic checkpoint).
        assert!(mount(&at, &format!("remount,size={}m", mib + 16)), "grow the tmpfs");
        let store = Store::open(&path)?;
        let after = store.cache("after");
        for i in 0..100 {
            after.set(&i.to_string(), vec![7u8; 40_000], None)?;
        }
        drop(store);
        assert_eq!(verify(&path, &[])?, before, "{mib} MiB: writing again changed the old data");
        assert_eq!(
            Store::open(&path)?.cache("after").keys("")?.len(),
            100,
            "{mib} MiB: writes after growing"
        );
    }
    eprintln!("real disk-full test: 5 file systems filled, {commits} reported commits all present, each store writable again");
    Ok(())
}
