//! Signals sent to cairn passed on to the command it runs (`cairn lock`, `limit`, `job`,
//! `memo`, `step`): a `kill` of cairn (SIGTERM from a supervisor, a timeout) reaches the
//! command, which ends, and cairn records how it ended, instead of cairn dying alone and
//! leaving the command orphaned and its end unrecorded.

use std::process::Child;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::Cause;

use crate::output::{Failure, Outcome};

/// The signals passed on to the command.
const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// Passing signals on to one child until dropped.
pub(super) struct Forwarder {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    /// Catch the forwarded signals, `start` the child (after, so that no signal falls between
    /// the two), then pass each one on to it.
    pub(super) fn around(start: impl FnOnce() -> Outcome<Child>) -> Outcome<(Child, Forwarder)> {
        let mut signals =
            SignalsInfo::<WithOrigin>::new(FORWARDED).map_err(Failure::io("installing signal handlers"))?;
        let handle = signals.handle();
        let child = match start() {
            Ok(child) => child,
            Err(e) => {
                handle.close();
                return Err(e);
            }
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let thread = std::thread::spawn(move || {
            for origin in signals.forever() {
                // A terminal's ^C (sent by the kernel) already reached the command, which shares
                // our process group: passing it on would deliver it twice.
                if matches!(origin.cause, Cause::Kernel) {
                    continue;
                }
                if let Ok(sig) = Signal::try_from(origin.signal) {
                    let _ = kill(pid, sig);
                }
            }
        });
        Ok((child, Forwarder { handle, thread: Some(thread) }))
    }
}

impl Drop for Forwarder {
    /// The default actions come back: a signal after the command ended (a ^C while cairn
    /// records how it ended and waits for the store) ends cairn, as it would have before the
    /// command. Closing the iterator alone leaves signal-hook's handler in place, which would
    /// drop such signals for the rest of the process.
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let always = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        for signal in FORWARDED {
            let _ = signal_hook::flag::register_conditional_default(signal, std::sync::Arc::clone(&always));
        }
    }
}
