//! Where a store lives when no path is given: `$CAIRN_DB`, else the XDG state directory, with
//! the checks that keep another user from choosing the file for you.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The default database path: `$CAIRN_DB` if set, else `$XDG_STATE_HOME/cairn/state.db`
/// (when that is an absolute path, as the XDG spec requires), else
/// `~/.local/state/cairn/state.db`.
///
/// A path from `$XDG_STATE_HOME` or `$HOME` is refused when a directory above it belongs to
/// another user, or is writable by everyone without the sticky bit (which `/tmp` has): there,
/// someone else could replace the store. `$CAIRN_DB` is your explicit choice and is taken as
/// given (the file itself is still checked at open), but for a leading `~` or `~user`, which is
/// expanded as a shell would (cron and systemd pass it on unexpanded).
pub fn default_path() -> Result<PathBuf> {
    let path = resolve_default_path(|name| std::env::var_os(name))?;
    if std::env::var_os("CAIRN_DB").is_none_or(|v| v.is_empty()) {
        check_default_dirs(&path)?;
        return Ok(path);
    }
    crate::storage::expand_home(&path)
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
