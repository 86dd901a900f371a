//! `cairn run`: finish, inspect, reset, forget and prune durable runs; durable sleeps.

use std::time::{Duration, Instant};

use cairn::{RunInfo, RunState};
use serde_json::json;

use super::step::take;
use super::{yes_no, Ctx};
use crate::cli::RunCmd;
use crate::exit;
use crate::output::{note, Out, Outcome};

pub fn run(ctx: &Ctx, cmd: RunCmd) -> Outcome {
    let mut out = Out::new();
    let code = match cmd {
        RunCmd::Finish { hold } => {
            let store = ctx.open()?;
            let Some(held) = take(&store, &hold, None)? else { return Ok(hold.held_exit) };
            store.end_run(&held, true, None)?;
            exit::OK
        }
        RunCmd::Status { id } => {
            let store = ctx.open_for_reading()?;
            let Some(info) = store.runs().get(&id)? else {
                note(format_args!("there is no run '{id}'; cairn run list shows the runs"));
                return Ok(exit::NO);
            };
            let finished = info.state == RunState::Finished;
            if ctx.json {
                out.json(&run_json(&info))?;
            } else {
                out.line(run_line(&info))?;
                for step in &info.steps {
                    let took = cairn::format_duration(step.duration());
                    let error = shown(step.error.as_deref().unwrap_or("-"));
                    out.line(format_args!(
                        "  {}\t{}\t{}\t{took}\t{error}",
                        step.name,
                        step.state,
                        attempts(step.attempts)
                    ))?;
                    // A command step's head of output (its tail when it failed), indented.
                    for line in step.output.as_deref().unwrap_or("").lines() {
                        out.line(format_args!("      | {}", shown(line)))?;
                    }
                }
            }
            yes_no(finished)
        }
        RunCmd::List { state } => {
            let store = ctx.open_for_reading()?;
            for info in store.runs().list(state)? {
                if ctx.json {
                    out.json(&run_json(&info))?;
                } else {
                    out.line(run_line(&info))?;
                }
            }
            exit::OK
        }
        RunCmd::Reset { id, from } => {
            let store = ctx.open_existing("reset a run")?;
            out.line(store.runs().reset(&id, from.as_deref())?)?;
            exit::OK
        }
        RunCmd::Forget { id } => {
            let store = ctx.open_existing("forget a run")?;
            yes_no(store.runs().forget(&id)?)
        }
        RunCmd::Prune { finished_before } => {
            let store = ctx.open()?;
            out.line(store.runs().prune(finished_before)?)?;
            exit::OK
        }
        RunCmd::Sleep { name, duration, no_wait, hold } => {
            let store = ctx.open()?;
            let Some(held) = take(&store, &hold, Some(&name))? else { return Ok(hold.held_exit) };
            let wake = match store.replay_step::<i64>(&held, &name, "")? {
                Some(wake) => wake,
                None => {
                    let now = store.now_millis();
                    let wake = now.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
                    let seq = store.step_position(&held, &name)?;
                    store.record_step(&held, &name, seq, "", now, Ok(&wake))?;
                    wake
                }
            };
            let mut renewed = Instant::now();
            loop {
                let left = wake.saturating_sub(store.now_millis());
                if left <= 0 {
                    break exit::OK;
                }
                let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
                if no_wait {
                    note(format_args!(
                        "the sleep '{name}' is not over: {} left",
                        cairn::format_duration(left)
                    ));
                    break exit::NO;
                }
                if renewed.elapsed() >= held.lease() / 3 {
                    store.renew_run(&held)?;
                    renewed = Instant::now();
                }
                std::thread::sleep(left.min(Duration::from_secs(1)));
            }
        }
    };
    out.flush()?;
    Ok(code)
}

/// One line of `list` and the first of `status`: id, state, attempts, and why it failed.
fn run_line(info: &RunInfo) -> String {
    let error = info.error.as_deref().unwrap_or("-");
    format!("{}\t{}\t{}\t{error}", info.id, info.state, attempts(info.attempts))
}

/// "1 attempt", "2 attempts".
fn attempts(n: u64) -> String {
    if n == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{n} attempts")
    }
}

fn run_json(info: &RunInfo) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = info
        .steps
        .iter()
        .map(|s| {
            json!({ "name": s.name, "state": s.state.as_str(), "attempts": s.attempts, "error": s.error,
                "started_at_ms": s.started_at_millis, "finished_at_ms": s.finished_at_millis,
                "version": s.version, "output": s.output })
        })
        .collect();
    json!({ "id": info.id, "state": info.state.as_str(), "attempts": info.attempts, "error": info.error,
        "holder": info.holder, "lease_until_ms": info.lease_until_millis,
        "started_at_ms": info.started_at_millis, "updated_at_ms": info.updated_at_millis,
        "finished_at_ms": info.finished_at_millis, "steps": steps })
}

/// A line of a command's output (or an error) as the terminal should show it: control
/// characters, which could move the cursor or change colours under an operator's eyes, are
/// written as escapes (`\x1b`); tabs stay.
fn shown(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::shown;

    /// An escape sequence in a step's output is shown, not obeyed, by `cairn run status`.
    #[test]
    fn control_characters_of_an_output_are_shown_escaped() {
        assert_eq!(shown("plain\ttext"), "plain\ttext");
        assert_eq!(shown("\u{1b}[31mred\r"), "\\u{1b}[31mred\\r");
    }
}
