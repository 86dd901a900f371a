//! `cairn cache ...`

use serde_json::json;

use super::{value_or_stdin, yes_no, Ctx};
use crate::cli::CacheCmd;
use crate::exit;
use crate::output::{Out, Outcome};

/// Keys per read for `list`.
const LIST_PAGE: usize = 1000;

pub fn run(ctx: &Ctx, cmd: CacheCmd) -> Outcome {
    let store = match cmd {
        CacheCmd::Get { .. } | CacheCmd::List { .. } => ctx.open_for_reading()?,
        _ => ctx.open()?,
    };
    let cache = store.cache(ctx.ns());
    let mut out = Out::new();
    let code = match cmd {
        CacheCmd::Get { key } => match cache.get::<Vec<u8>>(&key)? {
            Some(value) => {
                out.bytes(&value)?;
                exit::OK
            }
            None => exit::NO,
        },
        CacheCmd::Set(a) => {
            let value = value_or_stdin(a.value, &a.kind)?;
            cache.set(&a.key, value, a.ttl)?;
            exit::OK
        }
        CacheCmd::Add(a) => {
            let value = value_or_stdin(a.value, &a.kind)?;
            yes_no(cache.add(&a.key, value, a.ttl)?)
        }
        CacheCmd::Del { key } => yes_no(cache.delete(&key)?),
        CacheCmd::Incr { key, by, ttl } => {
            let n = cache.incr(&key, by, ttl)?;
            out.line(n)?;
            exit::OK
        }
        CacheCmd::Touch { key, ttl } => yes_no(cache.touch(&key, ttl)?),
        CacheCmd::List { prefix } => {
            // A page at a time, so a namespace of millions of keys streams in bounded memory.
            let mut after: Option<String> = None;
            let mut first = true;
            if ctx.json {
                out.bytes(b"[")?;
            }
            loop {
                let page = cache.keys_page(&prefix, after.as_deref(), LIST_PAGE)?;
                for k in &page {
                    if ctx.json {
                        out.bytes(if first { b"" } else { b"," })?;
                        out.bytes(json!(k).to_string().as_bytes())?;
                    } else {
                        out.line(k)?;
                    }
                    first = false;
                }
                if page.len() < LIST_PAGE {
                    break;
                }
                after = page.last().cloned();
            }
            if ctx.json {
                out.bytes(b"]\n")?;
            }
            exit::OK
        }
        CacheCmd::Sweep => {
            let n = if ctx.ns.is_some() { cache.sweep()? } else { store.sweep()? };
            out.line(n)?;
            exit::OK
        }
        CacheCmd::Clear { prefix } => {
            let n = match prefix {
                Some(p) => cache.clear_prefix(&p)?,
                None => cache.clear()?,
            };
            out.line(n)?;
            exit::OK
        }
    };
    out.flush()?;
    Ok(code)
}
