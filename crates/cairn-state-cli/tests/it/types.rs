//! Values keep their type across the CLI, Rust and Python: the CLI stores text as text,
//! `incr` stores integers, `--type` says what a value is, and `get` prints a value's bytes
//! whoever wrote it.

use cairn::{Json, Store, Value};

use crate::Env;

#[test]
fn cli_values_read_back_in_rust_as_the_type_they_were_written_as() {
    let env = Env::new();
    env.ok(&["cache", "set", "greeting", "hello"], 0);
    env.ok(&["cache", "incr", "runs", "3"], 0);
    env.ok(&["cache", "set", "doc", r#"{"a":[1,2]}"#, "--type", "json"], 0);
    env.ok(&["cache", "set", "pi", "3.5", "--type", "float"], 0);
    env.ok(&["cache", "set", "n", "7", "--type", "int"], 0);
    env.ok(&["checkpoint", "set", "job", "page-3"], 0);
    assert_eq!(env.run_stdin(&["cache", "set", "blob"], b"\xff\x00").0, 0);
    let store = Store::open(env.db()).unwrap();
    let c = store.cache("default");
    assert_eq!(c.get::<Value>("greeting").unwrap(), Some(Value::Text("hello".into())));
    assert_eq!(c.get::<Value>("runs").unwrap(), Some(Value::Int(3)));
    assert_eq!(c.get::<Value>("doc").unwrap(), Some(Value::Json(r#"{"a":[1,2]}"#.into())));
    let Json(doc) = c.get::<Json<serde_json::Value>>("doc").unwrap().unwrap();
    assert_eq!(doc["a"][1], 2);
    assert_eq!(c.get::<Value>("pi").unwrap(), Some(Value::Float(3.5)));
    assert_eq!(c.get::<Value>("n").unwrap(), Some(Value::Int(7)));
    assert_eq!(c.get::<Value>("blob").unwrap(), Some(Value::Bytes(vec![0xff, 0])));
    assert_eq!(store.checkpoint("job").get::<Value>().unwrap(), Some(Value::Text("page-3".into())));
}

#[test]
fn values_written_from_rust_print_as_plain_text_numbers_or_json() {
    let env = Env::new();
    {
        let store = Store::open(env.db()).unwrap();
        let c = store.cache("default");
        c.set("s", "plain", None).unwrap();
        c.set("i", -12i64, None).unwrap();
        c.set("f", 0.1f64, None).unwrap();
        c.set("b", true, None).unwrap();
        c.set("j", Json(serde_json::json!({"k": "v"})), None).unwrap();
    }
    assert_eq!(env.ok(&["cache", "get", "s"], 0), "plain");
    assert_eq!(env.ok(&["cache", "get", "i"], 0), "-12");
    assert_eq!(env.ok(&["cache", "get", "f"], 0), "0.1");
    assert_eq!(env.ok(&["cache", "get", "b"], 0), "true");
    assert_eq!(env.ok(&["cache", "get", "j"], 0), r#"{"k":"v"}"#);
    assert_eq!(env.ok(&["cache", "incr", "i"], 0), "-11\n");
}

#[test]
fn a_value_that_is_not_of_its_declared_type_is_a_usage_error_and_stores_nothing() {
    let env = Env::new();
    for (kind, value) in [("int", "seven"), ("int", "1.5"), ("float", "x"), ("json", "{oops")] {
        let (code, _, err) = env.run(&["cache", "set", "k", value, "--type", kind]);
        assert_eq!(code, 2, "{kind} {value}: {err}");
        crate::assert_one_line_error(&err);
    }
    env.ok(&["cache", "get", "k"], 1);
}

#[test]
fn cache_list_streams_every_key_across_pages_as_lines_or_one_json_array() {
    let env = Env::new();
    let batch: String =
        (0..2_500).map(|i| format!("{{\"op\":\"set\",\"key\":\"k{i:04}\",\"value\":\"v\"}}\n")).collect();
    assert_eq!(env.run_stdin(&["batch"], batch.as_bytes()).0, 0);
    let lines = env.ok(&["cache", "list"], 0);
    let keys: Vec<&str> = lines.lines().collect();
    assert_eq!(keys.len(), 2_500);
    assert_eq!((keys[0], keys[999], keys[1000], keys[2499]), ("k0000", "k0999", "k1000", "k2499"));
    let json: Vec<String> = serde_json::from_str(&env.ok(&["--json", "cache", "list"], 0)).unwrap();
    assert_eq!(json, keys);
    assert_eq!(env.ok(&["--json", "cache", "list", "--prefix", "nothing"], 0), "[]\n");
}

#[test]
fn json_output_never_prints_nan_or_infinity_a_non_finite_float_is_null() {
    let env = Env::new();
    {
        let store = Store::open(env.db()).unwrap();
        let items = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
            .into_iter()
            .enumerate()
            .map(|(i, f)| cairn::QueueItem::new(format!("f{i}")).data(f).unwrap());
        store.ledger("default").enqueue_items(items).unwrap();
    }
    let list = env.ok(&["--json", "ledger", "list"], 0);
    for line in list.lines() {
        let item: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(item["data"], serde_json::Value::Null, "{line}");
    }
    assert_eq!(list.lines().count(), 3);
    let next = env.ok(&["--json", "ledger", "next", "--worker", "w"], 0);
    let claim: serde_json::Value = serde_json::from_str(&next).unwrap_or_else(|e| panic!("{next}: {e}"));
    assert_eq!((&claim["data"], &claim["data_kind"]), (&serde_json::Value::Null, &"float".into()));
    assert!(!list.contains("NaN") && !list.contains("inf") && !next.contains("NaN"), "{list}{next}");
}
