//! `cairn ledger ...`

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use cairn::{
    ClaimHolder, Item, ItemState, Ledger, LedgerCounts, LedgerPolicy, Pause, QueueItem, Store, Value,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{stdin_ids, yes_no, Ctx};
use crate::cli::{HolderArgs, LedgerCmd, NotBefore};
use crate::exit;
use crate::output::{Failure, Out, Outcome};

/// Ids per transaction for `mark -` and `enqueue -`: large enough that commits are a small
/// part of the cost, small enough that a kill loses little work (re-marking is harmless).
const MARK_BATCH: usize = 10_000;

/// Ids per lookup for `filter`: each chunk is written before the next is read.
const FILTER_CHUNK: usize = 10_000;

pub fn run(ctx: &Ctx, cmd: LedgerCmd) -> Outcome {
    let store = match cmd {
        LedgerCmd::Has { .. }
        | LedgerCmd::Filter
        | LedgerCmd::Count { .. }
        | LedgerCmd::List { .. }
        | LedgerCmd::Wait { .. }
        | LedgerCmd::Policy { max_attempts: None, retry_delay: None, reset: false } => {
            ctx.open_for_reading()?
        }
        _ => ctx.open()?,
    };
    let mut run = Run { store: &store, ledger: store.ledger(ctx.ns()), out: Out::new(), json: ctx.json };
    let code = match cmd {
        LedgerCmd::Mark { ids } => run.mark(ids),
        LedgerCmd::Enqueue { ids, not_before, priority, group } => {
            run.enqueue(ids, &ItemDefaults { not_before, priority, group })
        }
        LedgerCmd::Has { id } => run.has(&id),
        LedgerCmd::Filter => run.filter(),
        LedgerCmd::Claim { id, worker, lease, holder } => run.claim(&id, &worker.worker, lease, &holder),
        LedgerCmd::Next { worker, lease, wait, holder } => run.next(&worker.worker, lease, wait, &holder),
        LedgerCmd::Wait { timeout } => run.wait(timeout),
        LedgerCmd::Done { id, worker } => run.done(&id, &worker.worker),
        LedgerCmd::Fail { id, worker, error, max_attempts, retry_delay } => {
            run.fail(&id, worker.as_deref(), &error, max_attempts, retry_delay)
        }
        LedgerCmd::Policy { max_attempts, retry_delay, reset } => {
            run.policy(ctx.ns(), max_attempts, retry_delay, reset)
        }
        LedgerCmd::Retry { ids, all_failed } => run.retry(&ids, all_failed),
        LedgerCmd::Prune { done_before } => run.prune(done_before),
        LedgerCmd::Count { state } => run.count(state),
        LedgerCmd::List { state, limit } => run.list(state, limit),
        LedgerCmd::Del { id } => run.del(&id),
        LedgerCmd::Clear => run.clear(),
        LedgerCmd::Cancel { ids } => run.cancel(&ids),
        LedgerCmd::Snooze { id, worker, for_ } => run.snooze(&id, &worker.worker, for_),
        LedgerCmd::Pause { for_, until } => run.pause(for_, until),
        LedgerCmd::Resume => run.resume(),
    }?;
    run.out.flush()?;
    Ok(code)
}

/// What a ledger subcommand works with: the store, the namespace's ledger, stdout, and `--json`.
struct Run<'s> {
    store: &'s Store,
    ledger: Ledger<'s>,
    out: Out,
    json: bool,
}

impl Run<'_> {
    /// `mark`: record ids (arguments, or `-` for stdin) as done.
    fn mark(&mut self, ids: Vec<String>) -> Outcome {
        let ledger = self.ledger;
        each_id(ids, |chunk| ledger.mark_done_many(chunk).map(drop), "marked")?;
        Ok(exit::OK)
    }

    /// `enqueue`: queue ids (arguments, or `-` for stdin), or with --json the items on stdin.
    fn enqueue(&mut self, ids: Vec<String>, defaults: &ItemDefaults) -> Outcome {
        if self.json {
            return self.enqueue_json(&ids, defaults);
        }
        if ids.is_empty() {
            return Err(Failure::Usage(
                "give ids to queue, - to read them from stdin, or --json for JSON lines on stdin".into(),
            ));
        }
        let ledger = self.ledger;
        if defaults.is_plain() {
            each_id(ids, |chunk| ledger.enqueue(chunk).map(drop), "queued")?;
        } else {
            let items = |chunk: &[String]| {
                chunk.iter().map(|id| defaults.item(id.clone(), None, None, None)).collect::<Vec<_>>()
            };
            each_id(ids, |chunk| ledger.enqueue_items(items(chunk)).map(drop), "queued")?;
        }
        Ok(exit::OK)
    }

    /// `--json enqueue` (or `--json enqueue -`): queue the JSON-lines items on stdin; print how
    /// many were queued.
    fn enqueue_json(&mut self, ids: &[String], defaults: &ItemDefaults) -> Outcome {
        if !(ids.is_empty() || ids == ["-"]) {
            return Err(Failure::Usage(
                "with --json the items come on stdin, one JSON object per line; give no ids (or -)".into(),
            ));
        }
        let ledger = self.ledger;
        let queued = json_items(defaults, |chunk| ledger.enqueue_items(chunk))?;
        self.out.json(&json!({ "queued": queued }))?;
        Ok(exit::OK)
    }

    /// `has`: exit 0 if the id is done.
    fn has(&mut self, id: &str) -> Outcome {
        Ok(yes_no(self.ledger.is_done(id)?))
    }

    /// `filter`: ids on stdin that are not done (nor given up) to stdout, chunk by chunk.
    fn filter(&mut self) -> Outcome {
        let (ledger, out) = (self.ledger, &mut self.out);
        stdin_ids(FILTER_CHUNK, |chunk| {
            for id in ledger.filter_new(chunk)? {
                out.line(id)?;
            }
            out.flush()
        })?;
        Ok(exit::OK)
    }

    /// `claim`: claim one id for a worker; exit 0 if it now holds it.
    fn claim(&mut self, id: &str, worker: &str, lease: Duration, holder: &HolderArgs) -> Outcome {
        let claim = self.ledger.holder(claim_holder(holder)).claim(id, worker, lease)?;
        if self.json {
            self.out.json(&json!({ "id": id, "claimed": claim.is_some(),
                "lease_until_ms": claim.as_ref().map(|c| c.lease_until_millis()) }))?;
        }
        Ok(yes_no(claim.is_some()))
    }

    /// `next`: claim the next due item for a worker and print it; exit 1 if there is none.
    fn next(
        &mut self,
        worker: &str,
        lease: Duration,
        wait: Option<Duration>,
        holder: &HolderArgs,
    ) -> Outcome {
        let ledger = self.ledger.holder(claim_holder(holder));
        // SIGINT and SIGTERM keep their default action while it waits: the process ends at
        // once, holding nothing (a claim is made and printed in one step after the wait).
        let claim = match wait {
            Some(wait) => ledger.claim_next_wait(worker, lease, wait)?,
            None => ledger.claim_next(worker, lease)?,
        };
        let Some(claim) = claim else {
            return Ok(exit::NO);
        };
        if self.json {
            let data = claim.data::<Value>()?;
            self.out.json(&json!({ "id": claim.id(), "data": data.as_ref().map(value_json),
                "data_kind": data.as_ref().map(|d| d.kind().as_str()), "attempt": claim.attempt(),
                "lease_until_ms": claim.lease_until_millis() }))?;
        } else {
            self.out.line(claim.id())?;
        }
        Ok(exit::OK)
    }

    /// `wait`: block until the namespace has nothing queued or claimed; exit 1 at the timeout.
    fn wait(&mut self, timeout: Option<Duration>) -> Outcome {
        Ok(if self.ledger.wait_drained(timeout)? { exit::OK } else { exit::NO })
    }

    /// `done`: complete the worker's claim on an id; exit 1 if the claim was lost.
    fn done(&mut self, id: &str, worker: &str) -> Outcome {
        match self.ledger.held_claim(id, worker)? {
            Some(claim) => {
                self.ledger.complete(&claim)?;
                Ok(exit::OK)
            }
            None => lost(&self.ledger, id, worker),
        }
    }

    /// `fail`: record a failure of an id (of the worker's claim, if one is named); print the
    /// state it is in now.
    fn fail(
        &mut self,
        id: &str,
        worker: Option<&str>,
        error: &str,
        max_attempts: Option<u32>,
        retry_delay: Option<Duration>,
    ) -> Outcome {
        // The namespace's policy applies, unless the command line overrides it.
        let mut ledger = self.ledger;
        if let Some(n) = max_attempts {
            ledger = ledger.max_attempts(n);
        }
        if let Some(d) = retry_delay {
            ledger = ledger.retry_delay(d);
        }
        let state = match worker {
            Some(w) => match ledger.held_claim(id, w)? {
                Some(claim) => ledger.fail_claim(&claim, error)?,
                None => return lost(&ledger, id, w),
            },
            None => ledger.fail(id, error)?,
        };
        if self.json {
            let due = ledger.item(id)?.and_then(|i| i.due_millis);
            self.out.json(&json!({ "id": id, "state": state.as_str(), "due_ms": due }))?;
        } else {
            self.out.line(state.as_str())?;
        }
        Ok(exit::OK)
    }

    /// `policy`: set what is given (in one transaction with reading the rest, so that two
    /// settings made at once both stay), then print the policy.
    fn policy(
        &mut self,
        ns: &str,
        max_attempts: Option<u32>,
        retry_delay: Option<Duration>,
        reset: bool,
    ) -> Outcome {
        let policy = if reset || max_attempts.is_some() || retry_delay.is_some() {
            self.store.transaction(|tx| {
                let ledger = tx.ledger(ns);
                let mut policy = if reset { LedgerPolicy::default() } else { ledger.policy()? };
                policy.max_attempts = max_attempts.or(policy.max_attempts);
                policy.retry_delay = retry_delay.or(policy.retry_delay);
                ledger.set_policy(policy)?;
                Ok::<_, cairn::Error>(policy)
            })?
        } else {
            self.ledger.policy()?
        };
        let (max, delay) = (policy.max_attempts_or_default(), policy.retry_delay_or_default());
        if self.json {
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            self.out.json(&json!({ "max_attempts": max, "retry_delay_ms": ms(delay),
                "stored": { "max_attempts": policy.max_attempts, "retry_delay_ms": policy.retry_delay.map(ms) } }))?;
        } else {
            let set = |stored: bool| if stored { "set" } else { "default" };
            self.out.line(format_args!("max_attempts\t{max}\t{}", set(policy.max_attempts.is_some())))?;
            self.out.line(format_args!(
                "retry_delay\t{}\t{}",
                cairn::format_duration(delay),
                set(policy.retry_delay.is_some())
            ))?;
        }
        Ok(exit::OK)
    }

    /// `retry`: queue given-up items again; print how many.
    fn retry(&mut self, ids: &[String], all_failed: bool) -> Outcome {
        let n = if all_failed { self.ledger.retry_all_failed()? } else { self.ledger.retry(ids)? };
        self.out.line(n)?;
        Ok(exit::OK)
    }

    /// `prune`: delete items done before a while ago; print how many.
    fn prune(&mut self, done_before: Duration) -> Outcome {
        self.out.line(self.ledger.prune_done(done_before)?)?;
        Ok(exit::OK)
    }

    /// `count`: print how many items stand in each state, or in one.
    fn count(&mut self, state: Option<ItemState>) -> Outcome {
        let counts = self.ledger.counts()?;
        match state {
            Some(s) => {
                let n = by_state(&counts).iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
                self.out.line(n)?;
            }
            None if self.json => self.out.json(&counts_json(&counts))?,
            None => {
                for (s, n) in by_state(&counts) {
                    self.out.line(format_args!("{s}\t{n}"))?;
                }
                if let Some(p) = counts.paused {
                    self.out.line(format_args!("paused\t{}", paused_text(p)))?;
                }
            }
        }
        Ok(exit::OK)
    }

    /// `list`: print items in id order, a page of the ledger at a time.
    fn list(&mut self, state: Option<ItemState>, limit: Option<usize>) -> Outcome {
        let mut remaining = limit.unwrap_or(usize::MAX);
        let mut after: Option<String> = None;
        while remaining > 0 {
            let page = self.ledger.list(state, after.as_deref(), remaining.min(1000))?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            remaining -= page.len();
            for item in page {
                self.list_item(item)?;
            }
        }
        Ok(exit::OK)
    }

    /// One line of `list`: id, state and due time, or with --json the whole item.
    fn list_item(&mut self, item: Item) -> Outcome<()> {
        let due = item.due_millis.filter(|_| item.state == ItemState::Pending);
        if self.json {
            let data = match (item.data, item.data_kind) {
                (Some(bytes), Some(kind)) => Some(value_json(&Value::from_kind(kind, bytes)?)),
                _ => None,
            };
            self.out.json(&json!({ "id": item.id, "state": item.state.as_str(),
                "attempts": item.attempts, "error": item.error, "worker": item.worker,
                "due_ms": due, "due": due.map(cairn::format_time), "data": data,
                "updated_at_ms": item.updated_at_millis }))
        } else {
            let due = due.map_or_else(|| "-".to_owned(), cairn::format_time);
            self.out.line(format_args!("{}\t{}\t{due}", item.id, item.state.as_str()))
        }
    }

    /// `del`: forget an id; exit 1 if it was unknown.
    fn del(&mut self, id: &str) -> Outcome {
        Ok(yes_no(self.ledger.delete(id)?))
    }

    /// `cancel`: cancel items, all or none; print how many this call cancelled.
    fn cancel(&mut self, ids: &[String]) -> Outcome {
        let n = self.ledger.cancel_many(ids)?;
        if self.json {
            self.out.json(&json!({ "cancelled": n }))?;
        } else {
            self.out.line(n)?;
        }
        Ok(exit::OK)
    }

    /// `snooze`: the worker's claim back to the queue, due later; exit 1 if it was lost.
    fn snooze(&mut self, id: &str, worker: &str, delay: Duration) -> Outcome {
        match self.ledger.held_claim(id, worker)? {
            Some(claim) => {
                self.ledger.snooze(&claim, delay)?;
                if self.json {
                    let due = self.ledger.item(id)?.and_then(|i| i.due_millis);
                    self.out.json(&json!({ "id": id, "due_ms": due, "due": due.map(cairn::format_time) }))?;
                }
                Ok(exit::OK)
            }
            None => lost(&self.ledger, id, worker),
        }
    }

    /// `pause`: until resumed, for a while, or until a time.
    fn pause(&mut self, for_: Option<Duration>, until: Option<i64>) -> Outcome {
        match for_ {
            Some(d) => self.ledger.pause_for(d)?,
            None => self.ledger.pause(until)?,
        }
        if self.json {
            self.out.json(&paused_json(self.ledger.paused()?))?;
        }
        Ok(exit::OK)
    }

    /// `resume`: end a pause (exit 0 whether or not there was one).
    fn resume(&mut self) -> Outcome {
        let was = self.ledger.resume()?;
        if self.json {
            self.out.json(&json!({ "was_paused": was }))?;
        }
        Ok(exit::OK)
    }

    /// `clear`: delete every item of the namespace; print how many.
    fn clear(&mut self) -> Outcome {
        self.out.line(self.ledger.clear()?)?;
        Ok(exit::OK)
    }
}

/// How many items stand in each state, in the order of [`ItemState::ALL`].
fn by_state(c: &LedgerCounts) -> [(ItemState, u64); 5] {
    [
        (ItemState::Pending, c.pending),
        (ItemState::Claimed, c.claimed),
        (ItemState::Done, c.done),
        (ItemState::Failed, c.failed),
        (ItemState::Cancelled, c.cancelled),
    ]
}

/// The counts as one JSON object, `{"pending": n, ..., "paused": false}`, as `ledger count`
/// and `stats` print it (with, while paused, `paused_until_ms` and `paused_until`: null until
/// resumed).
pub fn counts_json(c: &LedgerCounts) -> serde_json::Value {
    let mut counts: serde_json::Map<String, serde_json::Value> =
        by_state(c).into_iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect();
    if let serde_json::Value::Object(p) = paused_json(c.paused) {
        counts.extend(p);
    }
    serde_json::Value::Object(counts)
}

/// `{"paused": bool}`, with until when (null: until resumed) while paused.
fn paused_json(p: Option<Pause>) -> serde_json::Value {
    match p {
        None => json!({ "paused": false }),
        Some(p) => {
            let until = p.until_millis();
            json!({ "paused": true, "paused_until_ms": until, "paused_until": until.map(cairn::format_time) })
        }
    }
}

/// A pause as `count` and `stats` print it: its end (RFC 3339), or `until-resumed`.
pub fn paused_text(p: Pause) -> String {
    p.until_millis().map_or_else(|| "until-resumed".to_owned(), cairn::format_time)
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

/// What `enqueue`'s options give every item (a JSON line may say otherwise for its own).
struct ItemDefaults {
    not_before: Option<NotBefore>,
    priority: Option<i64>,
    group: Option<String>,
}

impl ItemDefaults {
    fn is_plain(&self) -> bool {
        self.not_before.is_none() && self.priority.is_none() && self.group.is_none()
    }

    /// The item `id`, with what its line gives in place of the defaults.
    fn item(
        &self,
        id: String,
        not_before: Option<NotBefore>,
        priority: Option<i64>,
        group: Option<String>,
    ) -> QueueItem {
        let item = match not_before.or(self.not_before) {
            None => QueueItem::new(id),
            Some(NotBefore::After(d)) => QueueItem::new(id).delay(d),
            Some(NotBefore::At(ms)) => QueueItem::new(id).not_before_millis(ms),
        };
        let item = match priority.or(self.priority) {
            Some(p) => item.priority(p),
            None => item,
        };
        match group.or_else(|| self.group.clone()) {
            Some(g) => item.group(g),
            None => item,
        }
    }
}

/// Items as JSON lines on stdin (`{"id": .., "data": .., "not_before": .., "priority": ..,
/// "group": ..}`), handed to
/// `apply` in chunks of [`MARK_BATCH`], each chunk checked whole before it is applied. Returns
/// how many `apply` says it queued.
fn json_items(
    defaults: &ItemDefaults,
    mut apply: impl FnMut(Vec<QueueItem>) -> cairn::Result<u64>,
) -> Outcome<u64> {
    let mut chunk = Vec::with_capacity(MARK_BATCH);
    let mut queued = 0;
    // Items of chunks already applied: a bad line after them must say they were queued.
    let mut applied = 0usize;
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let bad = |why: String| {
            let before = if applied == 0 {
                String::new()
            } else {
                format!(
                    "; the {applied} items before it were queued already (in batches of {MARK_BATCH}); ids \
                     already queued are skipped, so fix the line and run the whole input again"
                )
            };
            Failure::Usage(format!("stdin line {}: {why}{before}", i + 1))
        };
        let line = line.map_err(|e| bad(format!("not UTF-8 text ({e})")))?;
        if line.trim().is_empty() {
            continue;
        }
        chunk.push(json_item(&line, defaults).map_err(bad)?);
        if chunk.len() == MARK_BATCH {
            queued += apply(std::mem::replace(&mut chunk, Vec::with_capacity(MARK_BATCH)))?;
            applied += MARK_BATCH;
        }
    }
    if !chunk.is_empty() {
        queued += apply(chunk)?;
    }
    Ok(queued)
}

fn json_item(line: &str, defaults: &ItemDefaults) -> Result<QueueItem, String> {
    let example = r#"e.g. {"id": "a1", "data": {"url": "https://example.com"}}"#;
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON ({e}); {example}"))?;
    let serde_json::Value::Object(mut fields) = v else {
        return Err(format!("not a JSON object; {example}"));
    };
    const FIELDS: [&str; 5] = ["id", "data", "not_before", "priority", "group"];
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {unknown:?}: an item has id, data, not_before, priority and group"
        ));
    }
    let id = match fields.remove("id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => id,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => return Err("\"id\" must be a non-empty string".into()),
        None => return Err(format!("no \"id\"; {example}")),
    };
    let not_before = match fields.remove("not_before") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(crate::cli::not_before(&s)?),
        Some(_) => return Err("\"not_before\" must be a string: a delay (10m) or an RFC 3339 time".into()),
    };
    let priority = match fields.remove("priority") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) if n.is_i64() => n.as_i64(),
        Some(_) => return Err("\"priority\" must be an integer, from -1000 to 1000".into()),
    };
    let group = match fields.remove("group") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(g)) if !g.is_empty() => Some(g),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err("\"group\" must be a non-empty string".into()),
    };
    let item = defaults.item(id, not_before, priority, group);
    match fields.remove("data") {
        None | Some(serde_json::Value::Null) => Ok(item),
        // A JSON string is text to every surface (Python gets a str); anything else stays JSON.
        Some(serde_json::Value::String(text)) => item.data(text).map_err(|e| e.to_string()),
        Some(other) => item.data(cairn::Json(other)).map_err(|e| e.to_string()),
    }
}

/// A value as JSON for printing: JSON as itself, text as a string, numbers as numbers, bytes
/// as an array of numbers (the `data_kind` beside it says which). JSON has no NaN or
/// infinity: a float that is not finite prints as `null` (its `data_kind` says `float`).
fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Text(t) => serde_json::Value::String(t.clone()),
        Value::Int(i) => json!(i),
        Value::Float(f) if !f.is_finite() => serde_json::Value::Null,
        Value::Float(f) => json!(f),
        Value::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.clone()))
        }
        Value::Bytes(b) => json!(b),
    }
}

/// The CLI's own pid means nothing (it exits at once): a claim is tied to the process the
/// caller names, or to none.
fn claim_holder(args: &HolderArgs) -> ClaimHolder {
    args.pid.map_or(ClaimHolder::LeaseOnly, ClaimHolder::Process)
}
