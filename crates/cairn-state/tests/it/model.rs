//! Property test: the cache behaves like a plain map with expiry times, under any sequence of
//! operations and clock moves; on both engines. One store serves a whole run, each case in a
//! namespace of its own: a fresh store per case would cost a schema per case on PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn::Clock;
use proptest::prelude::*;

use crate::contract;
use crate::engines::{run_model, Fixture};

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8, Option<u16>),
    Add(u8, u8, Option<u16>),
    Delete(u8),
    Touch(u8, Option<u16>),
    Incr(u8, i8),
    Get(u8),
    Advance(u16),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..6;
    let ttl = proptest::option::of(1u16..500);
    prop_oneof![
        (key.clone(), any::<u8>(), ttl.clone()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        (key.clone(), any::<u8>(), ttl.clone()).prop_map(|(k, v, t)| Op::Add(k, v, t)),
        key.clone().prop_map(Op::Delete),
        (key.clone(), ttl).prop_map(|(k, t)| Op::Touch(k, t)),
        (key.clone(), any::<i8>()).prop_map(|(k, b)| Op::Incr(k, b)),
        key.prop_map(Op::Get),
        (0u16..400).prop_map(Op::Advance),
        Just(Op::Sweep),
    ]
}

/// The reference: key -> (value, expiry).
#[derive(Default)]
struct Model(BTreeMap<String, (Vec<u8>, Option<i64>)>);

impl Model {
    fn fresh(&self, k: &str, now: i64) -> Option<&(Vec<u8>, Option<i64>)> {
        self.0.get(k).filter(|(_, exp)| exp.is_none_or(|e| e > now))
    }
}

contract! {
    fn the_cache_agrees_with_a_map_model_under_any_operations(f) {
        run_model(f, file!(), 64, "p", op(), one_case);
        Ok(())
    }
}

/// One sequence of operations, in namespace `ns`.
fn one_case(f: &Fixture, ns: &str, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = &f.clock;
    let c = f.store.cache(ns);
    let mut m = Model::default();
    let ms = |t: Option<u16>| t.map(|t| Duration::from_millis(u64::from(t)));
    for op in ops {
        let now = clock.now_millis();
        match op {
            Op::Set(k, v, t) => {
                c.set(&k.to_string(), vec![v], ms(t)).expect("set");
                m.0.insert(k.to_string(), (vec![v], t.map(|t| now + i64::from(t))));
            }
            Op::Add(k, v, t) => {
                let added = c.add(&k.to_string(), vec![v], ms(t)).expect("add");
                let absent = m.fresh(&k.to_string(), now).is_none();
                prop_assert_eq!(added, absent);
                if absent {
                    m.0.insert(k.to_string(), (vec![v], t.map(|t| now + i64::from(t))));
                }
            }
            Op::Delete(k) => {
                let was = m.fresh(&k.to_string(), now).is_some();
                prop_assert_eq!(c.delete(&k.to_string()).expect("delete"), was);
                m.0.remove(&k.to_string());
            }
            Op::Touch(k, t) => {
                let was = m.fresh(&k.to_string(), now).is_some();
                prop_assert_eq!(c.touch(&k.to_string(), ms(t)).expect("touch"), was);
                if was {
                    if let Some(e) = m.0.get_mut(&k.to_string()) {
                        e.1 = t.map(|t| now + i64::from(t));
                    }
                }
            }
            Op::Incr(k, by) => {
                let key = k.to_string();
                let current = m.fresh(&key, now).cloned();
                let result = c.incr(&key, i64::from(by), None);
                match current {
                    None => {
                        prop_assert_eq!(result.expect("incr"), i64::from(by));
                        m.0.insert(key, (by.to_string().into_bytes(), None));
                    }
                    Some((bytes, exp)) => {
                        match std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<i64>().ok()) {
                            Some(n) => {
                                prop_assert_eq!(result.expect("incr"), n + i64::from(by));
                                m.0.insert(key, ((n + i64::from(by)).to_string().into_bytes(), exp));
                            }
                            None => prop_assert_eq!(
                                result.expect_err("not an integer").kind(),
                                cairn::ErrorKind::Decode
                            ),
                        }
                    }
                }
            }
            Op::Get(k) => {
                let want = m.fresh(&k.to_string(), now).map(|(v, _)| v.clone());
                prop_assert_eq!(c.get::<Vec<u8>>(&k.to_string()).expect("get"), want);
            }
            Op::Advance(d) => clock.advance(Duration::from_millis(u64::from(d))),
            Op::Sweep => {
                // Writes sweep a few expired entries in passing, so an explicit sweep may
                // find fewer than the model holds; afterwards none may remain.
                let expired = m.0.values().filter(|(_, e)| e.is_some_and(|e| e <= now)).count() as u64;
                prop_assert!(c.sweep().expect("sweep") <= expired);
                m.0.retain(|_, (_, e)| e.is_none_or(|e| e > now));
                prop_assert_eq!(c.stats().expect("stats").entries, m.0.len() as u64);
            }
        }
        let now = clock.now_millis();
        let keys: Vec<String> =
            m.0.iter().filter(|(_, (_, e))| e.is_none_or(|e| e > now)).map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(c.keys("").expect("keys"), keys);
    }
    Ok(())
}
