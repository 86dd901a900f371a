//! Which process holds something, in a form other processes on the same host can check:
//! the boot (`/proc/sys/kernel/random/boot_id`), the pid, and the pid's start time (against
//! pid reuse). Where `/proc` is missing, nothing is ever known dead and leases alone decide.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// This process.
#[derive(Debug)]
pub(crate) struct Process {
    pub boot_id: String,
    pub pid: u32,
    pub start: i64,
}

pub(crate) fn me() -> &'static Process {
    static ME: OnceLock<Process> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        Process { boot_id: boot_id().unwrap_or_default(), pid, start: start_time(pid).unwrap_or(0) }
    })
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

/// A process's start time in clock ticks since boot: field 22 of `/proc/<pid>/stat`, counted
/// after the command name, which is in parentheses and may itself hold spaces.
fn start_time(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
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
    }
}
