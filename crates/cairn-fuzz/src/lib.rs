//! What cairn's fuzz targets check. Each function takes the fuzzer's bytes and panics when a
//! property fails; any other panic inside cairn is a finding too.
//!
//! The functions live here, on stable Rust, so that the corpora kept in `fuzz/corpus/` are
//! replayed by `cargo test` on every machine (`tests/corpus.rs`), while `fuzz/` wraps the same
//! functions for `cargo +nightly fuzz run`.

use std::collections::HashMap;
use std::time::Duration;

use cairn::{Batch, BatchOp as Op};
use cairn::{ErrorKind, ManualClock, Options, Store};

/// A fuzz target's checks: panics when a property fails.
pub type Check = fn(&[u8]);

/// The fuzz targets by name, as `fuzz/fuzz_targets/` and `fuzz/corpus/` name them.
pub const TARGETS: &[(&str, Check)] =
    &[("duration", duration), ("batch", batch), ("values", values), ("store_file", store_file)];

/// `parse_duration` on any text: never a panic; an error is `InvalidInput` and quotes the
/// text; a bare number is refused; a duration it accepts reads back the same from its
/// canonical spelling (`format_duration`).
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match cairn::parse_duration(text) {
        Ok(d) => {
            assert!(!text.trim().chars().all(|c| c.is_ascii_digit()), "a bare number {text:?} was accepted");
            let canonical = cairn::format_duration(d);
            assert_eq!(cairn::parse_duration(&canonical).ok(), Some(d), "{text:?} -> {canonical:?}");
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{text:?}: {e}");
            assert!(e.to_string().contains("invalid duration"), "{text:?}: {e}");
        }
    }
}

/// A store with one of everything a batch can touch, on a clock that does not move.
fn seeded_store() -> Store {
    let store =
        Options::new().clock(ManualClock::new(1_700_000_000_000)).open_in_memory().expect("in-memory store");
    store.cache("default").set("k", "seed", None).expect("seed");
    store.cache("default").set("n", "41", None).expect("seed");
    store.ledger("default").mark_done("1").expect("seed");
    store.checkpoint("job").set("seed").expect("seed");
    store
}

/// What a batch operation touches, and its state there, as comparable bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    Key(String, String),
    Item(String, String),
    Job(String),
}

fn target(op: &Op, default_ns: &str) -> Option<Target> {
    let ns = |n: &Option<String>| n.clone().unwrap_or_else(|| default_ns.to_owned());
    Some(match op {
        Op::Set { ns: n, key, .. }
        | Op::Add { ns: n, key, .. }
        | Op::Del { ns: n, key }
        | Op::Incr { ns: n, key, .. }
        | Op::Touch { ns: n, key, .. } => Target::Key(ns(n), key.clone()),
        Op::Mark { ns: n, id, .. } | Op::Fail { ns: n, id, .. } | Op::LedgerDel { ns: n, id } => {
            Target::Item(ns(n), id.clone())
        }
        Op::Checkpoint { job, .. } | Op::CheckpointDel { job } => Target::Job(job.clone()),
        _ => return None,
    })
}

/// The state at `t`, or `None` when the name itself is invalid (nothing can be stored there).
fn state(store: &Store, t: &Target) -> Option<String> {
    let got = match t {
        Target::Key(ns, key) => store.cache(ns).get::<Vec<u8>>(key).map(|v| format!("{v:?}")),
        Target::Item(ns, id) => store.ledger(ns).item(id).map(|i| format!("{i:?}")),
        Target::Job(job) => store.checkpoint(job).get::<Vec<u8>>().map(|v| format!("{v:?}")),
    };
    match got {
        Ok(s) => Some(s),
        Err(e) if e.kind() == ErrorKind::InvalidInput => None,
        Err(e) => panic!("reading {t:?}: {e}"),
    }
}

/// `cairn batch` input: parsing never panics and a malformed line is an `InvalidInput` error
/// naming its line; a parsed batch applies all or nothing: on error every key, item and job
/// it names is as before, and the error is a refusal of the input (`InvalidInput`, or
/// `Decode` for an `incr` of a non-number) naming the line; on success
/// every operation counted, and a final `set` or `checkpoint` of a name is what reads back.
pub fn batch(data: &[u8]) {
    let parsed = match Batch::parse(data, "default") {
        Ok(b) => b,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("line "), "{e}");
            return;
        }
    };
    let store = seeded_store();
    let targets: Vec<Target> = parsed.ops().filter_map(|(_, op)| target(op, parsed.default_ns())).collect();
    let before: Vec<Option<String>> = targets.iter().map(|t| state(&store, t)).collect();
    match store.apply_batch(&parsed) {
        Ok(n) => {
            assert_eq!(n, parsed.len());
            let mut last: HashMap<Target, &Op> = HashMap::new();
            for (_, op) in parsed.ops() {
                if let Some(t) = target(op, parsed.default_ns()) {
                    last.insert(t, op);
                }
            }
            for (t, op) in last {
                let bytes = |v: &serde_json::Value| match v {
                    serde_json::Value::String(s) => s.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                match (op, &t) {
                    (Op::Set { value, .. }, Target::Key(ns, key)) => {
                        assert_eq!(store.cache(ns).get::<Vec<u8>>(key).expect("get"), Some(bytes(value)));
                    }
                    (Op::Checkpoint { value, .. }, Target::Job(job)) => {
                        assert_eq!(store.checkpoint(job).get::<Vec<u8>>().expect("get"), Some(bytes(value)));
                    }
                    (Op::Mark { .. }, Target::Item(ns, id)) => {
                        assert!(store.ledger(ns).is_done(id).expect("is_done"), "{id:?} not done");
                    }
                    _ => {}
                }
            }
        }
        Err(e) => {
            assert!(matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Decode), "{e}");
            assert!(e.to_string().contains("batch line "), "no line number in: {e}");
            let after: Vec<Option<String>> = targets.iter().map(|t| state(&store, t)).collect();
            assert_eq!(before, after, "a failed batch changed the store: {e}");
        }
    }
}

/// Splits the fuzzer's bytes into a namespace, a key and a value: one length byte for each
/// name, the rest is the value.
fn split(data: &[u8]) -> Option<(String, String, &[u8])> {
    let (&n, rest) = data.split_first()?;
    let (ns, rest) = rest.split_at_checked(usize::from(n % 32))?;
    let (&k, rest) = rest.split_first()?;
    let (key, value) = rest.split_at_checked(usize::from(k))?;
    Some((String::from_utf8_lossy(ns).into_owned(), String::from_utf8_lossy(key).into_owned(), value))
}

/// Keys, names and values as scripts send them: any value's bytes read back exactly; a name
/// is either accepted everywhere or refused everywhere as `InvalidInput`, never an internal
/// error; listing by a prefix returns exactly the keys that start with it, whatever `%`,
/// `_` or `\` the prefix holds.
pub fn values(data: &[u8]) {
    let Some((ns, key, value)) = split(data) else { return };
    let store =
        Options::new().clock(ManualClock::new(1_700_000_000_000)).open_in_memory().expect("in-memory store");
    let cache = store.cache(&ns);
    match cache.set(&key, value, Some(Duration::from_secs(60))) {
        Ok(()) => {
            assert_eq!(cache.get::<Vec<u8>>(&key).expect("get").as_deref(), Some(value), "value changed");
            // Neighbours that a pattern-matching prefix would wrongly include.
            for other in ["%", "_", "\\", "a"] {
                let _ = cache.set(&format!("{key}{other}"), "x", None);
                let _ = cache.set(&format!("{other}{key}"), "x", None);
            }
            for cut in [0, key.len() / 2, key.len()] {
                let Some(prefix) = key.get(..cut) else { continue };
                let listed = cache.keys(prefix).expect("keys");
                assert!(listed.contains(&key), "{key:?} not listed under {prefix:?}");
                assert!(listed.iter().all(|k| k.starts_with(prefix)), "{listed:?} under {prefix:?}");
            }
            assert!(cache.delete(&key).expect("delete"));
            assert_eq!(cache.get::<Vec<u8>>(&key).expect("get"), None);
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "set {ns:?}/{key:?}: {e}");
            assert!(matches!(cache.get::<Vec<u8>>(&key), Err(e) if e.kind() == ErrorKind::InvalidInput));
        }
    }
    // The same names as ledger ids and checkpoint jobs, and the value as a result.
    let ledger = store.ledger(&ns);
    match ledger.mark_done_with(&key, value) {
        Ok(_) => {
            assert!(ledger.is_done(&key).expect("is_done"));
            assert_eq!(ledger.result::<Vec<u8>>(&key).expect("result").as_deref(), Some(value));
            let fresh = ledger.filter_new([key.as_str(), "\u{1}never"]).expect("filter_new");
            assert_eq!(fresh, ["\u{1}never"]);
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "mark {ns:?}/{key:?}: {e}"),
    }
    match store.checkpoint(&key).set(value) {
        Ok(()) => assert_eq!(store.checkpoint(&key).get::<Vec<u8>>().expect("get").as_deref(), Some(value)),
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "checkpoint {key:?}: {e}"),
    }
}

/// A database file with any bytes in it, as a disk, a bad copy or another program leaves one:
/// opening it is a typed refusal or a store; a file refused as not ours (not SQLite, another
/// application's, a newer schema) is left byte for byte as it was; on a store that opened,
/// reads, writes and the integrity check answer or fail with a typed error, never an internal
/// one and never a panic.
pub fn store_file(data: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    std::fs::write(&path, data).expect("write the file");
    let store = match Store::open(&path) {
        Ok(store) => store,
        Err(e) => {
            let kind = e.kind();
            assert_ne!(kind, ErrorKind::Internal, "open: {e}");
            if matches!(kind, ErrorKind::NotADatabase | ErrorKind::ForeignDatabase | ErrorKind::SchemaTooNew)
            {
                assert_eq!(
                    std::fs::read(&path).expect("read back"),
                    data,
                    "a refused file was changed ({e})"
                );
            }
            return;
        }
    };
    let typed = |what: &str, r: cairn::Result<()>| {
        if let Err(e) = r {
            assert_ne!(e.kind(), ErrorKind::Internal, "{what}: {e}");
        }
    };
    typed("get", store.cache("default").get::<Vec<u8>>("k").map(drop));
    typed("keys", store.cache("default").keys("").map(drop));
    typed("is_done", store.ledger("default").is_done("1").map(drop));
    typed("counts", store.ledger("default").counts().map(drop));
    typed("checkpoint", store.checkpoint("job").get::<Vec<u8>>().map(drop));
    typed("set", store.cache("default").set("k", "v", None));
    typed("mark", store.ledger("default").mark_done("2").map(drop));
    typed("integrity_check", store.integrity_check().map(drop));
    typed("stats", store.stats().map(drop));
}
