//! Opening a store and transactions. What holds on both engines is a `contract!` test at the end
//! (transactions, read-only opens, refusals of stores that are not ours or not as cairn left
//! them); the tests before it are about a SQLite file (modes, WAL, headers, symlinks, a file
//! moved or deleted under a running process, read-only file systems) and run on SQLite only.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use cairn::{Durability, Error, ErrorKind, Options, RollbackJournal, Store};

use crate::contract;
use crate::engines::Engine;
use crate::temp_store;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn open_sets_wal_and_creates_owner_only_files_and_directories() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a/b/state.db");
    let store = Store::open(&path)?;
    store.cache("n").set("k", "v", None)?;
    assert_eq!(store.journal_mode(), "wal");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
    for side in ["state.db-wal", "state.db-shm"] {
        assert_eq!(mode(&dir.path().join("a/b").join(side)), 0o600, "{side}");
    }
    Ok(())
}

#[test]
fn random_bytes_are_refused_as_not_a_database_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("junk.db");
    let junk: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, &junk).expect("write");
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADatabase, "{err}");
    assert!(err.to_string().contains("junk.db"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), junk, "the file was modified");
    assert!(!dir.path().join("junk.db-wal").exists());
}

#[test]
fn a_tiny_non_sqlite_file_is_not_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny");
    std::fs::write(&path, b"{\"done\": [1, 2]}").expect("write");
    assert_eq!(Store::open(&path).unwrap_err().kind(), ErrorKind::NotADatabase);
}

#[test]
fn a_truncated_database_is_reported_corrupt_at_open_and_left_untouched() -> Result<(), Error> {
    let (_dir, path, store, _clock) = temp_store();
    for i in 0..2000 {
        store.cache("n").set(&format!("key-{i}"), vec![7u8; 200], None)?;
    }
    drop(store); // checkpoints the WAL into the file and removes it
    let full = std::fs::read(&path).expect("read");
    assert!(full.len() > 100_000);
    let cut = &full[..full.len() / 2];
    std::fs::write(&path, cut).expect("truncate");
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), cut);
    Ok(())
}

#[test]
fn an_unwritable_directory_gives_a_typed_io_error_naming_it() {
    if running_as_root() {
        // Root ignores permission bits; sysfs refuses new entries even to root.
        if std::path::Path::new("/sys/kernel").is_dir() {
            let err = Store::open("/sys/cairn-test/state.db").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io, "{err}");
            assert!(err.to_string().contains("/sys/cairn-test"), "{err}");
        } else {
            eprintln!("SKIP an_unwritable_directory_gives_a_typed_io_error_naming_it: root, and no /sys");
        }
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    let err = Store::open(locked.join("state.db")).unwrap_err();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("locked"), "{err}");
}

#[test]
fn a_path_under_a_regular_file_gives_a_typed_io_error() {
    // Unlike a chmod'ed directory this fails for root too: no directory can be made there.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").expect("write");
    let err = Store::open(file.join("state.db")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("plain"), "{err}");
}

#[test]
fn a_directory_as_database_path_is_a_clear_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Store::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("is a directory"), "{err}");
}

/// What is not a regular file is refused by name before anything opens it, read-write and
/// read-only alike: `/dev/null`, `/dev/zero` and `/dev/full` gave a disk I/O error and left
/// a `/dev/null-journal` of mode 0666 behind, a FIFO made the open wait forever for a writer,
/// and a file of /proc (which says it is empty) was read as a store that needs migrating.
#[test]
fn a_device_a_fifo_or_a_proc_file_is_refused_by_name_and_nothing_is_created_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo");
    let paths: Vec<(std::path::PathBuf, &str)> = vec![
        ("/dev/null".into(), "a character device"),
        ("/dev/zero".into(), "a character device"),
        ("/dev/full".into(), "a character device"),
        (fifo.clone(), "a named pipe"),
        ("/proc/self/status".into(), "a file of the proc file system"),
        ("/proc/version".into(), "a file of the proc file system"),
    ];
    let side_files = |p: &std::path::Path| {
        ["-journal", "-wal", "-shm"]
            .iter()
            .map(|s| std::path::PathBuf::from(format!("{}{s}", p.display())))
            .filter(|f| f.exists())
            .collect::<Vec<_>>()
    };
    for (path, what) in paths {
        if !path.exists() {
            continue;
        }
        let before = side_files(&path);
        for options in
            [Options::new(), Options::new().read_only(true), Options::new().read_only_if_unwritable(true)]
        {
            // A FIFO blocks the thread that opens it: wait for the answer, not forever.
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(options.open(&p).map(|_| ()));
            });
            let result = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{}: the open still waits after 10 s", path.display()));
            let err = result.expect_err("not a regular file");
            assert_eq!(err.kind(), ErrorKind::Io, "{}: {err}", path.display());
            assert!(err.to_string().contains(what), "{}: {err}", path.display());
            assert!(err.to_string().contains(&path.display().to_string()), "names the path: {err}");
        }
        assert_eq!(side_files(&path), before, "{}: files were created beside it", path.display());
    }
}

#[test]
fn a_write_protected_file_opened_read_write_says_so() -> Result<(), Error> {
    if running_as_root() {
        eprintln!("SKIP a_write_protected_file_opened_read_write_says_so: root ignores file permissions");
        return Ok(());
    }
    let (_dir, path, store, _clock) = temp_store();
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    Ok(())
}

#[test]
fn without_shared_memory_wal_is_refused_unless_a_fallback_is_allowed() -> Result<(), Error> {
    // The unix-none VFS has no shared-memory support, like some network filesystems.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nfs.db");
    let err = Options::new().vfs("unix-none").open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WalUnavailable, "{err}");
    let store = Options::new().vfs("unix-none").fallback_journal(RollbackJournal::Truncate).open(&path)?;
    assert_eq!(store.journal_mode(), "truncate");
    store.cache("n").set("k", "v", None)?;
    assert_eq!(store.cache("n").get::<String>("k")?.as_deref(), Some("v"));
    Ok(())
}

/// `read_missing_as_empty`: a path where no store exists reads as an empty store, creates
/// nothing (file or directory), and refuses writes saying how to create it; an existing store
/// opens as without the option, writable.
#[test]
fn a_missing_store_read_as_empty_creates_nothing_and_refuses_writes_saying_how() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("typo/state.db");
    for options in
        [Options::new(), Options::new().read_only(true), Options::new().read_only_if_unwritable(true)]
    {
        let store = options.read_missing_as_empty(true).open(&path)?;
        assert!(store.is_missing() && store.is_read_only());
        assert_eq!(store.path(), path);
        assert_eq!(store.ledger("jobs").filter_new(["a", "b"])?, ["a", "b"]);
        assert!(!store.ledger("jobs").is_done("a")?);
        assert_eq!(store.cache("c").get::<String>("k")?, None);
        assert_eq!(store.checkpoint("job").get::<String>()?, None);
        assert!(store.stats()?.is_empty());
        let err = store.ledger("jobs").mark_done("a").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
        assert!(err.to_string().contains("no store exists there yet"), "{err}");
        drop(store);
        assert!(!dir.path().join("typo").exists(), "something was created");
    }
    Store::open(&path)?.ledger("jobs").mark_done("a")?;
    let store = Options::new().read_missing_as_empty(true).open(&path)?;
    assert!(!store.is_missing() && !store.is_read_only());
    assert_eq!(store.ledger("jobs").filter_new(["a", "b"])?, ["b"]);
    Ok(())
}

/// Reading a write-protected store (0400) creates the -wal and -shm a WAL reader needs, with
/// the file's mode, and a reader cannot remove them: left 0400, they made every write fail
/// once the file was writable again (SQLite opened the -shm read-only). A read-only open gives
/// what it made back to its owner, the second read as well (SQLite re-sets an empty -wal to the
/// file's mode). Modes are checked, so this holds for root too, whom the bits do not stop.
#[test]
fn reading_a_write_protected_store_leaves_side_files_its_owner_can_write() -> Result<(), Error> {
    let (dir, path, store, _clock) = temp_store();
    store.cache("n").set("k", "v", None)?;
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    for _ in 0..2 {
        let ro = Options::new().read_only(true).open(&path)?;
        assert_eq!(ro.cache("n").get::<String>("k")?.as_deref(), Some("v"));
        drop(ro);
        for side in ["state.db-wal", "state.db-shm"] {
            assert_eq!(mode(&dir.path().join(side)), 0o600, "{side}");
        }
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Store::open(&path)?.cache("n").set("k", "w", None)?;
    Ok(())
}

/// Side files left unwritable (by an earlier cairn's read of a write-protected store, or by
/// hand) are given back to their owner by a writable open, which otherwise would fail at every
/// write; `doctor` names each with the exact command, and a read-only open (doctor's) leaves
/// them as they are.
#[test]
fn unwritable_side_files_are_named_by_doctor_and_repaired_by_a_writable_open() -> Result<(), Error> {
    let (dir, path, store, _clock) = temp_store();
    store.cache("n").set("k", "v", None)?;
    let shm = dir.path().join("state.db-shm");
    let wal = dir.path().join("state.db-wal");
    let reader = Options::new().read_only(true).open(&path)?; // keeps them there when `store` closes
    drop(store);
    std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o440)).expect("chmod");
    drop(reader);

    let ro = Options::new().read_only(true).open(&path)?;
    let findings = ro.doctor()?;
    drop(ro);
    let about = |p: &std::path::Path| {
        findings
            .iter()
            .find(|x| x.check == "permissions" && x.detail.starts_with(&*p.to_string_lossy()))
            .cloned()
    };
    let shm_finding = about(&shm).expect("a finding for the -shm");
    assert!(!shm_finding.ok && shm_finding.detail.contains("is 0400"), "{shm_finding:?}");
    assert_eq!(shm_finding.fix, Some(format!("chmod u+w '{}'", shm.display())));
    let wal_finding = about(&wal).expect("a finding for the -wal");
    assert_eq!(wal_finding.fix, Some(format!("chmod 600 '{}'", wal.display())), "{wal_finding:?}");
    let db_finding = about(&path).expect("a finding for the file");
    assert!(db_finding.ok, "{db_finding:?}");
    assert_eq!((mode(&shm), mode(&wal)), (0o400, 0o440), "doctor's open changed them");

    let store = Store::open(&path)?;
    assert_eq!((mode(&shm), mode(&wal)), (0o600, 0o640));
    store.cache("n").set("k", "w", None)?;
    Ok(())
}

/// A side file the open cannot give back to its owner (here immutable, `chattr +i`, which
/// even root cannot chmod) is named in the refusal with the command to run, rather than left
/// to SQLite's "attempt to write a readonly database" at the first write.
#[test]
fn a_side_file_that_cannot_be_repaired_is_named_with_the_command() -> Result<(), Error> {
    struct Mutable(std::path::PathBuf);
    impl Drop for Mutable {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }
    let (dir, path, store, _clock) = temp_store();
    store.cache("n").set("k", "v", None)?;
    let shm = dir.path().join("state.db-shm");
    let reader = Options::new().read_only(true).open(&path)?; // keeps the -shm when `store` closes
    drop(store);
    std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let immutable =
        std::process::Command::new("chattr").arg("+i").arg(&shm).status().is_ok_and(|s| s.success());
    let _guard = Mutable(shm.clone());
    if !is_root() || !immutable {
        cairn_testkit::skip_unless_ci("root and chattr(1) on a file system with the immutable attribute");
        return Ok(());
    }
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    assert!(err.to_string().contains(&format!("chmod u+w '{}'", shm.display())), "{err}");
    let ro = Options::new().read_only_if_unwritable(true).open(&path)?;
    assert!(ro.is_read_only());
    assert_eq!(ro.cache("n").get::<String>("k")?.as_deref(), Some("v"));
    drop(reader);
    Ok(())
}

#[test]
fn an_empty_path_is_invalid_input() {
    assert_eq!(Store::open("").unwrap_err().kind(), ErrorKind::InvalidInput);
}

fn running_as_root() -> bool {
    // Without libc: a directory we cannot write to is writable anyway only for root.
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = dir.path().join("probe");
    std::fs::create_dir(&probe).expect("mkdir");
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    let writable = std::fs::write(probe.join("f"), b"x").is_ok();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    writable
}

#[test]
fn a_store_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
    assert_send::<Options>();
}

/// The effective user is root: /proc/self belongs to the process's effective uid.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

#[test]
fn a_dangling_symlink_at_the_path_is_refused_and_nothing_is_created_through_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("where-they-chose");
    let link = dir.path().join("state.db");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let err = Store::open(&link).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!target.exists(), "a file was created through the link");
}

#[test]
fn a_symlink_of_our_own_to_our_own_store_is_followed() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real.db");
    Store::open(&real)?.cache("c").set("k", "v", None)?;
    let link = dir.path().join("state.db");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    assert_eq!(Store::open(&link)?.cache("c").get::<String>("k")?.as_deref(), Some("v"));
    Ok(())
}

#[test]
fn a_symlink_planted_by_another_user_is_not_followed() -> Result<(), Error> {
    if !is_root() {
        cairn_testkit::skip_unless_ci("root, to give a symlink to another user");
        return Ok(());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let theirs = dir.path().join("theirs.db");
    Store::open(&theirs)?; // even a valid store: it is theirs
    let link = dir.path().join("state.db");
    std::os::unix::fs::symlink(&theirs, &link).expect("symlink");
    std::os::unix::fs::lchown(&link, Some(4242), Some(4242)).expect("lchown");
    let before = std::fs::read(&theirs).expect("read");
    let err = Store::open(&link).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("owned by uid 4242"), "{err}");
    assert_eq!(std::fs::read(&theirs).expect("read"), before);
    Ok(())
}

#[test]
fn a_file_owned_by_another_user_is_refused() {
    if is_root() {
        eprintln!("skipped: root may open other users' files by design; run as a user to check this");
        return;
    }
    // /etc/hostname belongs to root on any Linux system; a user must not store data in it.
    let err = Store::open("/etc/hostname").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("owned by uid 0"), "{err}");
}

#[test]
fn migrate_vacuum_and_backup_inside_an_open_transaction_say_so() -> Result<(), Error> {
    let (dir, _path, store, _clock) = temp_store();
    store.begin_transaction()?;
    let m = cairn::Migrations::new(vec![cairn::M::up("CREATE TABLE t (x)")]);
    for err in [
        store.migrate("app", &m).map(drop).unwrap_err(),
        store.vacuum().unwrap_err(),
        store.backup(dir.path().join("b.db")).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("a transaction is already open"), "{err}");
    }
    store.rollback_transaction();
    store.migrate("app", &m)?;
    Ok(())
}

/// In WAL mode SQLite lets a handle keep "committing" after its file is deleted or replaced:
/// the pages go to a -wal that belongs to no file (or beside another file) and vanish when the
/// handle closes. cairn checks the file under the write lock and refuses instead.
#[test]
fn a_store_file_deleted_or_replaced_while_open_refuses_writes_instead_of_losing_them() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = Store::open(&path)?;
    store.cache("c").set("before", "1", None)?;
    std::fs::remove_file(&path).expect("delete");
    let err = store.cache("c").set("after", "2", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("deleted or moved"), "{err}");
    assert!(err.to_string().contains("open the store again"), "{err}");
    let err = store.transaction(|tx| tx.ledger("l").mark_done("x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    drop(store);

    let store = Store::open(&path)?; // a new, empty store where the old one was
    assert_eq!(store.cache("c").get::<String>("before")?, None);
    store.cache("c").set("x", "1", None)?;
    let other = dir.path().join("other.db");
    Store::open(&other)?.cache("c").set("y", "1", None)?;
    std::fs::rename(&other, &path).expect("replace");
    let err = store.cache("c").set("after", "2", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("replaced"), "{err}");
    drop(store);

    // The old handle's log did not leak into the replacement, which a fresh handle reads and
    // writes normally.
    let store = Store::open(&path)?;
    assert_eq!(store.cache("c").get::<String>("y")?.as_deref(), Some("1"));
    assert_eq!(store.cache("c").get::<String>("after")?, None);
    store.cache("c").set("after", "3", None)?;
    assert_eq!(store.cache("c").get::<String>("after")?.as_deref(), Some("3"));
    Ok(())
}

/// `mv state.db archive.db` under a running job: the commits made before the move live in the
/// old -wal, which SQLite leaves behind at the old name. Closing the handle must put them into
/// the moved file, or archive.db alone would be missing them.
#[test]
fn a_store_file_moved_while_open_keeps_the_commits_made_before_the_move() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let archive = dir.path().join("archive.db");
    let store = Store::open(&path)?;
    for i in 0..50 {
        store.ledger("l").mark_done(&format!("item-{i}"))?;
    }
    std::fs::rename(&path, &archive).expect("move");
    let err = store.ledger("l").mark_done("late").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    drop(store);

    let moved = Store::open(&archive)?;
    assert_eq!(moved.ledger("l").counts()?.done, 50);
    assert!(!moved.ledger("l").is_done("late")?);
    assert_eq!(moved.integrity_check()?, ["ok"]);
    Ok(())
}

/// Found by the store_file fuzz target: a header claiming a schema format SQLite does not know
/// was an internal error (exit 8) instead of a damaged file.
#[test]
fn a_header_with_an_unknown_schema_format_is_corrupt_and_left_untouched() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    Store::open(&path)?.cache("c").set("k", "v", None)?;
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[44..48].copy_from_slice(&99u32.to_be_bytes()); // the schema format number (1 to 4)
    std::fs::write(&path, &bytes).expect("write");
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("unsupported file format"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes);
    Ok(())
}

/// A -wal planted beside the database path in a shared directory before cairn first runs
/// would receive every commit; a dangling link there would make SQLite create it where the
/// link points. Both are refused like the same thing at the database path.
#[test]
fn a_planted_or_dangling_wal_link_beside_the_store_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let target = dir.path().join("where-they-chose");
    std::os::unix::fs::symlink(&target, dir.path().join("state.db-wal")).expect("symlink");
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("state.db-wal"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!target.exists(), "a file was created through the link");

    if !is_root() {
        cairn_testkit::skip_unless_ci("root, to give a symlink to another user (for its planted half)");
        return;
    }
    std::fs::write(&target, b"").expect("create the target");
    std::os::unix::fs::lchown(dir.path().join("state.db-wal"), Some(4242), Some(4242)).expect("lchown");
    let err = Store::open(&path).unwrap_err();
    assert!(
        err.to_string().contains("state.db-wal") && err.to_string().contains("owned by uid 4242"),
        "{err}"
    );
    assert_eq!(std::fs::read(&target).expect("read"), b"");
}

/// A store on a read-only file system (a read-only bind mount here, as in a container with a
/// read-only root): writes are refused saying so, and a read-only open still reads it.
#[test]
fn a_store_on_a_read_only_file_system_says_so_and_can_still_be_read() -> Result<(), Error> {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    Store::open(&path)?.cache("c").set("k", "v", None)?;
    let mount = |args: &[&str]| {
        std::process::Command::new("mount")
            .args(args)
            .arg(dir.path())
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !is_root() || !mount(&["--bind"]) {
        cairn_testkit::skip_unless_ci("root and mount(8) permission, for a read-only bind mount");
        return Ok(());
    }
    let _guard = Unmount(dir.path().to_path_buf());
    let remounted = std::process::Command::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !remounted {
        cairn_testkit::skip_unless_ci("a bind mount that can be remounted read-only");
        return Ok(());
    }
    let err = Store::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    assert!(err.to_string().contains("read-only file system"), "{err}");
    let ro = Options::new().read_only_if_unwritable(true).open(&path)?;
    assert!(ro.is_read_only());
    assert_eq!(ro.cache("c").get::<String>("k")?.as_deref(), Some("v"));
    assert_eq!(ro.journal_mode(), "wal");
    Ok(())
}

contract! {
    fn data_survives_close_and_reopen(f) {
        let store = f.reopen();
        store.cache("n").set("k", "kept", None)?;
        drop(store);
        let store = f.reopen();
        assert_eq!(store.cache("n").get::<String>("k")?.as_deref(), Some("kept"));
        assert_eq!(store.integrity_check()?, vec!["ok".to_string()]);
        Ok(())
    }

    fn full_durability_opens_and_commits(f) {
        let store = f.options().durability(Durability::Full).open(&f.location)?;
        assert_eq!(store.durability(), Durability::Full);
        store.cache("n").set("k", 1i64, None)?;
        assert_eq!(store.cache("n").get::<i64>("k")?, Some(1));
        Ok(())
    }

    /// Another application's data where a store should be (a SQLite file; a schema with
    /// tables and no `cairn_meta`) is refused, read-write and read-only, and left as it was.
    fn a_database_of_another_application_is_refused_without_any_write(f) {
        let (options, location) = f.sibling("foreign");
        let foreign = f.schema().map(|s| format!("\"{s}_foreign\"")).unwrap_or_default();
        match f.engine {
            Engine::Sqlite => {
                let conn = rusqlite::Connection::open(&location).expect("open");
                conn.execute_batch(
                    "CREATE TABLE users (id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1);",
                )
                .expect("create");
            }
            Engine::Postgres => f.raw_execute(&format!(
                "CREATE SCHEMA {foreign}; CREATE TABLE {foreign}.users (id integer PRIMARY KEY); \
                 INSERT INTO {foreign}.users VALUES (1);"
            )),
        }
        let snapshot = || match f.engine {
            Engine::Sqlite => std::fs::read(&location).expect("read"),
            Engine::Postgres => {
                let relations = f.raw_i64(&format!(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = '{}'",
                    foreign.trim_matches('"')
                ));
                let rows = f.raw_i64(&format!("SELECT count(*) FROM {foreign}.users"));
                format!("{relations} relations, {rows} rows").into_bytes()
            }
        };
        let before = snapshot();
        let err = options.clone().open(&location).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ForeignDatabase, "{err}");
        assert!(err.to_string().contains("another application"), "{err}");
        assert_eq!(snapshot(), before, "the foreign data was modified");
        if f.engine == Engine::Sqlite {
            assert!(
                !std::path::Path::new(&format!("{location}-wal")).exists(),
                "the foreign file was switched to WAL"
            );
        }
        assert_eq!(options.read_only(true).open(&location).unwrap_err().kind(), ErrorKind::ForeignDatabase);
        Ok(())
    }

    fn a_schema_newer_than_the_code_is_refused_without_downgrade(f) {
        f.set_cairn_version(99);
        let err = f.options().open(&f.location).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SchemaTooNew, "{err}");
        let supported = f.engine.cairn_schema_version();
        assert!(
            matches!(err, Error::SchemaTooNew { found: 99, supported: s, ref scope, .. }
                if scope == "cairn" && s == supported),
            "{err}"
        );
        assert_eq!(f.cairn_version(), 99, "the version was rewritten");
        assert_eq!(
            f.options().read_only(true).open(&f.location).unwrap_err().kind(),
            ErrorKind::SchemaTooNew
        );
        Ok(())
    }

    /// Found by the store_file fuzz target: a store that says it is a current cairn store but
    /// whose tables were changed failed later, on the first statement, as an internal "no such
    /// column". Tables of the user's own in the same file (or schema) are not cairn's business.
    fn a_store_whose_tables_were_changed_is_corrupt_at_open_but_user_tables_are_fine(f) {
        f.store.checkpoint("job").set("p1")?;
        f.raw_execute(match f.engine {
            Engine::Sqlite => "CREATE TABLE mine (x); CREATE INDEX mine_x ON mine (x);",
            Engine::Postgres => "CREATE TABLE mine (x integer); CREATE INDEX mine_x ON mine (x);",
        });
        let store = f.reopen();
        assert_eq!(store.checkpoint("job").get::<String>()?.as_deref(), Some("p1"));
        drop(store);

        f.raw_execute("ALTER TABLE cairn_checkpoint RENAME COLUMN value TO payload");
        let says = match f.engine {
            Engine::Sqlite => "tables in it are not as cairn made them",
            Engine::Postgres => "its tables are not as cairn made them",
        };
        for err in [
            f.options().open(&f.location).unwrap_err(),
            f.options().read_only(true).open(&f.location).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
        Ok(())
    }

    /// Found by the store_file fuzz target: with a negative version no migration step matched, so
    /// the file passed as up to date.
    fn a_negative_schema_version_is_corrupt(f) {
        f.set_cairn_version(-16_777_217);
        for err in [
            f.options().open(&f.location).unwrap_err(),
            f.options().read_only(true).open(&f.location).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
            assert!(err.to_string().contains("schema version is -16777217"), "{err}");
        }
        Ok(())
    }

    fn read_only_open_reads_refuses_writes_and_never_creates(f) {
        f.store.cache("n").set("k", "v", None)?;
        let ro = f.options().read_only(true).open(&f.location)?;
        assert!(ro.is_read_only());
        assert_eq!(ro.cache("n").get::<String>("k")?.as_deref(), Some("v"));
        let err = ro.cache("n").set("k", "w", None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
        let (options, missing) = f.sibling("missing");
        assert_eq!(options.read_only(true).open(&missing).unwrap_err().kind(), ErrorKind::Io);
        assert!(!f.sibling_exists("missing"));
        Ok(())
    }

    fn transaction_commits_on_ok_and_rolls_back_on_err(f) {
        let store = &f.store;
        store.transaction(|tx| {
            tx.cache("a").set("k", "1", None)?;
            tx.cache("b").incr("n", 5, None)?;
            Ok::<_, Error>(())
        })?;
        let failed: Result<(), Error> = store.transaction(|tx| {
            tx.cache("a").set("k", "2", None)?;
            tx.cache("b").incr("n", 5, None)?;
            Err(Error::InvalidInput("abort".into()))
        });
        assert!(failed.is_err());
        assert_eq!(store.cache("a").get::<String>("k")?.as_deref(), Some("1"));
        assert_eq!(store.cache("b").get::<i64>("n")?, Some(5));
        Ok(())
    }

    fn transaction_rolls_back_when_the_closure_panics_and_the_store_stays_usable(f) {
        let store = &f.store;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = store.transaction(|tx| {
                tx.cache("a").set("k", "half-written", None)?;
                panic!("boom");
                #[allow(unreachable_code)]
                Ok::<_, Error>(())
            });
        }));
        assert!(outcome.is_err());
        assert_eq!(store.cache("a").get::<String>("k")?, None);
        store.cache("a").set("k", "after", None)?;
        assert_eq!(store.cache("a").get::<String>("k")?.as_deref(), Some("after"));
        Ok(())
    }

    fn a_writer_blocked_past_the_busy_timeout_gets_a_typed_busy_error(f) {
        let store = &f.store;
        let impatient = f.options().busy_timeout(Duration::from_millis(100)).open(&f.location)?;
        let shown = store.path().display().to_string();
        let (result, waited) = store.transaction(|tx| {
            tx.cache("n").set("k", "held", None)?;
            let started = std::time::Instant::now();
            let r = impatient.cache("n").set("k", "blocked", None);
            Ok::<_, Error>((r, started.elapsed()))
        })?;
        // A lower bound, not a timing: failing sooner would break the busy-timeout promise.
        assert!(waited >= Duration::from_millis(100), "gave up after {waited:?}, before its timeout");
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
        assert!(err.to_string().contains(&shown), "{err}");
        Ok(())
    }

    fn an_explicit_transaction_commits_everything_together_or_rolls_it_all_back(f) {
        let store = &f.store;
        let other = f.reopen();
        store.begin_transaction()?;
        let tx = store.current_transaction().expect("open");
        tx.cache("c").set("k", "v", None)?;
        tx.ledger("l").mark_done("1")?;
        tx.checkpoint("j").set("p1")?;
        assert!(other.cache("c").get::<String>("k")?.is_none(), "nothing is seen before the commit");
        store.commit_transaction()?;
        assert!(store.current_transaction().is_none());
        assert_eq!(other.cache("c").get::<String>("k")?.as_deref(), Some("v"));
        assert!(other.ledger("l").is_done("1")?);

        store.begin_transaction()?;
        let tx = store.current_transaction().expect("open");
        tx.cache("c").set("k", "changed", None)?;
        tx.ledger("l").mark_done("2")?;
        store.rollback_transaction();
        assert_eq!(store.cache("c").get::<String>("k")?.as_deref(), Some("v"));
        assert!(!store.ledger("l").is_done("2")?);
        Ok(())
    }

    fn an_explicit_transaction_refuses_nesting_and_shortcuts_and_a_stray_commit(f) {
        let store = &f.store;
        let err = store.commit_transaction().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no transaction is open"), "{err}");
        store.rollback_transaction(); // none open: nothing happens
        store.begin_transaction()?;
        assert!(store.in_transaction());
        assert_eq!(store.begin_transaction().unwrap_err().kind(), ErrorKind::InvalidInput);
        let err = store.cache("c").set("k", "v", None).unwrap_err();
        assert!(err.to_string().contains("use the Tx handle"), "{err}");
        assert_eq!(store.transaction(|_| Ok::<_, Error>(())).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(store.current_transaction().is_some(), "still open after the refusals");
        store.commit_transaction()?;
        assert!(!store.in_transaction());
        Ok(())
    }

    fn dropping_a_store_with_an_explicit_transaction_open_rolls_it_back(f) {
        let store = f.reopen();
        store.begin_transaction()?;
        store.current_transaction().expect("open").cache("c").set("k", "half", None)?;
        drop(store);
        let again = f.reopen();
        assert!(again.cache("c").get::<String>("k")?.is_none());
        again.cache("c").set("k", "after", None)?; // and the write lock was let go
        Ok(())
    }
}

/// A read-only store's other handle is read-only too; an in-memory store has none.
#[test]
fn open_again_keeps_the_options_and_refuses_an_in_memory_store() -> Result<(), Error> {
    let (_dir, path, store, _clock) = temp_store();
    store.ledger("q").mark_done("a")?;
    let reader = Store::open_read_only(&path)?;
    let other = reader.open_again()?;
    assert!(other.ledger("q").is_done("a")?);
    let err = other.ledger("q").mark_done("b").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    let err = Store::open_in_memory()?.open_again().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    Ok(())
}
