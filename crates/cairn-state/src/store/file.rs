//! The store file on disk: who owns it and its side files, whether it can be written,
//! creating it and its directories with private modes, which file a handle opened, and the
//! default path. Nothing here speaks SQL.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::sqlite;

/// Device and inode of a file: what tells "the same file" from "a file at the same path".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(super) fn of(path: &Path) -> Option<FileId> {
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
    for suffix in ["-wal", "-shm", "-journal", sqlite::hits::HITS_SUFFIX] {
        check_owner_of(&sqlite::side_file(path, suffix))?;
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
    let writable = |p: &Path| access(p, AccessFlags::W_OK).is_ok();
    if writable(&sqlite::side_file(path, "-wal")) && writable(&sqlite::side_file(path, "-shm")) {
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

/// The default database path: `$CAIRN_DB` if set, else `$XDG_STATE_HOME/cairn/state.db`
/// (when that is an absolute path, as the XDG spec requires), else
/// `~/.local/state/cairn/state.db`.
///
/// A path from `$XDG_STATE_HOME` or `$HOME` is refused when a directory above it belongs to
/// another user, or is writable by everyone without the sticky bit (which `/tmp` has): there,
/// someone else could replace the store. `$CAIRN_DB` is your explicit choice and is taken as
/// given (the file itself is still checked at open).
pub fn default_path() -> Result<PathBuf> {
    let path = resolve_default_path(|name| std::env::var_os(name))?;
    if std::env::var_os("CAIRN_DB").is_none_or(|v| v.is_empty()) {
        check_default_dirs(&path)?;
    }
    Ok(path)
}

/// Every existing directory above the default path is ours or root's, and none is writable
/// by others unless sticky. Directories that do not exist yet will be created 0700 by us.
fn check_default_dirs(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    for dir in path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
        let Ok(m) = std::fs::metadata(dir) else { continue };
        let why = if m.uid() != me && m.uid() != 0 {
            format!("{} belongs to uid {}", dir.display(), m.uid())
        } else if m.mode() & 0o002 != 0 && m.mode() & 0o1000 == 0 {
            format!(
                "{} is writable by every user (mode {:o}) and not sticky",
                dir.display(),
                m.mode() & 0o7777
            )
        } else {
            continue;
        };
        return Err(Error::Io {
            action: "use the default path",
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{why}, so another user could replace your store there: set CAIRN_DB (or --db) \
                     to a path of your own, or fix that directory"
                ),
            ),
        });
    }
    Ok(())
}

fn resolve_default_path(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf> {
    let var = |name| env(name).filter(|v| !v.is_empty());
    if let Some(p) = var("CAIRN_DB") {
        return Ok(PathBuf::from(p));
    }
    if let Some(state) = var("XDG_STATE_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(state.join("cairn").join("state.db"));
    }
    match var("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/cairn/state.db")),
        None => Err(Error::invalid("neither CAIRN_DB, XDG_STATE_HOME nor HOME is set: give a database path")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_follows_cairn_db_then_absolute_xdg_state_home_then_home() {
        fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
            move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into())
        }
        let all = [("CAIRN_DB", "/x/explicit.db"), ("XDG_STATE_HOME", "/xdg"), ("HOME", "/home/u")];
        assert_eq!(resolve_default_path(env(&all)).ok(), Some("/x/explicit.db".into()));
        let xdg = [("CAIRN_DB", ""), ("XDG_STATE_HOME", "/xdg"), ("HOME", "/home/u")];
        assert_eq!(resolve_default_path(env(&xdg)).ok(), Some("/xdg/cairn/state.db".into()));
        let relative = [("XDG_STATE_HOME", "relative/ignored"), ("HOME", "/home/u")];
        assert_eq!(
            resolve_default_path(env(&relative)).ok(),
            Some("/home/u/.local/state/cairn/state.db".into())
        );
        let err = resolve_default_path(env(&[])).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_default_path_under_a_directory_others_can_write_is_refused_but_sticky_tmp_is_fine() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let path = shared.join("cairn").join("state.db");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_default_dirs(&path).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Io, "{err}");
        assert!(err.to_string().contains("writable by every user (mode 777)"), "{err}");
        assert!(err.to_string().contains("CAIRN_DB"), "{err}");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_default_dirs(&path).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_default_dirs(&path).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&shared, Some(4242), Some(4242)).unwrap();
            let err = check_default_dirs(&path).unwrap_err();
            assert!(err.to_string().contains("belongs to uid 4242"), "{err}");
        } else if std::env::var_os("CAIRN_NO_SKIP").is_some_and(|v| !v.is_empty() && v != "0") {
            panic!("the other-owner half needs root to give a directory to another user, and CAIRN_NO_SKIP forbids skipping");
        } else {
            // As the integration tests' skip_unless_ci does: say so, and list it in $CAIRN_SKIP_LOG.
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let line = format!("{test}: needs root for its other-owner half");
            eprintln!("skipped: {line}");
            if let Some(log) = std::env::var_os("CAIRN_SKIP_LOG").filter(|l| !l.is_empty()) {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
                f.write_all(format!("{line}\n").as_bytes()).unwrap();
            }
        }
    }
}
