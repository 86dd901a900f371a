//! `cairn step`: run a command once as a step of a durable run, replay it after.

use std::ffi::OsString;
use std::process::Stdio;

use cairn::{CommandStep, ErrorKind, HeldRun, RunOptions, Store};

use super::memo::Passer;
use super::signals::Forwarder;
use super::{command_of, spawn, Ctx};
use crate::cli::{HoldArgs, StepArgs};
use crate::output::{stdout_failure, Outcome};

pub fn run(ctx: &Ctx, args: StepArgs) -> Outcome {
    let store = ctx.open()?;
    let Some(held) = take(&store, &args.hold, Some(&args.name))? else { return Ok(args.hold.held_exit) };
    let version = cairn::command_version(&definition(&args.command, &args.env));
    let mut out = Passer::new();
    let mut passing_on = None;
    let mut replay = Passer::new();
    let outcome = store.command_step(
        &held,
        &args.name,
        &version,
        &mut |s, b| replay.pass(s, b, false).map_err(stdout_failure),
        |rec| {
            let mut command = command_of(&args.command)?;
            command.env("CAIRN_RUN", held.id()).env("CAIRN_STEP", &args.name);
            // The run stays held while the command runs, even if the script's shell is killed
            // meanwhile: a re-run must not start this step a second time beside it.
            cairn::hold_while_running_for(&mut command, holder_pid(&args.hold));
            let (mut child, _forwarding) =
                Forwarder::around(|| spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped())))?;
            let ran = rec.record_child(&mut child, &mut |s, b| out.pass(s, b, true))?;
            passing_on = ran.passing_on;
            Ok(ran.status)
        },
    )?;
    replay.finish().map_err(stdout_failure)?;
    if let Some(e) = passing_on {
        return Err(stdout_failure(e));
    }
    Ok(match outcome {
        CommandStep::Ran { status } => crate::exit::of_command(status),
        _ => crate::exit::OK,
    })
}

/// What a step's version digests: the command line, then each named variable with its
/// value (unset: none), after an element no argument can be (arguments hold no NUL byte), so
/// that no command line reads as another's with variables.
fn definition(command: &[OsString], env: &[String]) -> Vec<OsString> {
    let mut all = command.to_vec();
    for name in env {
        all.push(OsString::from("\0env"));
        all.push(OsString::from(name));
        all.push(std::env::var_os(name).unwrap_or_else(|| OsString::from("\0unset")));
    }
    all
}

/// Take the run for the script (the process --pid, else cairn's parent), joining the attempt
/// that script already holds; `None`, said on stderr, while another live process holds it.
/// With the `step` this process is for, joining a finished run reads that step with it.
pub fn take(store: &Store, hold: &HoldArgs, step: Option<&str>) -> Outcome<Option<HeldRun>> {
    let pid = holder_pid(hold);
    let mut options = RunOptions::new().holder_pid(pid).rejoin(true).lease(hold.lease);
    if let Some(wait) = hold.wait {
        options = options.wait(wait);
    }
    let taken = match step {
        Some(name) => store.take_run_for_step(&hold.run, &options, name),
        None => store.take_run(&hold.run, &options),
    };
    match taken {
        Ok(held) => Ok(Some(held)),
        Err(e) if e.kind() == ErrorKind::RunHeld => {
            crate::output::note(e);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The process the run is held for: --pid, else cairn's parent (the script's shell).
fn holder_pid(hold: &HoldArgs) -> u32 {
    hold.pid.unwrap_or_else(std::os::unix::process::parent_id)
}
