//! Hit and miss counts of processes that only read, kept beside the database in `<db>-hits`
//! until a write transaction adds them to `cairn_cache_ns`.
//!
//! A process that reads and exits (`cairn cache get`, a memo replay) would otherwise need a
//! write transaction of its own for its counts: the write lock, a commit, and, as the last
//! connection to close, a checkpoint with four fsyncs. That was most of such a process's time
//! (docs/BENCHMARKS.md). Instead it appends one record per namespace to this file: one
//! `write(2)` under a shared `flock`, no fsync (these are statistics: a power loss may lose
//! them, never the data). A write transaction takes the exclusive `flock` without waiting,
//! reads the records, adds them in the transaction and empties the file; a concurrent reader
//! appends after the truncation (`O_APPEND`), so no count is lost or counted twice, unless
//! the commit itself fails after the file was emptied. The file is private (0600), never
//! followed through a symbolic link, and, created by root beside another user's store, given
//! to that user, as SQLite does with the -wal.
//!
//! A record is `HITS MISSES NAMESPACE` then a NUL (namespaces never contain NUL); a damaged
//! record is skipped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use super::{side_file, Engine};
use crate::error::Result;
use crate::storage::NsHitCounts;

/// The suffix of the file beside the database.
pub(crate) const HITS_SUFFIX: &str = "-hits";

impl Engine {
    fn hits_path(&self) -> Option<PathBuf> {
        (self.path.as_os_str() != ":memory:").then(|| side_file(&self.path, HITS_SUFFIX))
    }

    /// Append the counts to `<db>-hits`; false if they could not be (no file, a symbolic link
    /// there, no permission): the caller then writes them in a transaction.
    pub fn cache_defer_hit_counts(&self, counts: &[NsHitCounts]) -> Result<bool> {
        let Some(path) = self.hits_path() else { return Ok(false) };
        let mut record = Vec::new();
        for t in counts {
            record.extend_from_slice(format!("{} {} {}\0", t.hits, t.misses, t.ns).as_bytes());
        }
        let appended = || -> std::io::Result<()> {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)?;
            make_private(&file, &self.path);
            let mut locked =
                Flock::lock(file, FlockArg::LockShared).map_err(|(_, e)| std::io::Error::from(e))?;
            // One write: appends of other processes never interleave with it.
            locked.write_all(&record)
        };
        Ok(appended().is_ok())
    }

    /// The counts in `<db>-hits`, not yet added to the database.
    pub fn cache_deferred_hit_counts(&self) -> Result<Vec<NsHitCounts>> {
        let Some(file) = self.hits_path().and_then(|p| open_existing(&p)) else { return Ok(Vec::new()) };
        let Ok(mut locked) = Flock::lock(file, FlockArg::LockShared) else { return Ok(Vec::new()) };
        let mut bytes = Vec::new();
        Ok(if locked.read_to_end(&mut bytes).is_ok() { parse(&bytes) } else { Vec::new() })
    }

    /// Inside a write transaction: the counts in `<db>-hits`, which is emptied. Nothing if
    /// another process holds the file at this moment (the next write takes them).
    pub fn cache_take_deferred_hit_counts(&self) -> Result<Vec<NsHitCounts>> {
        let Some(file) = self.hits_path().and_then(|p| open_existing(&p)) else { return Ok(Vec::new()) };
        if file.metadata().map_or(true, |m| m.len() == 0) {
            return Ok(Vec::new());
        }
        let Ok(mut locked) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            return Ok(Vec::new());
        };
        let mut bytes = Vec::new();
        if locked.read_to_end(&mut bytes).is_err() || locked.set_len(0).is_err() || locked.rewind().is_err() {
            return Ok(Vec::new());
        }
        Ok(parse(&bytes))
    }
}

/// The file for reading and truncating, if it exists and is not a symbolic link.
fn open_existing(path: &std::path::Path) -> Option<File> {
    OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_NOFOLLOW).open(path).ok()
}

/// Exactly 0600 whatever the umask; and, run as root beside another user's store, theirs, so
/// that their own processes can append to it.
fn make_private(file: &File, store: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(mine) = file.metadata() else { return };
    if mine.mode() & 0o777 != 0o600 {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    if let Ok(theirs) = std::fs::metadata(store) {
        if (mine.uid(), mine.gid()) != (theirs.uid(), theirs.gid()) {
            let _ = std::os::unix::fs::fchown(file, Some(theirs.uid()), Some(theirs.gid()));
        }
    }
}

fn parse(bytes: &[u8]) -> Vec<NsHitCounts> {
    let mut out: Vec<NsHitCounts> = Vec::new();
    for record in bytes.split(|&b| b == 0) {
        let Ok(text) = std::str::from_utf8(record) else { continue };
        let mut parts = text.splitn(3, ' ');
        let (Some(h), Some(m), Some(ns)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (Ok(hits), Ok(misses)) = (h.parse::<u64>(), m.parse::<u64>()) else { continue };
        if ns.is_empty() {
            continue;
        }
        match out.iter_mut().find(|t| t.ns == ns) {
            Some(t) => {
                t.hits = t.hits.saturating_add(hits);
                t.misses = t.misses.saturating_add(misses);
            }
            None => out.push(NsHitCounts { ns: ns.to_owned(), hits, misses }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_add_up_per_namespace_and_damaged_ones_are_skipped() {
        let got = parse(b"1 2 a\x003 4 b b\x00x 1 c\x005 6 a\x00 7 8\x009 9");
        let want = [("a", 6, 8), ("b b", 3, 4)];
        assert_eq!(got.len(), want.len());
        for (t, (ns, h, m)) in got.iter().zip(want) {
            assert_eq!((t.ns.as_str(), t.hits, t.misses), (ns, h, m));
        }
    }
}
