//! `cairn cache ...`

use std::time::Duration;

use cairn::{Cache, Store};
use serde_json::json;

use super::{value_or_stdin, yes_no, Ctx};
use crate::cli::{CacheCmd, SetArgs};
use crate::exit;
use crate::output::{Out, Outcome};

/// Keys per read for `list`.
const LIST_PAGE: usize = 1000;

pub fn run(ctx: &Ctx, cmd: CacheCmd) -> Outcome {
    let store = match cmd {
        CacheCmd::Get { .. } | CacheCmd::List { .. } => ctx.open_for_reading()?,
        _ => ctx.open()?,
    };
    let mut run = Run { cache: store.cache(ctx.ns()), out: Out::new(), json: ctx.json };
    let code = match cmd {
        CacheCmd::Get { key } => run.get(&key),
        CacheCmd::Set(a) => run.set(a),
        CacheCmd::Add(a) => run.add(a),
        CacheCmd::Del { key } => run.del(&key),
        CacheCmd::Incr { key, by, ttl } => run.incr(&key, by, ttl),
        CacheCmd::Touch { key, ttl } => run.touch(&key, ttl),
        CacheCmd::List { prefix } => run.list(&prefix),
        CacheCmd::Sweep => run.sweep(&store, ctx.ns.is_none()),
        CacheCmd::Clear { prefix } => run.clear(prefix.as_deref()),
    }?;
    run.out.flush()?;
    Ok(code)
}

/// What a cache subcommand works with: the namespace's cache, stdout, and `--json`.
struct Run<'s> {
    cache: Cache<'s>,
    out: Out,
    json: bool,
}

impl Run<'_> {
    /// `get`: print a value's exact bytes; exit 1 on a miss.
    fn get(&mut self, key: &str) -> Outcome {
        match self.cache.get::<Vec<u8>>(key)? {
            Some(value) => {
                self.out.value(&value)?;
                Ok(exit::OK)
            }
            None => Ok(exit::NO),
        }
    }

    /// `set`: store a value (the argument, or stdin), replacing any previous one.
    fn set(&mut self, a: SetArgs) -> Outcome {
        let value = value_or_stdin(a.value, &a.kind)?;
        self.cache.set(&a.key, value, a.ttl)?;
        Ok(exit::OK)
    }

    /// `add`: store a value only if the key is absent; exit 1 if it is present.
    fn add(&mut self, a: SetArgs) -> Outcome {
        let value = value_or_stdin(a.value, &a.kind)?;
        Ok(yes_no(self.cache.add(&a.key, value, a.ttl)?))
    }

    /// `del`: delete a key; exit 1 if it was not there.
    fn del(&mut self, key: &str) -> Outcome {
        Ok(yes_no(self.cache.delete(key)?))
    }

    /// `incr`: add to an integer value; print the result.
    fn incr(&mut self, key: &str, by: i64, ttl: Option<Duration>) -> Outcome {
        let n = self.cache.incr(key, by, ttl)?;
        self.out.line(n)?;
        Ok(exit::OK)
    }

    /// `touch`: give an entry a new expiry; exit 1 if it is missing.
    fn touch(&mut self, key: &str, ttl: Option<Duration>) -> Outcome {
        Ok(yes_no(self.cache.touch(key, ttl)?))
    }

    /// `list`: print the keys starting with `prefix`, sorted, one per line (with --json, one
    /// array).
    fn list(&mut self, prefix: &str) -> Outcome {
        // A page at a time, so a namespace of millions of keys streams in bounded memory.
        let mut after: Option<String> = None;
        let mut first = true;
        if self.json {
            self.out.bytes(b"[")?;
        }
        loop {
            let page = self.cache.keys_page(prefix, after.as_deref(), LIST_PAGE)?;
            for k in &page {
                if self.json {
                    self.out.bytes(if first { b"" } else { b"," })?;
                    self.out.bytes(json!(k).to_string().as_bytes())?;
                } else {
                    self.out.line(k)?;
                }
                first = false;
            }
            if page.len() < LIST_PAGE {
                break;
            }
            after = page.last().cloned();
        }
        if self.json {
            self.out.bytes(b"]\n")?;
        }
        Ok(exit::OK)
    }

    /// `sweep`: remove expired entries of the namespace, or of every namespace when no --ns
    /// was given; print how many.
    fn sweep(&mut self, store: &Store, every_namespace: bool) -> Outcome {
        let n = if every_namespace { store.sweep()? } else { self.cache.sweep()? };
        self.out.line(n)?;
        Ok(exit::OK)
    }

    /// `clear`: remove every entry of the namespace, or those whose key starts with `prefix`;
    /// print how many.
    fn clear(&mut self, prefix: Option<&str>) -> Outcome {
        let n = match prefix {
            Some(p) => self.cache.clear_prefix(p)?,
            None => self.cache.clear()?,
        };
        self.out.line(n)?;
        Ok(exit::OK)
    }
}
