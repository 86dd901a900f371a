//! The views: overview, queue, run, job. Each reads through the library's APIs only, and
//! escapes every value it shows (see `html`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use cairn::{ItemState, JobRunInfo, RunOutcome, RunState, Store, MAX_SEMAPHORE_SLOTS};

use crate::html::{action_form, badge, dur, esc, href, page, seg, time};
use crate::routes::{failed, known_ns, Ctx, Reply};

/// Items per queue page.
pub const PAGE_ITEMS: usize = 50;

/// The most runs listed on the overview (the counts cover them all).
const OVERVIEW_RUNS: usize = 50;

/// Runs of a job shown on its page.
const JOB_HISTORY: u32 = 200;

/// Turns `Result<Reply, cairn::Error>` into a reply.
fn done(ctx: &Ctx, r: cairn::Result<Reply>) -> Reply {
    r.unwrap_or_else(|e| failed(ctx, &e))
}

fn msg(query: &HashMap<String, String>) -> String {
    query.get("msg").map(|m| format!("<p class=msg role=status>{}</p>", esc(m))).unwrap_or_default()
}

fn table(head: &[&str], rows: &str, attrs: &str) -> String {
    let mut out = format!("<div class=scroll><table {attrs}><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    let _ = write!(out, "</tr></thead><tbody>{rows}</tbody></table></div>");
    out
}

/// `/`: every part of the store at a glance; refreshes itself.
pub fn overview(ctx: &Ctx, store: &Store) -> Reply {
    done(
        ctx,
        overview_body(ctx, store)
            .map(|body| Reply::html(page(&ctx.token, "overview", "", &body, true, ctx.read_only))),
    )
}

fn overview_body(ctx: &Ctx, store: &Store) -> cairn::Result<String> {
    // The age of each namespace's counts where they were not read for this view.
    let mut ages = HashMap::new();
    let m = match ctx.counts.get() {
        Some(counter) => store.metrics_with(|ledger| {
            let (counts, age) = counter.counts(ledger)?;
            ages.insert(ledger.namespace().to_owned(), age);
            Ok(counts)
        })?,
        None => store.metrics()?,
    };
    let t = &ctx.token;
    let mut out = String::from("<h1>Overview</h1>");

    out.push_str("<h2>Queues</h2>");
    if m.ledger.is_empty() {
        out.push_str("<p class=mute>No ledger items.</p>");
    } else {
        let mut rows = String::new();
        for l in &m.ledger {
            let c = &l.counts;
            let link = href(t, &format!("/queue/{}", seg(&l.ns)), &[]);
            let cell = |state: &str, n: u64| {
                let h = href(t, &format!("/queue/{}", seg(&l.ns)), &[("state", state)]);
                format!("<td class=n data-state=\"{state}\"><a href=\"{h}\">{n}</a></td>")
            };
            let paused = match c.paused {
                None => String::new(),
                Some(p) => match p.until_millis() {
                    Some(u) => format!("{} until {}", badge("paused"), time(u)),
                    None => badge("paused"),
                },
            };
            // A large namespace's counts are from its last count, in the background: say when.
            let counted = match ages.get(&l.ns).copied().flatten() {
                Some(age) => format!(
                    " <small class=mute title=\"counted in the background: a count reads every item\">counted {} ago</small>",
                    dur(Duration::from_secs(age.as_secs()))
                ),
                None => String::new(),
            };
            let _ = write!(
                rows,
                "<tr data-ns=\"{}\"><td><a href=\"{link}\">{}</a></td>{}{}{}{}{}<td>{}</td><td>{paused}{counted}</td></tr>",
                esc(&l.ns),
                esc(&l.ns),
                cell("pending", c.pending),
                cell("claimed", c.claimed),
                cell("done", c.done),
                cell("failed", c.failed),
                cell("cancelled", c.cancelled),
                l.oldest_queued.map(dur).unwrap_or_default(),
            );
        }
        out.push_str(&table(
            &["namespace", "pending", "claimed", "done", "failed", "cancelled", "oldest queued", ""],
            &rows,
            "id=queues",
        ));
    }

    out.push_str("<h2>Caches</h2>");
    if m.cache.is_empty() {
        out.push_str("<p class=mute>No cache entries.</p>");
    } else {
        let mut rows = String::new();
        for c in &m.cache {
            let s = &c.stats;
            let rate = s.hit_rate().map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "–".into());
            let _ = write!(
                rows,
                "<tr data-ns=\"{}\"><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{rate}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                esc(&c.ns),
                esc(&c.ns),
                s.entries,
                bytes(s.bytes),
                s.hits,
                s.misses,
                s.evictions
            );
        }
        out.push_str(&table(
            &["namespace", "entries", "size", "hit rate", "hits", "misses", "evicted"],
            &rows,
            "id=caches",
        ));
    }

    out.push_str("<h2>Locks held</h2>");
    if m.locks.is_empty() {
        out.push_str("<p class=mute>No lock is held.</p>");
    } else {
        let mut rows = String::new();
        for l in &m.locks {
            for h in store.lock_holders(&l.name, MAX_SEMAPHORE_SLOTS)? {
                let left =
                    Duration::from_millis(u64::try_from(h.expires_at_millis - m.at_millis).unwrap_or(0));
                let _ = write!(
                    rows,
                    "<tr data-lock=\"{}\"><td>{}</td><td class=n>{}</td><td class=mono>{}</td><td class=n>{}</td><td>{}</td></tr>",
                    esc(&l.name),
                    esc(&l.name),
                    h.slot,
                    esc(&h.owner),
                    h.pid,
                    dur(left)
                );
            }
        }
        out.push_str(&table(&["lock", "slot", "holder", "pid", "expires in"], &rows, "id=locks"));
    }

    out.push_str("<h2>Jobs</h2>");
    let jobs = store.jobs()?;
    if jobs.is_empty() {
        out.push_str("<p class=mute>No job has run.</p>");
    } else {
        let mut rows = String::new();
        for j in &jobs {
            let health = if j.running {
                "running"
            } else {
                match last_finished(j.last_success.as_ref(), j.last_failure.as_ref()) {
                    Some(r) if r.outcome == RunOutcome::Succeeded => "ok",
                    Some(_) => "failing",
                    None => "pending",
                }
            };
            let state_class = match health {
                "ok" => "ok",
                "failing" => "bad",
                other => other,
            };
            let _ = write!(
                rows,
                "<tr data-job=\"{}\"><td><a href=\"{}\">{}</a></td><td><span class=\"st st-{state_class}\" data-state=\"{health}\">{health}</span></td><td class=mono>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                esc(&j.name),
                href(t, &format!("/job/{}", seg(&j.name)), &[]),
                esc(&j.name),
                esc(&j.schedule),
                j.last_success.as_ref().and_then(|r| r.finished_ms).map(time).unwrap_or_else(|| "never".into()),
                j.succeeded,
                j.failed
            );
        }
        out.push_str(&table(
            &["job", "health", "schedule", "last success", "succeeded", "failed"],
            &rows,
            "id=jobs",
        ));
    }

    out.push_str("<h2>Runs</h2>");
    let runs = store.runs().list(None)?;
    if runs.is_empty() {
        out.push_str("<p class=mute>No runs.</p>");
    } else {
        let count = |s: RunState| runs.iter().filter(|r| r.state == s).count();
        let _ = write!(
            out,
            "<p id=run-counts>{} {} · {} {} · {} {}</p>",
            badge("running"),
            count(RunState::Running),
            badge("failed"),
            count(RunState::Failed),
            badge("finished"),
            count(RunState::Finished)
        );
        // The unfinished first, then the newest.
        let mut shown: Vec<_> = runs.iter().collect();
        shown.sort_by_key(|r| (r.state == RunState::Finished, std::cmp::Reverse(r.updated_at_millis)));
        let mut rows = String::new();
        for r in shown.into_iter().take(OVERVIEW_RUNS) {
            let _ = write!(
                rows,
                "<tr data-run=\"{}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.id),
                href(t, &format!("/run/{}", seg(&r.id)), &[]),
                esc(&r.id),
                badge(r.state.as_str()),
                r.attempts,
                time(r.updated_at_millis),
                esc(r.error.as_deref().unwrap_or(""))
            );
        }
        out.push_str(&table(&["run", "state", "attempts", "updated", "error"], &rows, "id=runs"));
    }
    let _ = write!(out, "<p class=mute>Read at {}.</p>", time(m.at_millis));
    Ok(out)
}

fn last_finished<'a>(a: Option<&'a JobRunInfo>, b: Option<&'a JobRunInfo>) -> Option<&'a JobRunInfo> {
    [a, b].into_iter().flatten().filter(|r| r.finished_ms.is_some()).max_by_key(|r| r.seq)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A stored value for a cell: its text (the head of it), or its size when it is not text.
fn value(b: &[u8]) -> String {
    const HEAD: usize = 200;
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().count() > HEAD => format!("{}…", esc(&s.chars().take(HEAD).collect::<String>())),
        Ok(s) => esc(s),
        Err(_) => format!("<span class=mute>{} bytes</span>", b.len()),
    }
}

/// `/queue/{ns}?state=&q=&after=`: a page of items, with their actions.
pub fn queue(ctx: &Ctx, store: &Store, ns: &str, query: &HashMap<String, String>) -> Reply {
    let state = match query.get("state").map(String::as_str).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<ItemState>() {
            Ok(s) => Some(s),
            Err(e) => return failed(ctx, &e),
        },
    };
    let prefix = query.get("q").map(String::as_str).unwrap_or("");
    let after = query.get("after").map(String::as_str).filter(|a| !a.is_empty());
    match known_ns(store, ns) {
        Ok(true) => {}
        Ok(false) => return Reply::error(ctx, 404, &format!("no ledger namespace {ns:?}")),
        Err(e) => return failed(ctx, &e),
    }
    done(
        ctx,
        queue_body(ctx, store, ns, state, prefix, after, query).map(|body| {
            let crumbs = format!("<span>queue <b>{}</b></span>", esc(ns));
            Reply::html(page(&ctx.token, ns, &crumbs, &body, false, ctx.read_only))
        }),
    )
}

fn queue_body(
    ctx: &Ctx,
    store: &Store,
    ns: &str,
    state: Option<ItemState>,
    prefix: &str,
    after: Option<&str>,
    query: &HashMap<String, String>,
) -> cairn::Result<String> {
    let t = &ctx.token;
    let ledger = store.ledger(ns);
    // No counts here: counting a namespace's items by state reads all of them (the overview
    // does, once); this page reads one page of them and whether the namespace is paused.
    let paused = ledger.paused()?;
    let page = ledger.page(state, prefix, after, PAGE_ITEMS)?;
    let state_s = state.map(|s| s.as_str()).unwrap_or("");
    let path = format!("/queue/{}", seg(ns));
    let action = format!("{path}/");
    let mut out = format!("<h1 data-ns=\"{}\">{}</h1>{}", esc(ns), esc(ns), msg(query));

    // A link per state to its filter, and pause/resume.
    out.push_str("<p class=filters>");
    let _ = write!(out, "<a href=\"{}\">all</a> ", href(t, &path, &[]));
    for s in ItemState::ALL {
        let _ = write!(
            out,
            "<a href=\"{}\">{}</a> ",
            href(t, &path, &[("state", s.as_str())]),
            badge(s.as_str())
        );
    }
    if let Some(p) = paused {
        out.push_str(&badge("paused"));
        if let Some(u) = p.until_millis() {
            let _ = write!(out, " until {}", time(u));
        }
        if !ctx.read_only {
            out.push(' ');
            out.push_str(&action_form(
                t,
                &format!("{action}resume"),
                &[],
                "resume",
                "",
                &format!("Resume {ns}?"),
            ));
        }
    } else if !ctx.read_only {
        out.push_str(&action_form(
            t,
            &format!("{action}pause"),
            &[],
            "pause",
            "",
            &format!("Pause {ns}? Workers get no item until it is resumed."),
        ));
    }
    out.push_str("</p>");

    // Filters: a GET form, the token in it.
    let _ = write!(
        out,
        "<form class=filters method=get action=\"{}\"><input type=hidden name=token value=\"{}\">\
         <select name=state aria-label=state><option value=\"\">any state</option>",
        esc(&path),
        esc(t)
    );
    for s in ItemState::ALL {
        let sel = if Some(s) == state { " selected" } else { "" };
        let _ = write!(out, "<option{sel}>{}</option>", s.as_str());
    }
    let _ = write!(
        out,
        "</select><input name=q placeholder=\"id prefix\" aria-label=\"id prefix\" value=\"{}\"><button type=submit>filter</button></form>",
        esc(prefix)
    );

    let mut rows = String::new();
    for item in &page.items {
        let id = esc(&item.id);
        let s = item.state.as_str();
        let keep = [("id", item.id.as_str()), ("state", state_s), ("q", prefix)];
        let mut acts = String::new();
        if !ctx.read_only {
            let data = format!("data-id=\"{id}\"");
            if matches!(item.state, ItemState::Failed | ItemState::Cancelled) {
                acts.push_str(&action_form(
                    t,
                    &format!("{action}retry"),
                    &keep,
                    "retry",
                    &data,
                    &format!("Retry {}?", item.id),
                ));
            }
            if matches!(item.state, ItemState::Pending | ItemState::Claimed) {
                acts.push_str(&action_form(
                    t,
                    &format!("{action}cancel"),
                    &keep,
                    "cancel",
                    &data,
                    &format!("Cancel {}?", item.id),
                ));
            }
            acts.push_str(&action_form(
                t,
                &format!("{action}delete"),
                &keep,
                "delete",
                &data,
                &format!("Delete {}? It is forgotten, as if never seen.", item.id),
            ));
        }
        let due = match (item.state, item.due_millis) {
            (ItemState::Pending, Some(d)) => time(d),
            _ => String::new(),
        };
        let holder = if item.state == ItemState::Claimed {
            esc(item.worker.as_deref().unwrap_or(""))
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            "<tr data-id=\"{id}\" data-state=\"{s}\"><td class=mono>{id}</td><td>{}</td><td class=n>{}</td><td><pre>{}</pre></td><td>{due}</td><td class=mono>{holder}</td><td><pre>{}</pre></td><td>{acts}</td></tr>",
            badge(s),
            item.attempts,
            esc(item.error.as_deref().unwrap_or("")),
            item.data.as_deref().map(value).unwrap_or_default(),
        );
    }
    if page.items.is_empty() {
        out.push_str("<p class=mute id=no-items>No items here.</p>");
    } else {
        out.push_str(&table(
            &["id", "state", "attempts", "last error", "due", "holder", "data", ""],
            &rows,
            "id=items",
        ));
    }
    if let Some(next) = &page.next {
        let _ = write!(
            out,
            "<p><a id=next rel=next href=\"{}\">next page →</a></p>",
            href(t, &path, &[("state", state_s), ("q", prefix), ("after", next)])
        );
    }
    Ok(out)
}

/// `/run/{id}`: its steps in order, each with "reset from here".
pub fn run(ctx: &Ctx, store: &Store, id: &str) -> Reply {
    let info = match store.runs().get(id) {
        Ok(Some(info)) => info,
        Ok(None) => return Reply::error(ctx, 404, &format!("no run {id:?}")),
        Err(e) => return failed(ctx, &e),
    };
    let t = &ctx.token;
    let mut out =
        format!("<h1 data-run=\"{}\">{} {}</h1>", esc(&info.id), esc(&info.id), badge(info.state.as_str()));
    let _ = write!(
        out,
        "<p>{} attempt(s) · started {} · updated {}",
        info.attempts,
        time(info.started_at_millis),
        time(info.updated_at_millis)
    );
    if let Some(f) = info.finished_at_millis {
        let _ = write!(out, " · finished {}", time(f));
    }
    if let Some(h) = &info.holder {
        let _ = write!(out, " · held by {}", esc(h));
    }
    out.push_str("</p>");
    if let Some(e) = &info.error {
        let _ = write!(out, "<p class=msg>{}</p>", esc(e));
    }
    let action = format!("/run/{}/reset", seg(&info.id));
    let mut rows = String::new();
    for (i, s) in info.steps.iter().enumerate() {
        let reset = if ctx.read_only {
            String::new()
        } else {
            action_form(
                t,
                &action,
                &[("from", &s.name)],
                "reset",
                &format!("data-id=\"{}\"", esc(&s.name)),
                &format!("Reset {} from step {}? This step and those after it run again.", info.id, s.name),
            )
        };
        let _ = write!(
            rows,
            "<tr data-id=\"{}\" data-state=\"{}\"><td class=n>{}</td><td class=mono>{}</td><td>{}</td><td class=n>{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td>{reset}</td></tr>",
            esc(&s.name),
            s.state.as_str(),
            i + 1,
            esc(&s.name),
            badge(s.state.as_str()),
            s.attempts,
            dur(s.duration()),
            esc(s.error.as_deref().unwrap_or("")),
            esc(&head(s.output.as_deref().unwrap_or(""), 10)),
        );
    }
    if info.steps.is_empty() {
        out.push_str("<p class=mute>No steps recorded.</p>");
    } else {
        out.push_str(&table(
            &["#", "step", "state", "attempts", "took", "error", "output (head)", ""],
            &rows,
            "id=steps",
        ));
    }
    let crumbs = format!("<span>run <b>{}</b></span>", esc(&info.id));
    Reply::html(page(t, &info.id, &crumbs, &out, false, ctx.read_only))
}

/// The first `lines` lines of `s`.
fn head(s: &str, lines: usize) -> String {
    let mut it = s.lines();
    let mut out: Vec<&str> = it.by_ref().take(lines).collect();
    if it.next().is_some() {
        out.push("…");
    }
    out.join("\n")
}

/// `/job/{name}`: its history as a chart and a table.
pub fn job(ctx: &Ctx, store: &Store, name: &str) -> Reply {
    let info = match store.job_info(name) {
        Ok(Some(info)) => info,
        Ok(None) => return Reply::error(ctx, 404, &format!("no job {name:?}")),
        Err(e) => return failed(ctx, &e),
    };
    let history = match store.job_history(name, JOB_HISTORY) {
        Ok(h) => h,
        Err(e) => return failed(ctx, &e),
    };
    let mut out = format!("<h1 data-job=\"{}\">{}</h1>", esc(&info.name), esc(&info.name));
    let _ = write!(
        out,
        "<p><span class=mono>{}</span> · {} succeeded · {} failed{}</p>",
        esc(&info.schedule),
        info.succeeded,
        info.failed,
        if info.running { " · running now" } else { "" }
    );
    out.push_str(&chart(&history));
    let mut rows = String::new();
    for r in &history {
        let _ = write!(
            rows,
            "<tr data-id=\"{}\" data-state=\"{}\"><td class=n>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td><td class=mono>{} pid {}</td><td><pre>{}</pre></td></tr>",
            r.seq,
            r.outcome.as_str(),
            r.seq,
            time(r.slot.start_ms),
            time(r.started_ms),
            badge(r.outcome.as_str()),
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            r.duration.map(dur).unwrap_or_default(),
            esc(&r.host),
            r.pid,
            esc(r.stderr_tail.as_deref().unwrap_or("")),
        );
    }
    if history.is_empty() {
        out.push_str("<p class=mute>No runs kept.</p>");
    } else {
        out.push_str(&table(
            &["#", "slot", "started", "outcome", "status", "took", "where", "stderr (tail)"],
            &rows,
            "id=history",
        ));
    }
    let crumbs = format!("<span>job <b>{}</b></span>", esc(&info.name));
    Reply::html(page(&ctx.token, &info.name, &crumbs, &out, false, ctx.read_only))
}

/// An inline SVG of the runs' durations over time, oldest on the left: one bar per run, its
/// height the duration, its colour the outcome.
fn chart(history: &[JobRunInfo]) -> String {
    if history.is_empty() {
        return String::new();
    }
    let mut runs: Vec<&JobRunInfo> = history.iter().collect();
    runs.sort_by_key(|r| r.seq);
    let (w, h, pad) = (600.0_f64, 160.0_f64, 24.0_f64);
    let max = runs.iter().filter_map(|r| r.duration).max().unwrap_or_default().as_secs_f64().max(0.001);
    let step = (w - pad) / runs.len() as f64;
    let mut out = format!(
        "<div class=scroll><svg id=chart role=img viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px\" \
         aria-label=\"durations and outcomes of the last {} runs\">",
        runs.len()
    );
    let _ = write!(out, "<text x=\"0\" y=\"12\">{}</text>", dur(Duration::from_secs_f64(max)));
    let _ = write!(
        out,
        "<line x1=\"{pad}\" y1=\"{0}\" x2=\"{w}\" y2=\"{0}\" stroke=\"currentColor\" stroke-opacity=\".3\"/>",
        h - 14.0
    );
    for (i, r) in runs.iter().enumerate() {
        let d = r.duration.map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let bar = ((d / max) * (h - 34.0)).max(2.0);
        let x = pad + i as f64 * step;
        let color = match r.outcome {
            RunOutcome::Succeeded => "var(--ok)",
            RunOutcome::Failed => "var(--bad)",
            _ => "var(--run)",
        };
        let _ = write!(
            out,
            "<rect data-state=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"{color}\"><title>#{} {} {}</title></rect>",
            r.outcome.as_str(),
            h - 14.0 - bar,
            (step * 0.8).max(1.0),
            r.seq,
            r.outcome.as_str(),
            r.duration.map(dur).unwrap_or_default()
        );
    }
    if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
        let _ = write!(
            out,
            "<text x=\"{pad}\" y=\"{h}\">{}</text><text x=\"{w}\" y=\"{h}\" text-anchor=\"end\">{}</text>",
            esc(cairn::format_time(first.started_ms).get(..10).unwrap_or("")),
            esc(cairn::format_time(last.started_ms).get(..10).unwrap_or(""))
        );
    }
    out.push_str("</svg></div>");
    out
}
