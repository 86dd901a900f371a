//! Where a store lives, as the caller wrote it: a server's URL, or a file's path whose leading
//! `~` or `~user` is expanded here (cron, systemd units and quoted shell words pass it through
//! unexpanded). A name that looks like any other URL (`sqlite:///x.db`, `file:x.db`) is refused
//! before anything is created: taken as a path, it would make directories named `sqlite:` or a
//! file named `file:x.db` where the caller meant another file.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::is_server_url;
use crate::error::{Error, Result};

/// The location to open: a server's URL as given, or the path with its `~` expanded. Any other
/// `scheme:` name is refused, naming the path to give instead.
pub(crate) fn resolve(location: &Path) -> Result<PathBuf> {
    if location.to_str().is_some_and(is_server_url) {
        return Ok(location.to_path_buf());
    }
    refuse_url(location)?;
    expand_home(location)
}

/// A file's path (a user's own database, for its migrations): as [`resolve`], and a server's
/// URL is refused too.
pub(crate) fn resolve_file(path: &Path) -> Result<PathBuf> {
    if path.to_str().is_some_and(is_server_url) {
        return Err(Error::invalid(format!(
            "{}: migrations of a database of your own run on a SQLite file; for a store on PostgreSQL, migrate \
             your tables inside it under a scope name (Store::migrate, or `cairn migrate --scope NAME`)",
            super::redact_url(&path.to_string_lossy())
        )));
    }
    resolve(path)
}

/// `path` with a leading `~` (`~/x.db`: your home, `$HOME` or else the password database's) or
/// `~user` (`~backup/x.db`: that user's home) expanded; any other path as it is. A `~` that
/// cannot be expanded is refused rather than taken as a directory named `~`.
pub(crate) fn expand_home(path: &Path) -> Result<PathBuf> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.first() != Some(&b'~') {
        return Ok(path.to_path_buf());
    }
    let end = bytes.iter().position(|&b| b == b'/').unwrap_or(bytes.len());
    let user = &bytes[1..end];
    let home = if user.is_empty() { own_home(path)? } else { home_of(user, path)? };
    // What follows the `~` part, without its leading slashes: `join` would take an absolute
    // rest for the whole path.
    let rest: Vec<u8> = bytes[end..].iter().copied().skip_while(|&b| b == b'/').collect();
    if rest.is_empty() {
        return Ok(home);
    }
    Ok(home.join(OsString::from_vec(rest)))
}

/// `$HOME` when it is an absolute path, else the home the password database gives this user.
fn own_home(path: &Path) -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute()) {
        return Ok(home);
    }
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) if user.dir.is_absolute() => Ok(user.dir),
        _ => Err(Error::invalid(format!(
            "{}: cannot expand the ~: HOME is not set to an absolute path and the password database has no \
             home for uid {uid}; give an absolute path",
            path.display()
        ))),
    }
}

/// The home of the user named `name`, from the password database.
fn home_of(name: &[u8], path: &Path) -> Result<PathBuf> {
    let shown = String::from_utf8_lossy(name);
    let found = std::str::from_utf8(name).ok().and_then(|n| nix::unistd::User::from_name(n).ok().flatten());
    match found {
        Some(user) if user.dir.is_absolute() => Ok(user.dir),
        Some(_) => Err(Error::invalid(format!(
            "{}: user '{shown}' has no absolute home directory to expand ~{shown} to; give the full path",
            path.display()
        ))),
        None => Err(Error::invalid(format!(
            "{}: there is no user named '{shown}' to expand ~{shown} for; give the full path",
            path.display()
        ))),
    }
}

/// Refuse a name that starts with a URL scheme (`letter *(letter / digit / + / - / .) :`), saying
/// which path to give instead. `./NAME` still names a file called so.
fn refuse_url(location: &Path) -> Result<()> {
    let text = location.as_os_str().as_bytes();
    let Some(scheme) = scheme_of(text) else { return Ok(()) };
    let shown = super::redact_url(&location.to_string_lossy());
    let scheme_text = String::from_utf8_lossy(scheme);
    let after = &text[scheme.len() + 1..];
    let instead = match path_in_url(&scheme_text.to_ascii_lowercase(), after) {
        Some(path) => format!("give its path, {}", Path::new(std::ffi::OsStr::from_bytes(&path)).display()),
        None => "give a file's path".to_owned(),
    };
    // `./sqlite:///x.db` would make directories, which nobody wants; `./file:x.db` is a file.
    let literal = if after.starts_with(b"/") {
        String::new()
    } else {
        format!(" (or ./{shown} for a file of that very name)")
    };
    Err(Error::invalid(format!(
        "{shown} looks like a {scheme_text}: URL, and cairn takes a file's path or a postgres:// URL: \
         {instead}{literal}"
    )))
}

/// The scheme a name starts with, if it starts with one.
fn scheme_of(text: &[u8]) -> Option<&[u8]> {
    let colon = text.iter().position(|&b| b == b':')?;
    let scheme = &text[..colon];
    let first = scheme.first()?;
    let rest_ok = scheme.iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    (first.is_ascii_alphabetic() && rest_ok).then_some(scheme)
}

/// The file a `file:` URL (SQLite's URI filenames) or a `sqlite:` URL (SQLAlchemy's and many
/// others': `sqlite:///relative.db`, `sqlite:////absolute.db`) names, when it names one.
fn path_in_url(scheme: &str, after: &[u8]) -> Option<Vec<u8>> {
    let path = match scheme {
        "file" => {
            let before_query = after.split(|&b| b == b'?' || b == b'#').next().unwrap_or_default();
            let path = match before_query.strip_prefix(b"//") {
                // `file:///x` and `file://localhost/x`; a file on another host is no local path.
                Some(authority_and_path) => {
                    let path = authority_and_path.strip_prefix(b"localhost").unwrap_or(authority_and_path);
                    if !path.starts_with(b"/") {
                        return None;
                    }
                    path
                }
                None => before_query,
            };
            percent_decode(path)?
        }
        "sqlite" | "sqlite3" => {
            let before_query = after.split(|&b| b == b'?').next().unwrap_or_default();
            match before_query.strip_prefix(b"//") {
                Some(rest) => rest.strip_prefix(b"/")?.to_vec(),
                None => before_query.to_vec(),
            }
        }
        _ => return None,
    };
    (!path.is_empty()).then_some(path)
}

/// `%XX` escapes decoded; `None` for a malformed escape.
fn percent_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(text.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> String {
        match resolve(Path::new(name)) {
            Err(e) => {
                assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{name}: {e}");
                e.to_string()
            }
            Ok(p) => panic!("{name} was taken as {}", p.display()),
        }
    }

    #[test]
    fn url_like_names_are_refused_naming_the_path_to_give() {
        for (name, says) in [
            ("sqlite:///x.db", "give its path, x.db"),
            ("sqlite:////var/lib/x.db", "give its path, /var/lib/x.db"),
            ("SQLite:///x.db?mode=ro", "give its path, x.db"),
            ("file:state.db?mode=memory", "give its path, state.db (or ./file:state.db?mode=memory for"),
            ("file:///tmp/a%20b.db", "give its path, /tmp/a b.db"),
            ("file://localhost/tmp/x.db", "give its path, /tmp/x.db"),
            ("file:/tmp/x.db", "give its path, /tmp/x.db"),
            ("file://otherhost/x.db", "give a file's path"),
            ("mysql://u@h/db", "give a file's path"),
            ("postgres:db", "give a file's path"),
            ("redis:x", "(or ./redis:x for a file of that very name)"),
        ] {
            let err = refused(name);
            assert!(err.contains(says), "{name}: {err}");
            assert!(err.contains("postgres:// URL"), "{name}: {err}");
        }
        assert!(
            !refused("sqlite:///x.db").contains("./sqlite"),
            "no ./ hint for a name that makes directories"
        );
    }

    /// The refusal shows the name as given, but never a password in it (it did).
    #[test]
    fn a_url_of_another_scheme_is_refused_without_showing_its_password() {
        for name in ["mysql://u:s3cret@h/db", "sqlite://u:s3cret@h/x.db", "redis://:s3cret@h:6379/0"] {
            let err = refused(name);
            assert!(!err.contains("s3cret") && err.contains(":***@h"), "{name}: {err}");
        }
    }

    #[test]
    fn paths_with_colons_elsewhere_and_server_urls_are_taken_as_they_are() {
        for name in [
            ":memory:",
            "./file:x.db",
            "/tmp/sqlite:/x.db",
            "2024-01-01T10:00.db",
            "a/b:c.db",
            "postgres://u@h/db",
        ] {
            assert_eq!(resolve(Path::new(name)).ok(), Some(PathBuf::from(name)), "{name}");
        }
        assert_eq!(resolve(Path::new("POSTGRESQL://h/db")).ok(), Some(PathBuf::from("POSTGRESQL://h/db")));
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory_and_tilde_user_that_users() {
        let home = own_home(Path::new("~")).expect("a home");
        assert_eq!(expand_home(Path::new("~/x.db")).ok(), Some(home.join("x.db")));
        assert_eq!(expand_home(Path::new("~//a/x.db")).ok(), Some(home.join("a/x.db")));
        assert_eq!(expand_home(Path::new("~")).ok(), Some(home.clone()));
        assert_eq!(expand_home(Path::new("a/~/x.db")).ok(), Some(PathBuf::from("a/~/x.db")));
        assert_eq!(expand_home(Path::new("./~/x.db")).ok(), Some(PathBuf::from("./~/x.db")));
        let root = nix::unistd::User::from_uid(0.into()).expect("passwd").expect("root").dir;
        assert_eq!(expand_home(Path::new("~root/x.db")).ok(), Some(root.join("x.db")));
        let err = expand_home(Path::new("~no-such-user-cairn/x.db")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no user named 'no-such-user-cairn'"), "{err}");
    }

    #[test]
    fn a_server_url_is_no_file_for_a_database_of_ones_own() {
        let err = resolve_file(Path::new("postgres://u:secret@h/db")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("--scope") && !err.to_string().contains("secret"), "{err}");
    }
}
