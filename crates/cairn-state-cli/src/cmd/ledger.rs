//! `cairn ledger ...`

use std::io::IsTerminal;

use std::io::BufRead;

use cairn::{ClaimHolder, ItemState, Ledger, QueueItem, Value};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{stdin_ids, yes_no, Ctx};
use crate::cli::{LedgerCmd, NotBefore, State};
use crate::exit;
use crate::output::{Failure, Out, Outcome};

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
        LedgerCmd::Enqueue { ids, not_before } if ctx.json => {
            if !ids.is_empty() {
                return Err(Failure::Usage(
                    "with --json the items come on stdin, one JSON object per line; give no ids".into(),
                ));
            }
            let queued = json_items(not_before, |chunk| ledger.enqueue_items(chunk))?;
            out.json(&json!({ "queued": queued }))?;
            exit::OK
        }
        LedgerCmd::Enqueue { ids, .. } if ids.is_empty() => {
            return Err(Failure::Usage(
                "give ids to queue, - to read them from stdin, or --json for JSON lines on stdin".into(),
            ))
        }
        LedgerCmd::Enqueue { ids, not_before: None } => {
            each_id(ids, |chunk| ledger.enqueue(chunk).map(drop), "queued")?;
            exit::OK
        }
        LedgerCmd::Enqueue { ids, not_before: Some(when) } => {
            let items = |chunk: &[String]| {
                chunk.iter().map(|id| queue_item(id.clone(), Some(when))).collect::<Vec<_>>()
            };
            each_id(ids, |chunk| ledger.enqueue_items(items(chunk)).map(drop), "queued")?;
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
                Some(claim) if ctx.json => {
                    let data = claim.data::<Value>()?;
                    out.json(&json!({ "id": claim.id(), "data": data.as_ref().map(value_json),
                        "data_kind": data.as_ref().map(|d| d.kind().as_str()), "attempt": claim.attempt(),
                        "lease_until_ms": claim.lease_until_millis() }))?;
                    exit::OK
                }
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
        LedgerCmd::Fail { id, worker, error, max_attempts, retry_delay } => {
            let ledger = ledger.max_attempts(max_attempts).retry_delay(retry_delay);
            let state = match worker {
                Some(w) => match ledger.held_claim(&id, &w)? {
                    Some(claim) => ledger.fail_claim(&claim, &error)?,
                    None => return lost(&ledger, &id, &w),
                },
                None => ledger.fail(&id, &error)?,
            };
            if ctx.json {
                let due = ledger.item(&id)?.and_then(|i| i.due_millis);
                out.json(&json!({ "id": id, "state": state.as_str(), "due_ms": due }))?;
            } else {
                out.line(state.as_str())?;
            }
            exit::OK
        }
        LedgerCmd::Retry { ids, all_failed } => {
            let n = if all_failed { ledger.retry_all_failed()? } else { ledger.retry(&ids)? };
            out.line(n)?;
            exit::OK
        }
        LedgerCmd::Prune { done_before } => {
            out.line(ledger.prune_done(done_before)?)?;
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
                    let due = item.due_millis.filter(|_| item.state == ItemState::Pending);
                    if ctx.json {
                        let data = match (item.data, item.data_kind) {
                            (Some(bytes), Some(kind)) => Some(value_json(&Value::from_kind(kind, bytes)?)),
                            _ => None,
                        };
                        out.json(&json!({ "id": item.id, "state": item.state.as_str(),
                            "attempts": item.attempts, "error": item.error, "worker": item.worker,
                            "due_ms": due, "due": due.map(cairn::format_time), "data": data,
                            "updated_at_ms": item.updated_at_millis }))?;
                    } else {
                        let due = due.map_or_else(|| "-".to_owned(), cairn::format_time);
                        out.line(format_args!("{}\t{}\t{due}", item.id, item.state.as_str()))?;
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

/// Items as JSON lines on stdin (`{"id": .., "data": .., "not_before": ..}`), handed to
/// `apply` in chunks of [`MARK_BATCH`], each chunk checked whole before it is applied. Returns
/// how many `apply` says it queued.
fn json_items(
    default_not_before: Option<NotBefore>,
    mut apply: impl FnMut(Vec<QueueItem>) -> cairn::Result<u64>,
) -> Outcome<u64> {
    let mut chunk = Vec::with_capacity(MARK_BATCH);
    let mut queued = 0;
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let bad = |why: String| Failure::Usage(format!("stdin line {}: {why}", i + 1));
        let line = line.map_err(|e| bad(format!("not UTF-8 text ({e})")))?;
        if line.trim().is_empty() {
            continue;
        }
        chunk.push(json_item(&line, default_not_before).map_err(bad)?);
        if chunk.len() == MARK_BATCH {
            queued += apply(std::mem::replace(&mut chunk, Vec::with_capacity(MARK_BATCH)))?;
        }
    }
    if !chunk.is_empty() {
        queued += apply(chunk)?;
    }
    Ok(queued)
}

fn json_item(line: &str, default_not_before: Option<NotBefore>) -> Result<QueueItem, String> {
    let example = r#"e.g. {"id": "a1", "data": {"url": "https://example.com"}}"#;
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON ({e}); {example}"))?;
    let serde_json::Value::Object(mut fields) = v else {
        return Err(format!("not a JSON object; {example}"));
    };
    if let Some(unknown) = fields.keys().find(|k| !["id", "data", "not_before"].contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}: an item has id, data and not_before"));
    }
    let id = match fields.remove("id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => id,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => return Err("\"id\" must be a non-empty string".into()),
        None => return Err(format!("no \"id\"; {example}")),
    };
    let not_before = match fields.remove("not_before") {
        None | Some(serde_json::Value::Null) => default_not_before,
        Some(serde_json::Value::String(s)) => Some(crate::cli::not_before(&s)?),
        Some(_) => return Err("\"not_before\" must be a string: a delay (10m) or an RFC 3339 time".into()),
    };
    let item = queue_item(id, not_before);
    match fields.remove("data") {
        None | Some(serde_json::Value::Null) => Ok(item),
        // A JSON string is text to every surface (Python gets a str); anything else stays JSON.
        Some(serde_json::Value::String(text)) => item.data(text).map_err(|e| e.to_string()),
        Some(other) => item.data(cairn::Json(other)).map_err(|e| e.to_string()),
    }
}

fn queue_item(id: String, not_before: Option<NotBefore>) -> QueueItem {
    match not_before {
        None => QueueItem::new(id),
        Some(NotBefore::After(d)) => QueueItem::new(id).delay(d),
        Some(NotBefore::At(ms)) => QueueItem::new(id).not_before_millis(ms),
    }
}

/// A value as JSON for printing: JSON as itself, text as a string, numbers as numbers, bytes
/// as an array of numbers (the `data_kind` beside it says which).
fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Text(t) => serde_json::Value::String(t.clone()),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.clone()))
        }
        Value::Bytes(b) => json!(b),
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
