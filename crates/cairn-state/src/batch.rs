//! Batches: many operations written as JSON lines, applied in one transaction, all or nothing.

use std::io::BufRead;
use std::time::Duration;

use serde::Deserialize;

use crate::codec::Value;
use crate::duration::{parse_duration, parse_time};
use crate::error::{Error, Result};
use crate::store::Store;

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields are described in the module's table
pub enum BatchOp {
    Set {
        ns: Option<String>,
        key: String,
        value: serde_json::Value,
        ttl: Option<String>,
    },
    Add {
        ns: Option<String>,
        key: String,
        value: serde_json::Value,
        ttl: Option<String>,
    },
    Del {
        ns: Option<String>,
        key: String,
    },
    Incr {
        ns: Option<String>,
        key: String,
        by: Option<i64>,
        ttl: Option<String>,
    },
    Touch {
        ns: Option<String>,
        key: String,
        ttl: Option<String>,
    },
    Mark {
        ns: Option<String>,
        id: String,
        result: Option<serde_json::Value>,
    },
    Fail {
        ns: Option<String>,
        id: String,
        error: String,
    },
    Enqueue {
        ns: Option<String>,
        id: String,
        data: Option<serde_json::Value>,
        delay: Option<String>,
        priority: Option<i64>,
        group: Option<String>,
    },
    #[serde(alias = "forget")]
    LedgerDel {
        ns: Option<String>,
        id: String,
    },
    Cancel {
        ns: Option<String>,
        id: String,
    },
    Snooze {
        ns: Option<String>,
        id: String,
        worker: String,
        #[serde(rename = "for")]
        for_: String,
    },
    Pause {
        ns: Option<String>,
        #[serde(rename = "for")]
        for_: Option<String>,
        until: Option<String>,
    },
    Resume {
        ns: Option<String>,
    },
    Checkpoint {
        job: String,
        value: serde_json::Value,
    },
    CheckpointDel {
        job: String,
    },
}

/// A parsed batch: operations with their line numbers, ready to apply with
/// [`Store::apply_batch`], all or nothing.
///
/// This is how a shell script updates several structures atomically (`cairn batch`): it
/// writes one JSON object per line, and cairn parses every line before it begins, so a
/// malformed line, or the writer dying mid-stream, applies nothing.
///
/// | op | fields (`ns` defaults to the batch's namespace) |
/// |----|----|
/// | `set`, `add` | `key`, `value`, optional `ttl` (`"1h"`) |
/// | `del` | `key` |
/// | `incr` | `key`, optional `by` (default 1), optional `ttl` |
/// | `touch` | `key`, optional `ttl` (none: never expires) |
/// | `mark` | `id`, optional `result` |
/// | `fail` | `id`, `error` |
/// | `enqueue` | `id`, optional `data`, `delay` (`"10m"`), `priority` (-1000 to 1000), `group` (see [`QueueItem`](crate::QueueItem)) |
/// | `ledger_del` | `id` (`forget`, its older name, is accepted too) |
/// | `cancel` | `id` (see [`Ledger::cancel`](crate::Ledger::cancel)) |
/// | `snooze` | `id`, `worker` (whose claim), `for` (`"10m"`) |
/// | `pause` | optional `for` (`"1h"`) or `until` (RFC 3339); neither: until resumed |
/// | `resume` | |
/// | `checkpoint` | `job`, `value` |
/// | `checkpoint_del` | `job` |
///
/// A `value` or `result` that is a JSON string is stored as text; any other JSON value is
/// stored as JSON (see [`ValueKind`](crate::ValueKind)).
///
#[derive(Debug, Clone, Default)]
pub struct Batch {
    default_ns: String,
    ops: Vec<(u64, BatchOp, Option<Duration>)>,
}

impl Batch {
    /// Read JSON lines until the end of `input`. Blank lines are skipped. Any malformed line
    /// (bad JSON, an unknown op or field, an invalid duration) fails the whole batch with its
    /// line number.
    ///
    /// ```
    /// use cairn::Batch;
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// let input = r#"{"op":"set","key":"k","value":"v","ttl":"1h"}
    /// {"op":"mark","ns":"jobs","id":"42"}
    /// {"op":"checkpoint","job":"export","value":"2024-06-01"}"#;
    /// let batch = Batch::parse(input.as_bytes(), "default")?;
    /// assert_eq!(store.apply_batch(&batch)?, 3);
    /// assert!(store.ledger("jobs").is_done("42")?);
    ///
    /// let bad = Batch::parse(r#"{"op":"set","key":"k","value":"v"}
    /// {"op":"sett","key":"k"}"#.as_bytes(), "default");
    /// assert!(bad.unwrap_err().to_string().contains("line 2"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn parse(input: impl BufRead, default_ns: &str) -> Result<Batch> {
        let mut ops = Vec::new();
        for (i, line) in input.split(b'\n').enumerate() {
            let n = i as u64 + 1;
            let line = line.map_err(|e| Error::invalid(format!("batch: reading line {n}: {e}")))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let at = |msg: String| Error::invalid(format!("batch line {n}: {msg}; nothing was applied"));
            let op: BatchOp = serde_json::from_slice(&line).map_err(|e| at(e.to_string()))?;
            let ttl = match &op {
                BatchOp::Set { ttl, .. }
                | BatchOp::Add { ttl, .. }
                | BatchOp::Incr { ttl, .. }
                | BatchOp::Touch { ttl, .. }
                | BatchOp::Enqueue { delay: ttl, .. } => {
                    ttl.as_deref().map(parse_duration).transpose().map_err(|e| at(e.to_string()))?
                }
                BatchOp::Snooze { for_, .. } | BatchOp::Pause { for_: Some(for_), until: None, .. } => {
                    Some(parse_duration(for_).map_err(|e| at(e.to_string()))?)
                }
                BatchOp::Pause { for_: Some(_), until: Some(_), .. } => {
                    return Err(at("a pause has `for` or `until`, not both".into()));
                }
                BatchOp::Pause { until: Some(until), .. } => {
                    parse_time(until).map_err(|e| at(e.to_string()))?;
                    None
                }
                _ => None,
            };
            ops.push((n, op, ttl));
        }
        Ok(Batch { default_ns: default_ns.to_owned(), ops })
    }

    /// How many operations the batch holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True for a batch without operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations in order, each with its line number.
    ///
    /// ```
    /// use cairn::{Batch, BatchOp};
    ///
    /// let batch = Batch::parse("\n{\"op\":\"del\",\"key\":\"k\"}".as_bytes(), "default")?;
    /// let (line, op) = batch.ops().next().unwrap();
    /// assert_eq!(line, 2);
    /// assert!(matches!(op, BatchOp::Del { key, .. } if key == "k"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn ops(&self) -> impl Iterator<Item = (u64, &BatchOp)> {
        self.ops.iter().map(|(line, op, _)| (*line, op))
    }

    /// The namespace of operations that name none.
    pub fn default_ns(&self) -> &str {
        &self.default_ns
    }
}

/// A JSON string is stored as text; any other JSON value as JSON.
fn value_of(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Json(other.to_string()),
    }
}

/// The most ids of a run of marks sent in one statement.
const MARKS_AT_ONCE: usize = 10_000;

impl Store {
    /// Apply every operation of `batch` in one IMMEDIATE transaction: all of them or, on any
    /// error (reported with its line number), none. Returns how many were applied.
    ///
    /// Consecutive marks without a result in one namespace are applied together, as
    /// [`Ledger::mark_done_many`](crate::Ledger::mark_done_many) does (they commute: each only
    /// makes its item done), so a batch of a million marks is a few statements, not a
    /// million.
    pub fn apply_batch(&self, batch: &Batch) -> Result<usize> {
        let ns_of = |ns: &Option<String>| ns.as_deref().unwrap_or(&batch.default_ns).to_owned();
        self.transaction(|tx| {
            let mut i = 0;
            while i < batch.ops.len() {
                let (line, op, ttl) = &batch.ops[i];
                if let BatchOp::Mark { ns: n, result: None, .. } = op {
                    let ns = ns_of(n);
                    let mut ids = Vec::new();
                    while let Some((_, BatchOp::Mark { ns: n, id, result: None }, _)) = batch.ops.get(i) {
                        if ids.len() == MARKS_AT_ONCE || ns_of(n) != ns {
                            break;
                        }
                        ids.push(id.as_str());
                        i += 1;
                    }
                    let ledger = tx.ledger(&ns);
                    if let Err(e) = ledger.mark_done_many(&ids) {
                        // Refused before anything was written: the marks one by one say which
                        // line is at fault.
                        for (line, op, _) in &batch.ops[i - ids.len()..i] {
                            if let BatchOp::Mark { id, .. } = op {
                                ledger.mark_done(id).map_err(|e| at_line(*line, e))?;
                            }
                        }
                        return Err(at_line(*line, e));
                    }
                    continue;
                }
                i += 1;
                let applied = match op {
                    BatchOp::Set { ns: n, key, value, .. } => {
                        tx.cache(&ns_of(n)).set(key, value_of(value), *ttl)
                    }
                    BatchOp::Add { ns: n, key, value, .. } => {
                        tx.cache(&ns_of(n)).add(key, value_of(value), *ttl).map(drop)
                    }
                    BatchOp::Del { ns: n, key } => tx.cache(&ns_of(n)).delete(key).map(drop),
                    BatchOp::Incr { ns: n, key, by, .. } => {
                        tx.cache(&ns_of(n)).incr(key, by.unwrap_or(1), *ttl).map(drop)
                    }
                    BatchOp::Touch { ns: n, key, .. } => tx.cache(&ns_of(n)).touch(key, *ttl).map(drop),
                    BatchOp::Mark { ns: n, id, result } => match result {
                        Some(r) => tx.ledger(&ns_of(n)).mark_done_with(id, value_of(r)).map(drop),
                        None => tx.ledger(&ns_of(n)).mark_done(id).map(drop),
                    },
                    BatchOp::Fail { ns: n, id, error } => tx.ledger(&ns_of(n)).fail(id, error).map(drop),
                    BatchOp::Enqueue { ns: n, id, data, priority, group, .. } => {
                        let mut item = crate::QueueItem::new(id.as_str()).priority(priority.unwrap_or(0));
                        if let Some(delay) = ttl {
                            item = item.delay(*delay);
                        }
                        if let Some(group) = group {
                            item = item.group(group.as_str());
                        }
                        match data {
                            Some(d) => item.data(value_of(d)),
                            None => Ok(item),
                        }
                        .and_then(|item| tx.ledger(&ns_of(n)).enqueue_items([item]))
                        .map(drop)
                    }
                    BatchOp::LedgerDel { ns: n, id } => tx.ledger(&ns_of(n)).delete(id).map(drop),
                    BatchOp::Cancel { ns: n, id } => tx.ledger(&ns_of(n)).cancel(id).map(drop),
                    BatchOp::Snooze { ns: n, id, worker, .. } => {
                        let ns = ns_of(n);
                        let ledger = tx.ledger(&ns);
                        match ledger.held_claim(id, worker)? {
                            Some(claim) => ledger.snooze(&claim, ttl.unwrap_or_default()),
                            None => Err(Error::LeaseLost {
                                what: "claim",
                                name: id.clone(),
                                holder: worker.clone(),
                            }),
                        }
                    }
                    BatchOp::Pause { ns: n, for_: Some(_), .. } => {
                        tx.ledger(&ns_of(n)).pause_for(ttl.unwrap_or_default())
                    }
                    BatchOp::Pause { ns: n, until, .. } => {
                        let until = until.as_deref().map(parse_time).transpose()?;
                        tx.ledger(&ns_of(n)).pause(until)
                    }
                    BatchOp::Resume { ns: n } => tx.ledger(&ns_of(n)).resume().map(drop),
                    BatchOp::Checkpoint { job, value } => tx.checkpoint(job).set(value_of(value)),
                    BatchOp::CheckpointDel { job } => tx.checkpoint(job).delete().map(drop),
                };
                applied.map_err(|e| at_line(*line, e))?;
            }
            Ok(batch.ops.len())
        })
    }
}

/// An operation's error, naming the line that asked for it.
fn at_line(line: u64, e: Error) -> Error {
    match e {
        Error::InvalidInput(msg) => Error::invalid(format!("batch line {line}: {msg}; nothing was applied")),
        // An incr on a value that is not a number: say which line asked for it.
        Error::Decode { ns, key, expected, detail } => Error::Decode {
            ns,
            key,
            expected,
            detail: format!("{detail} (batch line {line}; nothing was applied)"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Batch> {
        Batch::parse(text.as_bytes(), "dflt")
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        for (text, line) in [
            ("{\"op\":\"set\",\"key\":\"k\",\"value\":\"v\"}\nnot json", "line 2"),
            ("{\"op\":\"explode\",\"key\":\"k\"}", "line 1"),
            ("\n\n{\"op\":\"set\",\"key\":\"k\",\"value\":\"v\",\"tll\":\"1h\"}", "line 3"),
            ("{\"op\":\"set\",\"key\":\"k\",\"value\":\"v\",\"ttl\":\"soon\"}", "line 1"),
            ("{\"op\":\"mark\"}", "line 1"),
            ("{\"op\":\"snooze\",\"id\":\"a\",\"worker\":\"w\",\"for\":\"soon\"}", "line 1"),
            ("{\"op\":\"pause\",\"for\":\"1h\",\"until\":\"2030-01-01T00:00:00Z\"}", "line 1"),
            ("{\"op\":\"pause\",\"until\":\"tomorrow\"}", "line 1"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(line), "{err}");
        }
    }
}
