//! Which process holds something, in a form other processes on the same host can check:
//! the boot (`/proc/sys/kernel/random/boot_id`), the pid, and the pid's start time (against
//! pid reuse). Where `/proc` is missing, nothing is ever known dead and leases alone decide.
//!
//! A process is not dead while a command it ran still runs: a `cairn lock` killed with
//! SIGKILL leaves its command running, and the lock must stay held for it. Commands are marked
//! by [`hold_while_running`] with the names of the processes they run for, in an environment
//! variable that everything they start inherits; a dead holder's name found there, in the
//! environment of a live process of the host, keeps it alive. (Rather than the command's pid
//! or process group kept in the store: the command's own children, a pipeline, a daemon that
//! left the group, all carry the variable, no schema changes, and a name holds a start time,
//! so a reused pid cannot pass for it.)

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

/// True only when the process is known to be gone: same boot of the same machine, its pid
/// runs no process or one started at another time, and no live process runs for it (one it
/// started through [`hold_while_running`], or anything that one started). Unknown means
/// alive.
pub(crate) fn is_dead(boot_id: &str, pid: i64, start: i64) -> bool {
    let me = me();
    if boot_id.is_empty() || boot_id != me.boot_id || start == 0 {
        return false;
    }
    let Ok(pid) = u32::try_from(pid) else { return false };
    start_time(pid) != Some(start) && !runs_for(&format!("{boot_id}/{pid}/{start}"))
}

/// The environment variable that marks a command as run for processes that hold something:
/// their names, `boot/pid/start`, separated by spaces (a cairn run by a cairn adds its own).
pub const HOLDERS_VAR: &str = "CAIRN_HOLDERS";

/// Mark `command`, which this process is about to start, as run for it: whatever this process
/// holds on this host (a lock, a memo's run, ledger claims tied to it) then stays held while
/// the command, or anything it starts, still runs after this process died, as if this process
/// were still alive; the hold's expiry still applies. `cairn lock` and `cairn memo` mark their
/// commands so.
///
/// The mark is the environment variable [`HOLDERS_VAR`], which child processes inherit. A
/// process that clears its environment, or runs as another user (whose environment cannot be
/// read), is not seen. Where processes cannot be watched (no `/proc`), nothing is marked.
///
/// ```
/// use cairn::Store;
/// use std::process::Command;
/// use std::time::Duration;
///
/// let store = Store::open_in_memory()?;
/// let guard = store.try_lock("nightly", Duration::from_secs(3600))?.expect("free");
/// let mut command = Command::new("true");
/// let status = cairn::hold_while_running(&mut command).status()?;
/// assert!(status.success());
/// drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn hold_while_running(command: &mut std::process::Command) -> &mut std::process::Command {
    let me = me();
    if me.boot_id.is_empty() || me.start == 0 {
        return command;
    }
    // Those this process runs for, inherited (or set for the command), then this process.
    let inherited = command
        .get_envs()
        .find(|(k, _)| *k == HOLDERS_VAR)
        .map_or_else(|| std::env::var_os(HOLDERS_VAR), |(_, v)| v.map(ToOwned::to_owned));
    let mut holders = inherited.unwrap_or_default();
    if !holders.is_empty() {
        holders.push(" ");
    }
    holders.push(&me.name);
    command.env(HOLDERS_VAR, holders)
}

/// [`hold_while_running`], and also for the process `pid` of this host (a script's shell that
/// holds something through this process, as `cairn step` holds a run for its shell): if that
/// process is killed while the command runs, what it holds stays held until the command ends
/// rather than being taken over while the command still works. A `pid` that runs no process
/// adds nothing.
///
/// ```
/// use std::process::Command;
///
/// let mut command = Command::new("true");
/// let status = cairn::hold_while_running_for(&mut command, std::os::unix::process::parent_id()).status()?;
/// assert!(status.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn hold_while_running_for(command: &mut std::process::Command, pid: u32) -> &mut std::process::Command {
    hold_while_running(command);
    let Ok(Some(name)) = watch(pid) else { return command };
    if name == me().name {
        return command;
    }
    let mut holders = command
        .get_envs()
        .find(|(k, _)| *k == HOLDERS_VAR)
        .and_then(|(_, v)| v.map(ToOwned::to_owned))
        .unwrap_or_default();
    if !holders.is_empty() {
        holders.push(" ");
    }
    holders.push(&name);
    command.env(HOLDERS_VAR, holders)
}

/// Whether a live process of this host carries `name` in its [`HOLDERS_VAR`]: a command run
/// for it, or anything that command started. Reads every process's environment, so it is
/// only asked once the process `name` is found gone (a takeover, a waiter's retry).
fn runs_for(name: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else { return false };
    let prefix = format!("{HOLDERS_VAR}=");
    procs.flatten().any(|entry| {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        // Another user's environment cannot be read: such a process is not seen.
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
        let carries = environ.split(|&b| b == 0).any(|var| {
            var.strip_prefix(prefix.as_bytes())
                .is_some_and(|names| names.split(|&b| b == b' ').any(|n| n == name.as_bytes()))
        });
        // A zombie's environment is gone already; checked anyway, as it holds nothing.
        carries && start_time(pid).is_some()
    })
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
            "no process with pid {pid} is running on this host, so nothing (a claim, a run) can be held for it; \
             give the pid of a live process, e.g. your script's shell ($$)"
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

    #[test]
    fn a_dead_process_is_alive_while_a_command_marked_for_it_runs() {
        let me = me();
        if me.boot_id.is_empty() {
            eprintln!("SKIP: no /proc on this system; leases alone recover crashed holders");
            return;
        }
        // A name no process has had: "dead", unless a command runs for it. (Not the other
        // test's `start + 1`: the command marked with it would keep that one alive.)
        let (pid, start) = (i64::from(me.pid), me.start + 7);
        let name = format!("{}/{pid}/{start}", me.boot_id);
        assert!(is_dead(&me.boot_id, pid, start));
        let mut command = std::process::Command::new("sh");
        command.args(["-c", "read line"]).stdin(std::process::Stdio::piped());
        // As a cairn run by the dead one would pass it on: its name first, then this one's.
        command.env(HOLDERS_VAR, &name);
        let mut child = hold_while_running(&mut command).spawn().unwrap();
        let marked: String = command
            .get_envs()
            .find(|(k, _)| *k == HOLDERS_VAR)
            .and_then(|(_, v)| v?.to_str())
            .unwrap()
            .into();
        assert_eq!(marked, format!("{name} {}", me.name));
        assert!(!is_dead(&me.boot_id, pid, start), "its command still runs");
        drop(child.stdin.take()); // the command reads end of file and ends
        child.wait().unwrap();
        assert!(is_dead(&me.boot_id, pid, start), "its command ended");
    }
}
