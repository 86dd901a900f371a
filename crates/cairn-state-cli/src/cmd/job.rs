//! `cairn job run|history|list|check`: cron jobs that run once per slot.

use std::time::Duration;

use cairn::{format_duration, format_time, JobEnd, JobInfo, JobOutcome, JobRunInfo, Schedule};
use serde_json::json;

use super::lock::Running;
use super::{command_of, yes_no, Ctx};
use crate::cli::{JobCmd, JobRunArgs};
use crate::exit;
use crate::output::{note, Failure, Out, Outcome};

/// How many lines of a failed run's stderr the history keeps.
const TAIL_LINES: usize = 20;

pub fn run(ctx: &Ctx, cmd: JobCmd) -> Outcome {
    match cmd {
        JobCmd::Run(args) => run_job(ctx, args),
        JobCmd::History { name, limit } => history(ctx, &name, limit),
        JobCmd::List => list(ctx),
        JobCmd::Check { name, max_age } => check(ctx, &name, max_age),
    }
}

fn run_job(ctx: &Ctx, args: JobRunArgs) -> Outcome {
    // Judged before the store opens: bad input creates and records nothing.
    let schedule = match (&args.every, &args.cron) {
        (Some(every), _) => Schedule::parse_every(every)?,
        (None, Some(expr)) => Schedule::cron(expr, &args.tz)?,
        (None, None) => {
            return Err(Failure::Usage("cairn job run needs --every DUR or --cron 'EXPR'".into()))
        }
    };
    let catch_up: cairn::CatchUp = args.catch_up.parse()?;
    command_of(&args.command)?;
    let store = ctx.open()?;
    let job = store
        .job(&args.name, schedule)?
        .catch_up(catch_up)
        .max_catch_up(args.max_catch_up)
        .no_retry(args.no_retry)
        .keep(args.keep);

    let mut failure = None;
    let outcome = job.run(|slot| {
        let started = command_of(&args.command).and_then(|mut command| {
            command
                .env("CAIRN_JOB", &args.name)
                .env("CAIRN_SLOT", slot.start_rfc3339())
                .env("CAIRN_SLOT_END", slot.end_rfc3339())
                .env("CAIRN_RUN", format!("job:{}:{}", args.name, slot.start_rfc3339()));
            Running::start_with(command, true)
        });
        match started.and_then(Running::wait_with_tail) {
            Ok((status, tail)) => JobEnd { status, stderr_tail: tail.as_deref().and_then(last_lines) },
            Err(e) => {
                let end = JobEnd { status: i32::from(e.code()), stderr_tail: Some(e.to_string()) };
                failure = Some(e);
                end
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let (reason, slot) = match &outcome {
        JobOutcome::Ran(_) => return Ok(exit::of_command(outcome.status())),
        JobOutcome::Done { slot } => ("done", slot),
        JobOutcome::Running { slot, .. } => ("running", slot),
    };
    if ctx.json {
        let mut v = json!({"ran": false, "reason": reason, "slot": slot.start_rfc3339()});
        if let JobOutcome::Running { pid: Some(pid), .. } = outcome {
            v["pid"] = json!(pid);
        }
        Out::new().json(&v)?;
    } else {
        let by = match outcome {
            JobOutcome::Running { pid: Some(pid), .. } => format!(" by pid {pid}"),
            _ => String::new(),
        };
        let what =
            if reason == "done" { "is already done".to_owned() } else { format!("is running elsewhere{by}") };
        note(format_args!(
            "job '{}': slot {} {what}; not running the command",
            args.name,
            slot.start_rfc3339()
        ));
    }
    Ok(exit::OK)
}

/// The last lines of a command's stderr, as text; `None` if it wrote none.
fn last_lines(tail: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    (!kept.trim().is_empty()).then_some(kept)
}

fn run_json(r: &JobRunInfo) -> serde_json::Value {
    json!({
        "seq": r.seq,
        "slot": r.slot.start_rfc3339(),
        "slot_end": r.slot.end_rfc3339(),
        "started": format_time(r.started_ms),
        "finished": r.finished_ms.map(format_time),
        "outcome": r.outcome.as_str(),
        "status": r.status,
        "duration_ms": r.duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        "host": r.host,
        "pid": r.pid,
        "stderr_tail": r.stderr_tail,
    })
}

fn history(ctx: &Ctx, name: &str, limit: u32) -> Outcome {
    let store = ctx.open_for_reading()?;
    let runs = store.job_history(name, limit)?;
    let mut out = Out::new();
    for r in &runs {
        if ctx.json {
            out.json(&run_json(r))?;
        } else {
            let status = r.status.map_or("-".to_owned(), |s| s.to_string());
            let took = r.duration.map_or("-".to_owned(), format_duration);
            out.line(format_args!(
                "{}\t{}\t{}\tstatus {status}\t{took}\t{}\tpid {}\tstarted {}",
                r.seq,
                r.slot.start_rfc3339(),
                r.outcome.as_str(),
                r.host,
                r.pid,
                format_time(r.started_ms)
            ))?;
        }
    }
    Ok(yes_no(!runs.is_empty()))
}

fn list(ctx: &Ctx) -> Outcome {
    let store = ctx.open_for_reading()?;
    let mut out = Out::new();
    for j in store.jobs()? {
        if ctx.json {
            out.json(&info_json(&j))?;
        } else {
            let at = |r: &Option<JobRunInfo>| {
                r.as_ref().map_or("never".to_owned(), |r| format_time(r.finished_ms.unwrap_or(r.started_ms)))
            };
            out.line(format_args!(
                "{}\t{}\tlast success {}\tlast failure {}\tnext {}\t{}",
                j.name,
                j.schedule,
                at(&j.last_success),
                at(&j.last_failure),
                j.next_slot.map_or("-".to_owned(), |s| s.start_rfc3339()),
                if j.running { "running" } else { "idle" }
            ))?;
        }
    }
    Ok(exit::OK)
}

fn info_json(j: &JobInfo) -> serde_json::Value {
    json!({
        "name": j.name,
        "schedule": j.schedule,
        "last_success": j.last_success.as_ref().map(run_json),
        "last_failure": j.last_failure.as_ref().map(run_json),
        "next_slot": j.next_slot.map(|s| s.start_rfc3339()),
        "running": j.running,
        "succeeded": j.succeeded,
        "failed": j.failed,
    })
}

fn check(ctx: &Ctx, name: &str, max_age: Duration) -> Outcome {
    let store = ctx.open_for_reading()?;
    let health = store.job_check(name, max_age)?;
    if ctx.json {
        Out::new().json(&json!({
            "healthy": health.healthy,
            "last_success": health.last_success.as_ref().map(run_json),
            "last_failure": health.last_failure.as_ref().map(run_json),
            "message": health.message,
        }))?;
    } else {
        Out::new().line(&health.message)?;
    }
    Ok(yes_no(health.healthy))
}
