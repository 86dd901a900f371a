//! A snapshot of a store's figures for monitoring ([`Store::metrics`]), and its rendering in
//! the Prometheus text exposition format ([`Metrics::to_prometheus`]).
//!
//! Each part of the store has its section: ledger namespaces, cache namespaces, locks, jobs. A
//! new part adds a field to [`Metrics`] and a function beside [`ledger_families`] that writes
//! its families.

use std::fmt::{Display, Write as _};
use std::time::Duration;

use crate::cache::CacheStats;
use crate::error::Result;
use crate::ledger::LedgerCounts;
use crate::storage::MetricsOps;
use crate::store::Store;

/// Figures of a whole store, from [`Store::metrics`] (each part read on its own, not from one
/// snapshot).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// When they were read (Unix ms, on the store's clock).
    pub at_millis: i64,
    /// Each ledger namespace holding items, sorted by name.
    pub ledger: Vec<LedgerMetrics>,
    /// Each cache namespace holding entries or statistics, sorted by name.
    pub cache: Vec<CacheMetrics>,
    /// Each lock with a live holder, sorted by name.
    pub locks: Vec<LockMetrics>,
    /// Each job that ran at least once, sorted by name.
    pub jobs: Vec<JobMetrics>,
}

/// One job's figures, from its [`JobInfo`](crate::JobInfo).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JobMetrics {
    /// The job's name.
    pub name: String,
    /// When its newest successful run ended (Unix ms).
    pub last_success_ms: Option<i64>,
    /// How long its newest finished run took.
    pub last_duration: Option<Duration>,
    /// The exit status of its newest finished run.
    pub last_status: Option<i32>,
    /// Runs that ever succeeded.
    pub succeeded: u64,
    /// Runs that ever failed.
    pub failed: u64,
    /// Whether a process holds it now.
    pub running: bool,
}

/// One ledger namespace's figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LedgerMetrics {
    /// The namespace.
    pub ns: String,
    /// Items by state, as [`Ledger::counts`](crate::Ledger::counts) tells them: pending
    /// includes the items waiting behind their group's head and the claims whose lease ran
    /// out; and whether the namespace is paused.
    pub counts: LedgerCounts,
    /// How long the oldest queued item has waited for a worker: the item ready to be handed out
    /// the longest, measured from when it became ready (its due time: when it was queued,
    /// unless queued for later or backing off after a failure; for a claim whose lease ran
    /// out, the lease's end). `None` when no item is ready. Items due later, and those waiting
    /// behind their group's head, are not ready; a paused namespace's items are, and age.
    pub oldest_queued: Option<Duration>,
}

/// One cache namespace's figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheMetrics {
    /// The namespace.
    pub ns: String,
    /// Its entries, bytes, hits, misses and evictions, as [`Cache::stats`](crate::Cache::stats)
    /// tells them.
    pub stats: CacheStats,
}

/// One lock's figures: a plain lock has one slot, a semaphore many.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LockMetrics {
    /// The lock's name.
    pub name: String,
    /// How many of its slots have a live holder (1 for a plain lock that is held).
    pub held: u64,
}

impl Store {
    /// Figures of the whole store for monitoring: per ledger namespace its items by state, the
    /// age of its oldest queued item and whether it is paused; per cache namespace its entries,
    /// bytes, hits and misses; the locks held; per job its last success, its newest finished
    /// run's duration and status, its runs by outcome and whether it runs. Reads only: the
    /// oldest queued item by a few seeks of the queue index, the counts by state in one pass
    /// over each namespace's items ([`Ledger::counts`](crate::Ledger::counts): some 70–150 ms
    /// for a million items, docs/BENCHMARKS.md, "cairn ui"; [`Store::metrics_with`] takes
    /// counts kept elsewhere instead). Each namespace is read on its own
    /// (not one snapshot of the whole store).
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// store.ledger("orders").enqueue(["o-1", "o-2"])?;
    /// store.cache("pages").set("a", "x", None)?;
    /// let _guard = store.try_lock("nightly", std::time::Duration::from_secs(60))?;
    /// let m = store.metrics()?;
    /// assert_eq!(m.ledger[0].ns, "orders");
    /// assert_eq!(m.ledger[0].counts.pending, 2);
    /// assert_eq!(m.cache[0].stats.entries, 1);
    /// assert_eq!((m.locks[0].name.as_str(), m.locks[0].held), ("nightly", 1));
    /// assert!(m.to_prometheus().contains("cairn_ledger_items{ns=\"orders\",state=\"pending\"} 2\n"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn metrics(&self) -> Result<Metrics> {
        self.metrics_with(|ledger| ledger.counts())
    }

    /// [`Store::metrics`] with each ledger namespace's counts taken from `counts` instead of
    /// read: for a dashboard that keeps counts it read earlier (`cairn ui` does, for the
    /// namespaces too large to count on every view). Everything else is read as `metrics`
    /// reads it.
    ///
    /// ```
    /// use cairn::{LedgerCounts, Store};
    ///
    /// let store = Store::open_in_memory()?;
    /// store.ledger("orders").enqueue(["o-1", "o-2"])?;
    /// let m = store.metrics_with(|_ledger| Ok(LedgerCounts::default()))?;
    /// assert_eq!((m.ledger[0].ns.as_str(), m.ledger[0].counts.pending), ("orders", 0));
    /// assert!(m.ledger[0].oldest_queued.is_some(), "read, not taken from the closure");
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn metrics_with(
        &self,
        mut counts: impl FnMut(&crate::Ledger<'_>) -> Result<LedgerCounts>,
    ) -> Result<Metrics> {
        let now = self.now();
        let ledger = self
            .ledger_namespaces()?
            .into_iter()
            .map(|ns| {
                let counts = counts(&self.ledger(&ns))?;
                let oldest_queued = self.engine.metrics_ready_since(&ns, now)?.map(|since| {
                    Duration::from_millis(u64::try_from(now.saturating_sub(since)).unwrap_or(0))
                });
                Ok(LedgerMetrics { ns, counts, oldest_queued })
            })
            .collect::<Result<_>>()?;
        let cache = self
            .cache_namespaces()?
            .into_iter()
            .map(|ns| {
                let stats = self.cache(&ns).stats()?;
                Ok(CacheMetrics { ns, stats })
            })
            .collect::<Result<_>>()?;
        let locks = self
            .engine
            .metrics_locks_held(now)?
            .into_iter()
            .map(|(name, held)| LockMetrics { name, held })
            .collect();
        let jobs = self
            .jobs()?
            .into_iter()
            .map(|j| {
                // The newest run may still be running: its figures are those of the newest one
                // that ended.
                let finished = [&j.last_success, &j.last_failure]
                    .into_iter()
                    .flatten()
                    .filter(|r| r.finished_ms.is_some())
                    .max_by_key(|r| r.seq);
                JobMetrics {
                    last_success_ms: j.last_success.as_ref().and_then(|r| r.finished_ms),
                    last_duration: finished.and_then(|r| r.duration),
                    last_status: finished.and_then(|r| r.status),
                    succeeded: j.succeeded,
                    failed: j.failed,
                    running: j.running,
                    name: j.name,
                }
            })
            .collect();
        Ok(Metrics { at_millis: now, ledger, cache, locks, jobs })
    }
}

impl Metrics {
    /// The figures in the Prometheus text exposition format (version 0.0.4), for a scrape or
    /// node_exporter's textfile collector. Every family has its `# HELP` and `# TYPE` lines,
    /// even with no samples; names start with `cairn_`, in base units (seconds, bytes),
    /// counters end in `_total`. Namespaces are the label `ns` (not `namespace`, which
    /// Kubernetes service discovery attaches to every target), locks the label `lock`; label
    /// values are escaped.
    ///
    /// ```
    /// use cairn::Store;
    ///
    /// let store = Store::open_in_memory()?;
    /// store.cache("say \"hi\"").set("k", "v", None)?;
    /// let text = store.metrics()?.to_prometheus();
    /// assert!(text.contains("# TYPE cairn_cache_hits_total counter\n"));
    /// assert!(text.contains("cairn_cache_entries{ns=\"say \\\"hi\\\"\"} 1\n"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = Exposition::default();
        ledger_families(&mut out, &self.ledger);
        cache_families(&mut out, &self.cache);
        lock_families(&mut out, &self.locks);
        job_families(&mut out, &self.jobs);
        out.text
    }
}

/// The ledger's families.
fn ledger_families(out: &mut Exposition, ledger: &[LedgerMetrics]) {
    out.family(
        "cairn_ledger_items",
        Kind::Gauge,
        "Ledger items by state (pending includes items waiting behind their group and lapsed claims).",
    );
    for l in ledger {
        let c = &l.counts;
        for (state, n) in [
            ("pending", c.pending),
            ("claimed", c.claimed),
            ("done", c.done),
            ("failed", c.failed),
            ("cancelled", c.cancelled),
        ] {
            out.sample("cairn_ledger_items", &[("ns", &l.ns), ("state", state)], n);
        }
    }
    out.family(
        "cairn_ledger_oldest_queued_age_seconds",
        Kind::Gauge,
        "How long the item ready the longest has waited for a worker (0 when none is ready).",
    );
    for l in ledger {
        let age = l.oldest_queued.unwrap_or_default().as_secs_f64();
        out.sample("cairn_ledger_oldest_queued_age_seconds", &[("ns", &l.ns)], age);
    }
    out.family("cairn_ledger_paused", Kind::Gauge, "1 while the namespace is paused, else 0.");
    for l in ledger {
        out.sample("cairn_ledger_paused", &[("ns", &l.ns)], u8::from(l.counts.paused.is_some()));
    }
}

/// The cache's families.
fn cache_families(out: &mut Exposition, cache: &[CacheMetrics]) {
    type Field = fn(&CacheStats) -> u64;
    let families: [(&str, Kind, &str, Field); 5] = [
        (
            "cairn_cache_entries",
            Kind::Gauge,
            "Cache entries stored, expired ones not yet swept included.",
            |s| s.entries,
        ),
        ("cairn_cache_bytes", Kind::Gauge, "Bytes of cache keys and values stored.", |s| s.bytes),
        ("cairn_cache_hits_total", Kind::Counter, "Cache reads that found a fresh entry.", |s| s.hits),
        ("cairn_cache_misses_total", Kind::Counter, "Cache reads that found nothing fresh.", |s| s.misses),
        (
            "cairn_cache_evictions_total",
            Kind::Counter,
            "Cache entries removed to respect a size bound.",
            |s| s.evictions,
        ),
    ];
    for (name, kind, help, field) in families {
        out.family(name, kind, help);
        for c in cache {
            out.sample(name, &[("ns", &c.ns)], field(&c.stats));
        }
    }
}

/// The locks' families.
fn lock_families(out: &mut Exposition, locks: &[LockMetrics]) {
    out.family("cairn_locks_held", Kind::Gauge, "Locks and semaphores with at least one live holder.");
    out.sample("cairn_locks_held", &[], locks.len());
    out.family(
        "cairn_lock_slots_held",
        Kind::Gauge,
        "Slots of a lock with a live holder (1 for a plain lock).",
    );
    for l in locks {
        out.sample("cairn_lock_slots_held", &[("lock", &l.name)], l.held);
    }
}

/// The jobs' families: a job's figures that are not known yet (no success, no finished run)
/// have no sample.
fn job_families(out: &mut Exposition, jobs: &[JobMetrics]) {
    out.family(
        "cairn_job_last_success_timestamp_seconds",
        Kind::Gauge,
        "When the job's newest successful run ended (Unix seconds).",
    );
    for j in jobs {
        if let Some(ms) = j.last_success_ms {
            #[allow(clippy::cast_precision_loss)] // Unix ms stay far below 2^53.
            let secs = ms as f64 / 1000.0;
            out.sample("cairn_job_last_success_timestamp_seconds", &[("job", &j.name)], secs);
        }
    }
    out.family(
        "cairn_job_last_duration_seconds",
        Kind::Gauge,
        "How long the job's newest finished run took.",
    );
    for j in jobs {
        if let Some(d) = j.last_duration {
            out.sample("cairn_job_last_duration_seconds", &[("job", &j.name)], d.as_secs_f64());
        }
    }
    out.family(
        "cairn_job_last_exit_status",
        Kind::Gauge,
        "The exit status of the job's newest finished run (0 is success).",
    );
    for j in jobs {
        if let Some(status) = j.last_status {
            out.sample("cairn_job_last_exit_status", &[("job", &j.name)], status);
        }
    }
    out.family("cairn_job_runs_total", Kind::Counter, "Runs of the job that ended, by outcome.");
    for j in jobs {
        for (outcome, n) in [("succeeded", j.succeeded), ("failed", j.failed)] {
            out.sample("cairn_job_runs_total", &[("job", &j.name), ("outcome", outcome)], n);
        }
    }
    out.family("cairn_job_running", Kind::Gauge, "1 while a process runs the job, else 0.");
    for j in jobs {
        out.sample("cairn_job_running", &[("job", &j.name)], u8::from(j.running));
    }
}

/// A metric family's type, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// The text being written, family by family.
#[derive(Debug, Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Begin a family: its `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the family begun last.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label_value(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value as the format quotes it: backslash, double quote and line feed escaped.
fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A `# HELP` text as the format reads it: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Pause;

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed_and_nothing_else() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("one\ntwo"), "one\\ntwo");
        assert_eq!(escape_label_value("tab\there ünï {x}=,"), "tab\there ünï {x}=,");
        assert_eq!(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
    }

    fn sample() -> Metrics {
        Metrics {
            at_millis: 0,
            ledger: vec![LedgerMetrics {
                ns: "q\"1\n".into(),
                counts: LedgerCounts {
                    pending: 3,
                    claimed: 1,
                    done: 7,
                    failed: 2,
                    cancelled: 0,
                    paused: Some(Pause::UntilResumed),
                },
                oldest_queued: Some(Duration::from_millis(1500)),
            }],
            cache: vec![CacheMetrics {
                ns: "pages".into(),
                stats: CacheStats {
                    entries: 4,
                    bytes: 120,
                    hits: 9,
                    misses: 1,
                    evictions: 0,
                    ..Default::default()
                },
            }],
            locks: vec![LockMetrics { name: "nightly".into(), held: 1 }],
            jobs: vec![
                JobMetrics {
                    name: "backup".into(),
                    last_success_ms: Some(1_700_000_000_250),
                    last_duration: Some(Duration::from_millis(2500)),
                    last_status: Some(3),
                    succeeded: 5,
                    failed: 1,
                    running: true,
                },
                JobMetrics { name: "new".into(), ..Default::default() },
            ],
        }
    }

    /// The whole text, line for line: one HELP and one TYPE line before each family's
    /// samples, escaped label values, counters in `_total`, seconds as a decimal.
    #[test]
    fn the_exposition_is_the_text_format_line_for_line() {
        let expected = r#"# HELP cairn_ledger_items Ledger items by state (pending includes items waiting behind their group and lapsed claims).
# TYPE cairn_ledger_items gauge
cairn_ledger_items{ns="q\"1\n",state="pending"} 3
cairn_ledger_items{ns="q\"1\n",state="claimed"} 1
cairn_ledger_items{ns="q\"1\n",state="done"} 7
cairn_ledger_items{ns="q\"1\n",state="failed"} 2
cairn_ledger_items{ns="q\"1\n",state="cancelled"} 0
# HELP cairn_ledger_oldest_queued_age_seconds How long the item ready the longest has waited for a worker (0 when none is ready).
# TYPE cairn_ledger_oldest_queued_age_seconds gauge
cairn_ledger_oldest_queued_age_seconds{ns="q\"1\n"} 1.5
# HELP cairn_ledger_paused 1 while the namespace is paused, else 0.
# TYPE cairn_ledger_paused gauge
cairn_ledger_paused{ns="q\"1\n"} 1
# HELP cairn_cache_entries Cache entries stored, expired ones not yet swept included.
# TYPE cairn_cache_entries gauge
cairn_cache_entries{ns="pages"} 4
# HELP cairn_cache_bytes Bytes of cache keys and values stored.
# TYPE cairn_cache_bytes gauge
cairn_cache_bytes{ns="pages"} 120
# HELP cairn_cache_hits_total Cache reads that found a fresh entry.
# TYPE cairn_cache_hits_total counter
cairn_cache_hits_total{ns="pages"} 9
# HELP cairn_cache_misses_total Cache reads that found nothing fresh.
# TYPE cairn_cache_misses_total counter
cairn_cache_misses_total{ns="pages"} 1
# HELP cairn_cache_evictions_total Cache entries removed to respect a size bound.
# TYPE cairn_cache_evictions_total counter
cairn_cache_evictions_total{ns="pages"} 0
# HELP cairn_locks_held Locks and semaphores with at least one live holder.
# TYPE cairn_locks_held gauge
cairn_locks_held 1
# HELP cairn_lock_slots_held Slots of a lock with a live holder (1 for a plain lock).
# TYPE cairn_lock_slots_held gauge
cairn_lock_slots_held{lock="nightly"} 1
# HELP cairn_job_last_success_timestamp_seconds When the job's newest successful run ended (Unix seconds).
# TYPE cairn_job_last_success_timestamp_seconds gauge
cairn_job_last_success_timestamp_seconds{job="backup"} 1700000000.25
# HELP cairn_job_last_duration_seconds How long the job's newest finished run took.
# TYPE cairn_job_last_duration_seconds gauge
cairn_job_last_duration_seconds{job="backup"} 2.5
# HELP cairn_job_last_exit_status The exit status of the job's newest finished run (0 is success).
# TYPE cairn_job_last_exit_status gauge
cairn_job_last_exit_status{job="backup"} 3
# HELP cairn_job_runs_total Runs of the job that ended, by outcome.
# TYPE cairn_job_runs_total counter
cairn_job_runs_total{job="backup",outcome="succeeded"} 5
cairn_job_runs_total{job="backup",outcome="failed"} 1
cairn_job_runs_total{job="new",outcome="succeeded"} 0
cairn_job_runs_total{job="new",outcome="failed"} 0
# HELP cairn_job_running 1 while a process runs the job, else 0.
# TYPE cairn_job_running gauge
cairn_job_running{job="backup"} 1
cairn_job_running{job="new"} 0
"#;
        assert_eq!(sample().to_prometheus(), expected);
    }

    /// An empty store still declares every family (an alert on a family that never appeared
    /// cannot tell "none" from "not scraped"), and says no lock is held.
    #[test]
    fn an_empty_store_declares_every_family_with_no_samples_but_the_lock_total() {
        let text = Metrics::default().to_prometheus();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples, ["cairn_locks_held 0"]);
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE ")).count(), 15);
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP ")).count(), 15);
    }

    /// Names follow the conventions: the `cairn_` prefix, counters and only counters ending in
    /// `_total`, only the legal characters.
    #[test]
    fn family_names_follow_the_prometheus_conventions() {
        let text = sample().to_prometheus();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut parts = line["# TYPE ".len()..].split(' ');
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(name.starts_with("cairn_"), "{line}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{line}");
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
    }
}
