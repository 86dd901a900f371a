//! Waiting for another connection's commit to a file. `PRAGMA data_version` on a connection of
//! the watcher's own tells whether anyone else committed (`SQLITE_FCNTL_DATA_VERSION` would
//! miss other connections' commits); reading it costs microseconds, but reading it every
//! millisecond kept an idle waiter at 3% of a core. So on Linux the watcher sleeps in inotify
//! on the file's directory, woken by a write to the WAL (or, in rollback-journal mode, to the
//! database), and checks `data_version` then; elsewhere, or if inotify fails, it polls
//! `data_version` with a backoff of 1 to 50 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::Engine;
use crate::error::Result;
use crate::storage::states::state;
use crate::storage::watch::{WakeRow, Watcher, Woke};

/// The pending item due first, the claim expiring first, the pause, how many are claimed and
/// whether any item is pending or claimed. Pending and claimed rows always have a `seq`, which
/// lets the queue index serve each part. The queue index orders pending items by priority
/// before their due time, so the earliest due time is found by skip-scanning the priorities
/// (`p`: one probe per distinct priority, then one per priority for its first due): a plain
/// `min(due)` read every pending entry (14 ms with 100,000 delayed items; this, 0.3 ms).
const WAKE: &str = concat!(
    "WITH RECURSIVE p(pr) AS (SELECT (SELECT max(priority) FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL) UNION ALL SELECT (SELECT max(priority) FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND priority < p.pr) FROM p WHERE p.pr IS NOT NULL) \
     SELECT (SELECT min((SELECT min(due) FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(pending),
    " AND seq IS NOT NULL AND priority = p.pr)) FROM p WHERE p.pr IS NOT NULL), \
     (SELECT min(seq) FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL), \
     (SELECT paused_until FROM cairn_ledger_ns WHERE ns = ?1), \
     (SELECT count(*) FROM cairn_ledger WHERE ns = +?1 AND state = ",
    state!(claimed),
    " AND seq IS NOT NULL), \
     EXISTS (SELECT 1 FROM cairn_ledger WHERE ns = +?1 AND state IN (",
    state!(pending),
    ", ",
    state!(claimed),
    ") AND seq IS NOT NULL)"
);

/// The longest nap of the fallback poll: what a commit may wait to be seen where inotify is
/// unavailable.
const POLL_MAX: Duration = Duration::from_millis(50);

/// With inotify, how often `data_version` is read though no write was reported: a safety net.
#[cfg(any(target_os = "linux", target_os = "android"))]
const LOOK_ANYWAY: Duration = Duration::from_secs(1);

/// After a write to the log, the writer publishes the commit (in the shared-memory index) a
/// moment later: `data_version` is read again after these naps before going back to sleep.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SETTLE: [Duration; 5] = [
    Duration::from_micros(200),
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
];

impl Engine {
    pub fn ledger_wake(&self, ns: &str) -> Result<WakeRow> {
        Ok(self
            .row(WAKE, rusqlite::params![ns], |r| {
                Ok(WakeRow {
                    earliest_due: r.get(0)?,
                    earliest_expiry: r.get(1)?,
                    paused_until: r.get(2)?,
                    claimed: r.get(3)?,
                    active: r.get(4)?,
                })
            })?
            .unwrap_or_default())
    }

    /// A watcher of the file; a store in memory, which no other connection can change, only
    /// naps until its deadlines. Where a second connection cannot be opened (a file opened
    /// immutable, through a VFS of its own), the waiter reads the namespace after each nap,
    /// as on a server.
    pub fn watcher(&self) -> Result<Watcher> {
        if self.path() == Path::new(":memory:") {
            return Ok(Watcher::poll(Duration::from_millis(100), Duration::from_millis(100)));
        }
        Ok(match FileWatch::open(self.path()) {
            Ok(w) => Watcher::File(w),
            Err(_) => Watcher::poll(Duration::from_millis(5), POLL_MAX),
        })
    }
}

/// A connection of its own to read `data_version` on, and where it can, inotify on the file's
/// directory.
pub(crate) struct FileWatch {
    conn: Connection,
    version: i64,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    notify: Option<notify::Notify>,
    /// The fallback poll's next nap.
    nap: Duration,
    /// Read `data_version` at the next wait, whatever inotify says.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    look: bool,
    /// When it was last read.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    looked: Instant,
}

impl FileWatch {
    fn open(path: &Path) -> Result<FileWatch> {
        let err = |e: rusqlite::Error| super::classify(e, path, Duration::ZERO);
        // Read-only: it never writes; NO_MUTEX as the store's own connection.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(Duration::from_millis(100)).map_err(err)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let notify = notify::Notify::new(path);
        let mut watch = FileWatch {
            conn,
            version: 0,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            notify,
            nap: Duration::from_millis(1),
            look: true,
            looked: Instant::now(),
        };
        // The version now: a commit from here on is a change. (Armed before the caller's
        // next attempt, so that nothing committed after that attempt goes unseen.)
        watch.version = watch.data_version().unwrap_or(0);
        Ok(watch)
    }

    /// Start a new wait: commits from now on are changes, and writes seen before are old news.
    pub(crate) fn rearm(&mut self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(n) = self.notify.as_mut() {
            if n.drain().is_err() {
                self.notify = None;
            }
        }
        self.version = self.data_version().unwrap_or(self.version);
        self.nap = Duration::from_millis(1);
        self.look = true;
    }

    /// `PRAGMA data_version`; `None` if it could not be read (the caller then assumes a change,
    /// which costs one more attempt and misses nothing).
    fn data_version(&self) -> Option<i64> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
    }

    /// True (the version noted) if another connection committed since the last look.
    fn changed(&mut self) -> bool {
        self.looked = Instant::now();
        match self.data_version() {
            Some(v) if v == self.version => false,
            Some(v) => {
                self.version = v;
                true
            }
            None => true,
        }
    }

    pub(crate) fn wait(&mut self, max: Duration) -> Result<Woke> {
        let until = Instant::now() + max;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if self.notify.is_some() {
            return Ok(self.wait_notified(until));
        }
        loop {
            if self.changed() {
                self.nap = Duration::from_millis(1);
                return Ok(Woke::Changed);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Woke::Unknown);
            }
            std::thread::sleep(self.nap.min(left));
            self.nap = (self.nap * 2).min(POLL_MAX);
        }
    }

    /// Asleep in inotify, `data_version` read only when it may have moved: after a write to
    /// the file, at the first wait, when the last one ended before the write it saw was
    /// published, and once a second as a safety net. An idle slice costs a `poll`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn wait_notified(&mut self, until: Instant) -> Woke {
        loop {
            if self.look || self.looked.elapsed() >= LOOK_ANYWAY {
                self.look = false;
                if self.changed() {
                    // Another commit may be a moment from published, its write already read.
                    self.look = true;
                    return Woke::Changed;
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Woke::Unknown;
            }
            let Some(n) = self.notify.as_mut() else { return Woke::Unknown };
            match n.wait(left.min(LOOK_ANYWAY)) {
                Ok(false) => {}
                Ok(true) => {
                    // The log was written: the commit is published a moment later.
                    for nap in SETTLE {
                        if self.changed() {
                            self.look = true;
                            return Woke::Changed;
                        }
                        if Instant::now() + nap >= until {
                            self.look = true;
                            break;
                        }
                        std::thread::sleep(nap);
                    }
                }
                Err(()) => {
                    // inotify failed (too many watches, a closed descriptor): poll instead.
                    self.notify = None;
                    return Woke::Unknown;
                }
            }
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod notify {
    use std::ffi::OsString;
    use std::os::fd::AsFd;
    use std::path::Path;
    use std::time::Duration;

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

    /// inotify on the directory of a database file, reporting writes to the file and its
    /// journals. (The directory, not the files: the WAL is deleted and made again as
    /// connections come and go.)
    pub(super) struct Notify {
        inotify: Inotify,
        names: [OsString; 3],
    }

    impl Notify {
        /// `None` where inotify cannot be had (no support, the watch limit reached).
        pub(super) fn new(db: &Path) -> Option<Notify> {
            let dir = db.parent()?;
            let name = db.file_name()?;
            let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
            let mask = AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO;
            inotify.add_watch(dir, mask).ok()?;
            let with = |suffix: &str| {
                let mut n = name.to_os_string();
                n.push(suffix);
                n
            };
            Some(Notify { inotify, names: [name.to_os_string(), with("-wal"), with("-journal")] })
        }

        /// Wait up to `max` for a write to the file or its journals: true if one came, false
        /// if the time passed (or only other files were written); `Err` if inotify failed.
        pub(super) fn wait(&mut self, max: Duration) -> Result<bool, ()> {
            let ms = u16::try_from(max.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(false),
                Err(_) => return Err(()),
            }
            self.drain()
        }

        /// Read the events waiting: true if one was about the file or its journals.
        pub(super) fn drain(&mut self) -> Result<bool, ()> {
            let mut ours = false;
            loop {
                match self.inotify.read_events() {
                    Ok(events) if events.is_empty() => break,
                    Ok(events) => {
                        ours |= events.iter().any(|e| {
                            e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                                || e.name.as_ref().is_some_and(|n| self.names.contains(n))
                        });
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(_) => return Err(()),
                }
            }
            Ok(ours)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::FileWatch;
    use crate::storage::watch::Woke;

    /// A WAL file with a table, and a connection of "another process" to commit with.
    fn file() -> (tempfile::TempDir, std::path::PathBuf, rusqlite::Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let other = rusqlite::Connection::open(&path).expect("open");
        other.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x)").expect("setup");
        (dir, path, other)
    }

    fn woken_by_anothers_commit(mut w: FileWatch, other: &rusqlite::Connection) {
        assert_eq!(w.wait(Duration::from_millis(20)).expect("wait"), Woke::Unknown, "nothing committed");
        let writer = {
            let path = other.path().expect("a file").to_owned();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                rusqlite::Connection::open(path)
                    .expect("open")
                    .execute("INSERT INTO t VALUES (1)", [])
                    .expect("commit")
            })
        };
        // The limit is a safety net: the commit ends the wait long before.
        assert_eq!(w.wait(Duration::from_secs(30)).expect("wait"), Woke::Changed);
        writer.join().expect("writer");
        assert_eq!(w.wait(Duration::from_millis(20)).expect("wait"), Woke::Unknown, "seen once");
    }

    #[test]
    fn a_watcher_is_woken_by_another_connections_commit() {
        let (_dir, path, other) = file();
        let w = FileWatch::open(&path).expect("watch");
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert!(w.notify.is_some(), "inotify on Linux");
        woken_by_anothers_commit(w, &other);
    }

    #[test]
    fn without_inotify_a_watcher_polls_data_version_and_still_sees_the_commit() {
        let (_dir, path, other) = file();
        #[allow(unused_mut)]
        let mut w = FileWatch::open(&path).expect("watch");
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            w.notify = None;
        }
        woken_by_anothers_commit(w, &other);
    }
}
