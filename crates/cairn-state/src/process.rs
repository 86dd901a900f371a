//! Which process holds something, in a form other processes on the same host can check:
//! the boot (`/proc/sys/kernel/random/boot_id`), the pid, and the pid's start time (against
//! pid reuse). Where `/proc` is missing, nothing is ever known dead and leases alone decide.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// This process.
#[derive(Debug)]
pub(crate) struct Process {
    pub boot_id: String,
    pub pid: u32,
    pub start: i64,
    /// `boot/pid/start`, as [`watch`] names it.
    pub name: String,
}

/// This process, as other processes on the host can check it. Read once per process: a child
/// forked after the first call gets its own pid and start time, never its parent's, or a lock
/// it took would be judged "held by a dead process" once the parent exited, while it still
/// works.
pub(crate) fn me() -> Arc<Process> {
    static ME: Mutex<Option<Arc<Process>>> = Mutex::new(None);
    let pid = std::process::id();
    let mut cached = ME.lock().unwrap_or_else(PoisonError::into_inner);
    match &*cached {
        Some(p) if p.pid == pid => Arc::clone(p),
        _ => {
            let (boot_id, start) = (boot_id().unwrap_or_default(), start_time(pid).unwrap_or(0));
            let name = format!("{boot_id}/{pid}/{start}");
            let p = Arc::new(Process { boot_id, pid, start, name });
            *cached = Some(Arc::clone(&p));
            p
        }
    }
}

/// True only when the process is known to be gone: same boot of the same machine, and its
/// pid runs no process or one started at another time. Unknown means alive.
pub(crate) fn is_dead(boot_id: &str, pid: i64, start: i64) -> bool {
    let me = me();
    if boot_id.is_empty() || boot_id != me.boot_id || start == 0 {
        return false;
    }
    let Ok(pid) = u32::try_from(pid) else { return false };
    start_time(pid) != Some(start)
}

/// A name unique to this call among all processes on all hosts sharing a file, from which
/// [`token_is_dead`] can tell whether its process is gone: `boot/pid/start/seq/nanos`.
pub(crate) fn token() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let me = me();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}/{}/{}/{}/{nanos}", me.boot_id, me.pid, me.start, SEQ.fetch_add(1, Ordering::Relaxed))
}

/// The name of process `pid` of this host, `boot/pid/start`, from which [`token_is_dead`]
/// can tell when it is gone. `None` where processes cannot be watched (no `/proc`); an error
/// if no process `pid` runs.
pub(crate) fn watch(pid: u32) -> crate::Result<Option<String>> {
    let me = me();
    if me.boot_id.is_empty() || me.start == 0 {
        return Ok(None);
    }
    if pid == me.pid {
        return Ok(Some(me.name.clone()));
    }
    match start_time(pid) {
        Some(start) => Ok(Some(format!("{}/{pid}/{start}", me.boot_id))),
        None => Err(crate::Error::invalid(format!(
            "no process with pid {pid} is running on this host, so a claim cannot be tied to it"
        ))),
    }
}

/// Whether the process that made `token` is known to be gone.
pub(crate) fn token_is_dead(token: &str) -> bool {
    let mut parts = token.split('/');
    let (Some(boot), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    match (pid.parse(), start.parse()) {
        (Ok(pid), Ok(start)) => is_dead(boot, pid, start),
        _ => false,
    }
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_owned())
}

/// A running process's start time in clock ticks since boot: field 22 of `/proc/<pid>/stat`,
/// counted after the command name, which is in parentheses and may itself hold spaces. `None`
/// for no process, and for a zombie (exited, not yet reaped by its parent): it holds nothing.
fn start_time(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_a_recycled_pid_is_dead_and_other_hosts_are_unknown() {
        let me = me();
        if me.boot_id.is_empty() {
            eprintln!("SKIP: no /proc on this system; leases alone recover crashed holders");
            return;
        }
        assert!(!is_dead(&me.boot_id, i64::from(me.pid), me.start));
        assert!(is_dead(&me.boot_id, i64::from(me.pid), me.start + 1), "a recycled pid is another process");
        assert!(!is_dead("another-machine", i64::from(me.pid), me.start + 1));
        assert!(!token_is_dead(&token()));
        assert!(token_is_dead(&format!("{}/{}/{}/0/0", me.boot_id, me.pid, me.start + 1)));
        assert!(!token_is_dead("garbage"));
        let mine = watch(me.pid).unwrap().expect("watchable");
        assert!(!token_is_dead(&mine));
        assert!(token_is_dead(&format!("{}/{}/{}", me.boot_id, me.pid, me.start + 1)));
        assert_eq!(watch(u32::MAX).unwrap_err().kind(), crate::ErrorKind::InvalidInput);
    }
}
