//! The store file on disk: who owns it and its side files, whether it can be written,
//! creating it and its directories with private modes, and which file a handle opened.
//! Nothing here speaks SQL.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{hits, side_file, Engine};
use crate::error::{Error, Result};

/// Device and inode of a file: what tells "the same file" from "a file at the same path".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(crate) fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| FileId { dev: m.dev(), ino: m.ino() })
    }
}

/// Refuse a path that another user controls. A symbolic link at the database path must be
/// ours (or root's) and lead to an existing file: a link planted by someone else, or one whose
/// target does not exist yet, would make cairn create or write a file where they chose (SQLite
/// follows links to the real file). The file itself must be ours, else what we store would be
/// theirs to read; root may open other users' files (sudo, maintenance) but not through links
/// they planted. A missing path is fine: it is created below, 0600.
///
/// The same holds for the -wal, -shm and -journal files SQLite keeps beside the database (one
/// planted in a shared directory before cairn first ran would receive every commit), and for
/// the -hits file where reading processes leave their counts.
pub(crate) fn check_owner(path: &Path) -> Result<()> {
    check_owner_of(path)?;
    for suffix in ["-wal", "-shm", "-journal", hits::HITS_SUFFIX] {
        check_owner_of(&side_file(path, suffix))?;
    }
    Ok(())
}

fn check_owner_of(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let refuse = |why: String| {
        Err(Error::Io {
            action: "open",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::PermissionDenied, why),
        })
    };
    let Ok(entry) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let owner = if entry.file_type().is_symlink() {
        if entry.uid() != me && entry.uid() != 0 {
            return refuse(format!(
                "it is a symbolic link owned by uid {}, not by you (uid {me}); cairn will not follow it: \
                 remove it, or give the real path",
                entry.uid()
            ));
        }
        match std::fs::metadata(path) {
            Ok(target) => target.uid(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return refuse(
                    "it is a symbolic link to a file that does not exist; cairn will not create a file \
                     through a link: create the target first, or give the real path"
                        .into(),
                );
            }
            Err(_) => return Ok(()), // reported, with its cause, by the open that follows
        }
    } else {
        entry.uid()
    };
    if owner != me && me != 0 {
        return refuse(format!(
            "it is owned by uid {owner}, not by you (uid {me}); what you store there would be theirs \
             to read: give a path of your own"
        ));
    }
    Ok(())
}

/// Refuse what is not a regular file at `path` (a link followed), before anything opens it:
/// a device (`/dev/null` reads as empty and swallows writes, and SQLite then leaves a
/// `-journal` beside it), a named pipe (opening it waits forever for a writer), a socket, a
/// directory, or a file of the kernel's own file systems (/proc, /sys...: they say they are
/// empty, and are not). A missing path is fine: it is created later, as a regular file.
pub(crate) fn refuse_what_is_not_a_regular_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) }; // missing, or reported by the open that follows
    let kind = meta.file_type();
    let what = if kind.is_file() {
        match kernel_file_system(path) {
            Some(fs) => format!("a file of the {fs} file system"),
            None => return Ok(()),
        }
    } else if kind.is_dir() {
        "a directory".into()
    } else if kind.is_char_device() {
        "a character device".into()
    } else if kind.is_block_device() {
        "a block device".into()
    } else if kind.is_fifo() {
        "a named pipe (FIFO)".into()
    } else if kind.is_socket() {
        "a socket".into()
    } else {
        "no regular file".into()
    };
    Err(Error::Io {
        action: "open",
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file: give the path of a store's file, or of one to create"),
        ),
    })
}

/// The name of the kernel's file system `path` is on, if it is one that shows the kernel's
/// state as files rather than storing any.
fn kernel_file_system(path: &Path) -> Option<&'static str> {
    use nix::sys::statfs::{self as fs, statfs};
    let kind = statfs(path).ok()?.filesystem_type();
    [
        (fs::PROC_SUPER_MAGIC, "proc"),
        (fs::SYSFS_MAGIC, "sysfs"),
        (fs::DEBUGFS_MAGIC, "debugfs"),
        (fs::TRACEFS_MAGIC, "tracefs"),
        (fs::SECURITYFS_MAGIC, "securityfs"),
        (fs::CGROUP_SUPER_MAGIC, "cgroup"),
        (fs::CGROUP2_SUPER_MAGIC, "cgroup2"),
        (fs::BPF_FS_MAGIC, "bpf"),
        (fs::DEVPTS_SUPER_MAGIC, "devpts"),
        (fs::NSFS_MAGIC, "nsfs"),
        (fs::SELINUX_MAGIC, "selinuxfs"),
    ]
    .into_iter()
    .find(|(magic, _)| *magic == kind)
    .map(|(_, name)| name)
}

/// The files SQLite keeps beside a WAL store.
const WAL_SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Owner read and write: what a side file's owner needs for any writer to use the store.
const OWNER_RW: u32 = 0o600;

fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

/// Give `path` owner read and write, keeping its other bits; false if that failed.
fn add_owner_rw(path: &Path, mode: u32) -> bool {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | OWNER_RW)).is_ok()
}

/// The modes of the -wal and -shm beside a store (`None`: not there), taken before a
/// read-only open, so that what the open did to them can be told from what was there.
pub(crate) struct SideModes([Option<u32>; 2]);

impl SideModes {
    pub(crate) fn of(path: &Path) -> SideModes {
        SideModes(WAL_SIDE_FILES.map(|suffix| mode_of(&side_file(path, suffix))))
    }
}

/// After a read-only open has read the file. SQLite creates the -wal and -shm a WAL reader
/// needs with the database file's mode, and gives an empty one that mode again whenever it
/// opens it, so beside a write-protected store (0400) they become 0400. A reader cannot remove
/// them as it closes (that takes a checkpoint, a write), so they stay: once the file is made
/// writable again (`chmod u+w`, as cairn advises), SQLite would open the -shm read-only and
/// every write would fail. So each side file this open created, or made unwritable, gets
/// owner read and write back. One that was unwritable before is left as it was: `doctor`
/// names it, and a writable open repairs it ([`repair_side_files`]). Best effort: what cannot
/// be changed here is named when a write is attempted.
pub(crate) fn keep_side_files_writable(path: &Path, before: &SideModes) {
    for (suffix, was) in WAL_SIDE_FILES.iter().zip(before.0) {
        let side = side_file(path, suffix);
        let Some(now) = mode_of(&side) else { continue };
        let made_unwritable = was.is_none_or(|m| m & 0o200 != 0);
        if now & 0o200 == 0 && made_unwritable {
            add_owner_rw(&side, now);
        }
    }
}

/// Before a writable open, once the file itself is known writable: a -wal or -shm its owner
/// cannot write (left 0400 by a read of the store while it was write-protected, before cairn
/// kept them writable) makes SQLite open it read-only and every write fail with "attempt to
/// write a readonly database". Give each such file owner read and write; one that cannot be
/// changed is named by [`unwritable`] with the command that fixes it.
pub(crate) fn repair_side_files(path: &Path) {
    use nix::unistd::{access, AccessFlags};
    if access(path, AccessFlags::W_OK).is_err() {
        return;
    }
    for suffix in WAL_SIDE_FILES {
        let side = side_file(path, suffix);
        if let Some(mode) = mode_of(&side).filter(|m| m & 0o200 == 0) {
            add_owner_rw(&side, mode);
        }
    }
}

/// Why a store at `path` could not be written.
pub(crate) struct Unwritable {
    /// Said to the user, with what to do.
    pub reason: String,
    /// SQLite cannot create the -wal and -shm beside the file (a read-only directory or file
    /// system), so a WAL reader has no -shm either.
    pub no_side_files: bool,
}

/// Why an existing store at `path` cannot be written, if it cannot: the file is
/// write-protected, or it is on a read-only file system, or its directory does not let SQLite
/// create the -wal and -shm files it needs beside the file (unless both are there already and
/// writable). Asked before SQLite is, whose own answer ("attempt to write a readonly
/// database") does not say which.
pub(crate) fn unwritable(path: &Path) -> Option<Unwritable> {
    use nix::errno::Errno;
    use nix::unistd::{access, AccessFlags};
    let read_only_fs =
        || Some(Unwritable { reason: "it is on a read-only file system".into(), no_side_files: true });
    match access(path, AccessFlags::W_OK) {
        Err(Errno::EROFS) => return read_only_fs(),
        Err(Errno::EACCES | Errno::EPERM) => {
            return Some(Unwritable {
                no_side_files: false,
                reason: format!(
                    "the file is write-protected: make it writable (chmod u+w '{}') to change it",
                    path.display()
                ),
            })
        }
        _ => {}
    }
    for suffix in WAL_SIDE_FILES {
        let side = side_file(path, suffix);
        if let Err(Errno::EACCES | Errno::EPERM) = access(&side, AccessFlags::W_OK) {
            return Some(Unwritable {
                no_side_files: false,
                reason: format!(
                    "its {suffix} file cannot be written, so SQLite would open it read-only: make it \
                     writable (chmod u+w '{}') to change the store",
                    side.display()
                ),
            });
        }
    }
    let writable = |p: &Path| access(p, AccessFlags::W_OK).is_ok();
    if writable(&side_file(path, "-wal")) && writable(&side_file(path, "-shm")) {
        return None;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let reason = match access(dir, AccessFlags::W_OK | AccessFlags::X_OK) {
        Err(Errno::EROFS) => return read_only_fs(),
        Err(Errno::EACCES | Errno::EPERM) => format!(
            "its directory {} is not writable, and SQLite must create {name}-wal and {name}-shm \
             there: make the directory writable (chmod u+w '{}') or move the store",
            dir.display(),
            dir.display()
        ),
        _ => return None,
    };
    Some(Unwritable { reason, no_side_files: true })
}

/// Create missing parent directories (0700) and the file itself (0600), whatever the umask.
/// An existing file keeps its mode. SQLite gives the -wal and -shm files the main file's mode.
pub(crate) fn prepare_file(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    check_owner(path)?;
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(file) => {
            // The umask may have taken bits away (0o277 leaves 0o400): set exactly 0600.
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::Io {
                action: "set permissions of",
                path: path.to_path_buf(),
                source: e,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if path.is_dir() {
                return Err(Error::Io {
                    action: "open",
                    path: path.to_path_buf(),
                    source: io::Error::other("it is a directory; give the path of a file"),
                });
            }
            Ok(())
        }
        // An existing file on a read-only file system can fail with EROFS rather than
        // EEXIST; it is there, so opening it is what decides.
        Err(_) if path.is_file() => Ok(()),
        Err(e) => Err(Error::Io { action: "create", path: path.to_path_buf(), source: e }),
    }
}

fn create_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::Io { action: "set permissions of", path: dir.to_path_buf(), source: e }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::Io { action: "create directory", path: dir.to_path_buf(), source: e }),
    }
}

impl Engine {
    pub(crate) fn location(&self) -> PathBuf {
        self.path().to_path_buf()
    }

    /// Check the file at this engine's path before each write from now on: see
    /// [`Engine::ensure_same_file`].
    pub(crate) fn remember_file(&mut self, id: Option<FileId>) {
        self.file_id = id;
    }

    /// Refuse to write when the file at the store's path is no longer the one this connection
    /// opened. In WAL mode a write to a deleted or replaced database still "commits" (into a
    /// -wal that now belongs to no file, or beside someone else's file) and is gone when the
    /// connection closes: the caller would be told "saved" about data that is lost.
    pub(crate) fn ensure_same_file(&self) -> Result<()> {
        let Some(opened) = self.file_id else { return Ok(()) };
        let why = match FileId::of(self.path()) {
            Some(now) if now == opened => return Ok(()),
            Some(_) => "another file has replaced the one this store opened",
            None => "the file this store opened was deleted or moved",
        };
        Err(Error::Io {
            action: "write to",
            path: self.path().to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!("{why}; the write was refused because it would be lost: open the store again"),
            ),
        })
    }

    /// Before closing: if the file was deleted, moved or replaced while open, move this
    /// connection's frames into it. SQLite will not checkpoint a file that has moved when it
    /// closes, so the -wal stays at the old name holding this file's frames: a database later
    /// put at that path would read them as its own pages. Checkpointing through the open
    /// descriptor moves the frames into the file they belong to (wherever `mv` put it) and
    /// leaves an empty log behind.
    pub(crate) fn settle_if_moved(&self) {
        let Some(opened) = self.file_id else { return };
        if FileId::of(self.path()) != Some(opened) && !self.in_transaction() {
            self.set_busy_timeout(std::time::Duration::from_millis(200));
            let _ = self.checkpoint_truncate();
        }
    }

    /// The files on disk that make up the store: the database and the side files beside it
    /// (those that exist or may); none in memory.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        if self.path() == Path::new(":memory:") {
            return Vec::new();
        }
        ["", "-wal", "-shm", hits::HITS_SUFFIX].iter().map(|suffix| side_file(self.path(), suffix)).collect()
    }

    /// Bytes of the write-ahead log.
    pub(crate) fn log_bytes(&self) -> u64 {
        std::fs::metadata(side_file(self.path(), "-wal")).map(|m| m.len()).unwrap_or(0)
    }

    /// The version of cairn's own schema this code writes.
    pub(crate) fn schema_latest(&self) -> i64 {
        super::open::latest()
    }
}
