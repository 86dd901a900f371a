//! `cairn migrate`, `stats`, `doctor`, `backup`, `vacuum`.

use std::path::Path;

use cairn::{Migrations, Options};
use serde_json::json;

use super::ledger::{counts_json, paused_text};
use super::Ctx;
use crate::cli::{MigrateArgs, StatsArgs, StatsFormat};
use crate::exit;
use crate::output::{note, Failure, Out, Outcome};

pub fn migrate(ctx: &Ctx, args: MigrateArgs) -> Outcome {
    let (migrations, files) = Migrations::from_dir(&args.dir)?;
    let path = ctx.path()?;
    let mut out = Out::new();
    let status = match &args.scope {
        Some(scope) if args.dry_run => ctx.open_for_reading()?.migration_status(scope, &migrations)?,
        Some(scope) => ctx.open()?.migration_status(scope, &migrations)?,
        None => migrations.status_of_file(&path)?,
    };
    if status.is_ahead() {
        return Err(Failure::Cairn(cairn::Error::SchemaTooNew {
            path,
            scope: args.scope.clone().unwrap_or_else(|| "user_version".into()),
            found: status.current,
            supported: status.latest,
        }));
    }
    let pending: Vec<_> = status.pending().filter_map(|v| files.get((v - 1) as usize)).collect();
    if args.dry_run {
        for f in &pending {
            out.line(f.display())?;
        }
        out.flush()?;
        return Ok(exit::OK);
    }
    let report = match &args.scope {
        Some(scope) => ctx.open()?.migrate(scope, &migrations)?,
        None => migrations.apply_to_file(&path)?,
    };
    if ctx.json {
        out.json(&json!({ "from": report.from, "to": report.to, "applied": report.applied }))?;
    } else {
        for v in &report.applied {
            if let Some(f) = files.get((*v - 1) as usize) {
                out.line(f.display())?;
            }
        }
    }
    out.flush()?;
    Ok(exit::OK)
}

pub fn stats(ctx: &Ctx, args: StatsArgs) -> Outcome {
    if args.format == StatsFormat::Prometheus {
        return prometheus(ctx, args.textfile.as_deref());
    }
    if args.textfile.is_some() {
        return Err(Failure::Usage(
            "--textfile writes the Prometheus format: add --format prometheus".into(),
        ));
    }
    let store = ctx.open_for_reading()?;
    store.flush_stats()?;
    let mut stats = store.stats()?;
    if let Some(ns) = &ctx.ns {
        stats.retain(|s| &s.ns == ns);
    }
    let mut out = Out::new();
    for s in stats {
        let (c, l) = (s.cache, s.ledger);
        if ctx.json {
            out.json(&json!({ "ns": s.ns,
                "cache": { "entries": c.entries, "bytes": c.bytes, "hits": c.hits, "misses": c.misses,
                           "hit_rate": c.hit_rate(), "evictions": c.evictions },
                "ledger": counts_json(&l) }))?;
        } else {
            let rate = c.hit_rate().map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0));
            out.line(format_args!(
                "{}\tentries={} bytes={} hit_rate={rate} evictions={}\tpending={} claimed={} done={} failed={} \
                 cancelled={}{}",
                s.ns,
                c.entries,
                c.bytes,
                c.evictions,
                l.pending,
                l.claimed,
                l.done,
                l.failed,
                l.cancelled,
                l.paused.map_or_else(String::new, |p| format!(" paused={}", paused_text(p)))
            ))?;
        }
    }
    out.flush()?;
    Ok(exit::OK)
}

/// `stats --format prometheus`: the library renders, this prints or writes the file.
fn prometheus(ctx: &Ctx, textfile: Option<&Path>) -> Outcome {
    if ctx.json {
        return Err(Failure::Usage("--json and --format prometheus are two formats: choose one".into()));
    }
    let store = ctx.open_for_reading()?;
    store.flush_stats()?;
    let mut metrics = store.metrics()?;
    if let Some(ns) = &ctx.ns {
        metrics.ledger.retain(|l| &l.ns == ns);
        metrics.cache.retain(|c| &c.ns == ns);
    }
    let text = metrics.to_prometheus();
    match textfile {
        Some(path) => {
            if path.extension().is_none_or(|e| e != "prom") {
                note(format_args!(
                    "{}: node_exporter's textfile collector reads only files named *.prom",
                    path.display()
                ));
            }
            write_textfile(path, &text)?;
        }
        None => {
            let mut out = Out::new();
            out.bytes(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(exit::OK)
}

/// Replace `path` atomically: the collector reads it at any moment and must never see half a
/// file. A temporary file in the same directory (a rename does not cross file systems),
/// synced, made 0644 (node_exporter runs as another user; the text holds counts and names,
/// never stored values, so this is the one file cairn writes readable by others), renamed
/// over `path`, and the directory synced so that the rename survives a crash.
fn write_textfile(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let io = |what: &str, p: &Path| Failure::io(format!("{what} {}", p.display()));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cairn-metrics-")
        .tempfile_in(dir)
        .map_err(io("create a temporary file in", dir))?;
    tmp.write_all(text.as_bytes()).map_err(io("write", tmp.path()))?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io("chmod", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io("sync", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| Failure::Io(format!("rename the metrics to {}", path.display()), e.error))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync", dir))
}

pub fn doctor(ctx: &Ctx) -> Outcome {
    // Read-only: a health check must not change what it examines (no migration, no WAL switch,
    // no schema created on a server).
    let store = match ctx.open_with(Options::new().read_only(true)) {
        Ok(store) => store,
        // No file yet, or no schema on the server.
        Err(Failure::Cairn(cairn::Error::Io { path, source, .. }))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            note(format_args!("no store at {} yet; the first write creates it", path.display()));
            return Ok(exit::NO);
        }
        Err(e) => return Err(e),
    };
    let findings = store.doctor()?;
    let mut out = Out::new();
    let mut bad = false;
    for f in &findings {
        bad |= !f.ok;
        if ctx.json {
            out.json(&json!({ "check": f.check, "ok": f.ok, "detail": f.detail, "fix": f.fix }))?;
        } else {
            let mark = if f.ok { "ok  " } else { "FAIL" };
            out.line(format_args!("{mark}  {:<13} {}", f.check, f.detail))?;
            if let Some(fix) = &f.fix {
                out.line(format_args!("      {:<13} fix: {fix}", ""))?;
            }
        }
    }
    out.flush()?;
    Ok(if bad { exit::NO } else { exit::OK })
}

pub fn backup(ctx: &Ctx, dest: &Path) -> Outcome {
    ctx.open_existing("back up")?.backup(dest)?;
    Ok(exit::OK)
}

pub fn vacuum(ctx: &Ctx) -> Outcome {
    let store = ctx.open_existing("vacuum")?;
    let before = store.file_stats()?;
    store.vacuum()?;
    let after = store.file_stats()?;
    note(format_args!(
        "vacuumed {}: {} bytes (+{} of WAL) -> {} bytes",
        store.path().display(),
        before.db_bytes,
        before.wal_bytes,
        after.db_bytes
    ));
    Ok(exit::OK)
}
