//! Batches of operations from JSON lines (the CLI's `cairn batch`) applied in one transaction,
//! on both engines. (Parsing alone is tested beside the code.)

use cairn::{Batch, Error, ErrorKind};

use crate::contract;

fn parse(text: &str) -> Result<Batch, Error> {
    Batch::parse(text.as_bytes(), "dflt")
}

contract! {
    fn every_op_of_a_batch_applies_in_one_transaction(f) {
        let store = &f.store;
        store.cache("c").set("gone", "x", None)?;
        let batch = parse(
            r#"{"op":"set","ns":"c","key":"s","value":"text"}
               {"op":"set","ns":"c","key":"j","value":{"a":[1,2]}}
               {"op":"add","ns":"c","key":"s","value":"ignored"}
               {"op":"del","ns":"c","key":"gone"}
               {"op":"incr","key":"n","by":5}
               {"op":"incr","key":"n"}
               {"op":"touch","ns":"c","key":"s","ttl":"1h"}

               {"op":"mark","ns":"l","id":"1","result":"ok"}
               {"op":"fail","ns":"l","id":"2","error":"boom"}
               {"op":"mark","ns":"l","id":"3"}
               {"op":"ledger_del","ns":"l","id":"3"}
               {"op":"checkpoint","job":"j","value":"p1"}
               {"op":"checkpoint","job":"k","value":"p2"}
               {"op":"checkpoint_del","job":"k"}"#,
        )?;
        assert_eq!(store.apply_batch(&batch)?, 14);
        let other = f.reopen();
        assert_eq!(other.cache("c").get::<String>("s")?.as_deref(), Some("text"));
        assert_eq!(other.cache("c").get::<String>("j")?.as_deref(), Some(r#"{"a":[1,2]}"#));
        assert!(!other.cache("c").contains("gone")?);
        assert_eq!(other.cache("dflt").get::<i64>("n")?, Some(6));
        assert_eq!(other.ledger("l").result::<String>("1")?.as_deref(), Some("ok"));
        assert_eq!(other.ledger("l").item("2")?.map(|i| i.attempts), Some(1));
        assert!(other.ledger("l").item("3")?.is_none());
        assert_eq!(other.checkpoint("j").get::<String>()?.as_deref(), Some("p1"));
        assert_eq!(other.checkpoint("k").get::<String>()?, None);
        Ok(())
    }

    fn an_invalid_operation_rolls_back_the_batch_before_it(f) {
        let store = &f.store;
        let batch = parse(
            "{\"op\":\"set\",\"key\":\"a\",\"value\":\"1\"}\n{\"op\":\"mark\",\"ns\":\"l\",\"id\":\"x\"}\n\
             {\"op\":\"set\",\"key\":\"\",\"value\":\"1\"}",
        )?;
        let err = store.apply_batch(&batch).unwrap_err();
        assert!(err.to_string().contains("batch line 3"), "{err}");
        assert!(!store.cache("dflt").contains("a")?);
        assert!(!store.ledger("l").is_done("x")?);
        Ok(())
    }

    /// Found by the batch fuzz target: the error named the key but not the line.
    fn an_incr_of_a_non_number_in_a_batch_names_its_line_and_keeps_the_decode_kind(f) {
        let store = &f.store;
        store.cache("dflt").set("k", "text", None)?;
        let batch = parse("{\"op\":\"incr\",\"key\":\"n\"}\n{\"op\":\"incr\",\"key\":\"k\"}")?;
        let err = store.apply_batch(&batch).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
        assert!(err.to_string().contains("batch line 2; nothing was applied"), "{err}");
        assert!(!store.cache("dflt").contains("n")?);
        Ok(())
    }

    /// Runs of marks are applied together: a bad id in the middle of one still names its line,
    /// and nothing of the run or before it is applied.
    fn a_bad_id_in_a_run_of_marks_names_its_line(f) {
        let store = &f.store;
        let batch = parse(
            "{\"op\":\"set\",\"key\":\"a\",\"value\":\"1\"}\n{\"op\":\"mark\",\"id\":\"x\"}\n\
             {\"op\":\"mark\",\"id\":\"\"}\n{\"op\":\"mark\",\"id\":\"y\"}",
        )?;
        let err = store.apply_batch(&batch).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("batch line 3"), "{err}");
        assert!(!store.cache("dflt").contains("a")?);
        assert!(!store.ledger("dflt").is_done("x")?);
        Ok(())
    }

    /// Issue 19.5: a transaction of a million marks. On PostgreSQL each mark used to lock its
    /// key, and the server's shared lock table ran out near 13,000 ("out of shared memory",
    /// exit 8), failing other sessions' transactions too; a batch sends runs of marks
    /// together, and a transaction locks at most a bounded number of keys.
    fn a_batch_of_a_million_marks_applies_in_one_transaction(f) {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(40 * 1_000_000);
        for i in 0..1_000_000 {
            let ns = if i % 100_000 == 0 { "other" } else { "big" };
            writeln!(text, r#"{{"op":"mark","ns":"{ns}","id":"{i}"}}"#).expect("a String takes writes");
        }
        text.push_str(r#"{"op":"set","key":"after","value":"x"}"#);
        let batch = parse(&text)?;
        assert_eq!(f.store.apply_batch(&batch)?, 1_000_001);
        let other = f.reopen();
        assert_eq!(other.ledger("big").counts()?.done, 999_990);
        assert_eq!(other.ledger("other").counts()?.done, 10);
        assert!(other.cache("dflt").contains("after")?);
        Ok(())
    }
}
