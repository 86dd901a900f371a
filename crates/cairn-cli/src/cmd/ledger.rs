//! `cairn ledger ...`

use std::io::IsTerminal;

use cairn::{ClaimHolder, ItemState, Ledger};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{stdin_ids, yes_no, Ctx};
use crate::cli::{LedgerCmd, State};
use crate::exit;
use crate::output::{Out, Outcome};

/// Ids per transaction for `mark -` and `enqueue -`: large enough that commits are a small
/// part of the cost, small enough that a kill loses little work (re-marking is harmless).
const MARK_BATCH: usize = 10_000;

/// Ids per lookup for `filter`: each chunk is written before the next is read.
const FILTER_CHUNK: usize = 10_000;

pub fn run(ctx: &Ctx, cmd: LedgerCmd) -> Outcome {
    let store = match cmd {
        LedgerCmd::Has { .. } | LedgerCmd::Filter | LedgerCmd::Count { .. } | LedgerCmd::List { .. } => {
            ctx.open_for_reading()?
        }
        _ => ctx.open()?,
    };
    let ledger = store.ledger(ctx.ns());
    let mut out = Out::new();
    let code = match cmd {
        LedgerCmd::Mark { ids } => {
            each_id(ids, |chunk| ledger.mark_done_many(chunk).map(drop), "marked")?;
            exit::OK
        }
        LedgerCmd::Enqueue { ids } => {
            each_id(ids, |chunk| ledger.enqueue(chunk).map(drop), "queued")?;
            exit::OK
        }
        LedgerCmd::Has { id } => yes_no(ledger.is_done(&id)?),
        LedgerCmd::Filter => {
            stdin_ids(FILTER_CHUNK, |chunk| {
                for id in ledger.filter_new(chunk)? {
                    out.line(id)?;
                }
                out.flush()
            })?;
            exit::OK
        }
        LedgerCmd::Claim { id, worker, lease, holder } => {
            let claim = ledger.holder(claim_holder(&holder)).claim(&id, &worker.worker, lease)?;
            if ctx.json {
                out.json(&json!({ "id": id, "claimed": claim.is_some(),
                    "lease_until_ms": claim.as_ref().map(|c| c.lease_until_millis()) }))?;
            }
            yes_no(claim.is_some())
        }
        LedgerCmd::Next { worker, lease, holder } => {
            match ledger.holder(claim_holder(&holder)).claim_next(&worker.worker, lease)? {
                Some(claim) => {
                    out.line(claim.id())?;
                    exit::OK
                }
                None => exit::NO,
            }
        }
        LedgerCmd::Done { id, worker } => match ledger.held_claim(&id, &worker.worker)? {
            Some(claim) => {
                ledger.complete(&claim)?;
                exit::OK
            }
            None => lost(&ledger, &id, &worker.worker)?,
        },
        LedgerCmd::Fail { id, worker, error, max_attempts } => {
            let ledger = ledger.max_attempts(max_attempts);
            let state = match worker {
                Some(w) => match ledger.held_claim(&id, &w)? {
                    Some(claim) => ledger.fail_claim(&claim, &error)?,
                    None => return lost(&ledger, &id, &w),
                },
                None => ledger.fail(&id, &error)?,
            };
            if ctx.json {
                out.json(&json!({ "id": id, "state": state.as_str() }))?;
            } else {
                out.line(state.as_str())?;
            }
            exit::OK
        }
        LedgerCmd::Count { state } => {
            let c = ledger.counts()?;
            let all = [
                (State::Pending, c.pending),
                (State::Claimed, c.claimed),
                (State::Done, c.done),
                (State::Failed, c.failed),
            ];
            match state {
                Some(s) => {
                    let n = all.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
                    out.line(n)?;
                }
                None if ctx.json => out.json(&json!({ "pending": c.pending, "claimed": c.claimed,
                    "done": c.done, "failed": c.failed }))?,
                None => {
                    for (s, n) in all {
                        out.line(format_args!("{}\t{n}", item_state(s).as_str()))?;
                    }
                }
            }
            exit::OK
        }
        LedgerCmd::List { state, limit } => {
            let mut remaining = limit.unwrap_or(usize::MAX);
            let mut after: Option<String> = None;
            while remaining > 0 {
                let page = ledger.list(state.map(item_state), after.as_deref(), remaining.min(1000))?;
                let Some(last) = page.last() else { break };
                after = Some(last.id.clone());
                remaining -= page.len();
                for item in page {
                    if ctx.json {
                        out.json(&json!({ "id": item.id, "state": item.state.as_str(),
                            "attempts": item.attempts, "error": item.error, "worker": item.worker,
                            "updated_at_ms": item.updated_at_millis }))?;
                    } else {
                        out.line(format_args!("{}\t{}", item.id, item.state.as_str()))?;
                    }
                }
            }
            exit::OK
        }
        LedgerCmd::Del { id } => yes_no(ledger.delete(&id)?),
        LedgerCmd::Clear => {
            out.line(ledger.clear()?)?;
            exit::OK
        }
    };
    out.flush()?;
    Ok(code)
}

/// The claim is not (or no longer) this worker's: say whose it is, exit 1.
fn lost(ledger: &Ledger<'_>, id: &str, worker: &str) -> Outcome {
    let why = match ledger.item(id)? {
        None => "it was never claimed".to_owned(),
        Some(item) => match (item.state, item.worker) {
            (ItemState::Claimed, Some(w)) => format!("worker {w} holds it now"),
            (ItemState::Done, _) => "it is already done".to_owned(),
            (state, _) => format!("it is {} now", state.as_str()),
        },
    };
    crate::output::note(format_args!("{worker} does not hold a claim on {id}: {why}"));
    Ok(exit::NO)
}

/// Ids given as arguments, or `-` for stdin in batches, each batch its own transaction. A
/// progress count goes to stderr when it is a terminal.
fn each_id(
    ids: Vec<String>,
    mut apply: impl FnMut(&[String]) -> cairn::Result<()>,
    verb: &str,
) -> Outcome<()> {
    if ids.iter().any(|i| i == "-") {
        if ids.len() > 1 {
            return Err(crate::output::Failure::Usage(
                "give ids as arguments or - for stdin, not both".into(),
            ));
        }
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {human_pos} ids {msg} ({per_sec})") {
                bar.set_style(style);
            }
            bar.set_message(verb.to_owned());
            bar
        });
        stdin_ids(MARK_BATCH, |chunk| {
            apply(&chunk)?;
            if let Some(bar) = &bar {
                bar.inc(chunk.len() as u64);
            }
            Ok(())
        })?;
        if let Some(bar) = bar {
            bar.finish();
        }
        Ok(())
    } else {
        Ok(apply(&ids)?)
    }
}

/// The CLI's own pid means nothing (it exits at once): a claim is tied to the process the
/// caller names, or to none.
fn claim_holder(args: &crate::cli::HolderArgs) -> ClaimHolder {
    args.pid.map_or(ClaimHolder::LeaseOnly, ClaimHolder::Process)
}

fn item_state(s: State) -> ItemState {
    match s {
        State::Pending => ItemState::Pending,
        State::Claimed => ItemState::Claimed,
        State::Done => ItemState::Done,
        State::Failed => ItemState::Failed,
    }
}
