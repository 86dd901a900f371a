//! Listing a large namespace a page at a time: every key once, in order, nothing skipped at
//! page boundaries, expired keys left out; on both engines.

use std::time::Duration;

use cairn::{Error, ErrorKind, ItemState, PAGE_SCAN_ROWS};

use crate::contract;

contract! {
    fn keys_pages_cover_every_fresh_key_with_the_prefix_once_in_order(f) {
        let (store, clock) = (&f.store, &f.clock);
        let cache = store.cache("c");
        store.transaction(|tx| {
            let c = tx.cache("c");
            for i in 0..2_345 {
                c.set(&format!("k/{i:05}"), "v", None)?;
                c.set(&format!("other/{i}"), "v", None)?;
            }
            c.set("k/zz-expiring", "v", Duration::from_secs(1))?;
            Ok::<_, Error>(())
        })?;
        clock.advance(Duration::from_secs(2));
        for limit in [1, 7, 1_000, 5_000] {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = cache.keys_page("k/", after.as_deref(), limit)?;
                assert!(page.len() <= limit);
                all.extend(page.iter().cloned());
                if page.len() < limit {
                    break;
                }
                after = page.last().cloned();
            }
            assert_eq!(all, cache.keys("k/")?, "limit {limit}");
            assert_eq!(all.len(), 2_345, "limit {limit}");
            assert!(all.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(cache.keys_page("", Some("other/"), 1)?, ["other/0"]);
        Ok(())
    }

    fn ledger_pages_cover_every_item_with_the_prefix_once_in_order_whatever_the_limit(f) {
        let store = &f.store;
        let l = store.ledger("q").max_attempts(1);
        store.transaction(|tx| {
            let t = tx.ledger("q");
            t.enqueue((0..1_234).map(|i| format!("a/{i:05}")))?;
            t.enqueue((0..50).map(|i| format!("b/{i}")))?;
            // The prefix itself is an id, and ids just below it stay out.
            t.enqueue(["a/", "a", "a.", "a/\u{7f}"])?;
            Ok::<_, Error>(())
        })?;
        for limit in [1, 7, 500, 5_000] {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            for pages in 0.. {
                assert!(pages <= 1_240, "still paging after {pages} pages");
                let page = l.page(None, "a/", after.as_deref(), limit)?;
                assert!(page.items.len() <= limit);
                all.extend(page.items.into_iter().map(|i| i.id));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let mut want: Vec<String> = vec!["a/".into()];
            want.extend((0..1_234).map(|i| format!("a/{i:05}")));
            want.push("a/\u{7f}".into());
            assert_eq!(all, want, "limit {limit}");
        }
        Ok(())
    }

    fn ledger_pages_filter_by_state_and_stay_bounded_when_few_items_match(f) {
        let store = &f.store;
        let l = store.ledger("q").max_attempts(1);
        let n = PAGE_SCAN_ROWS + 2_000;
        store.transaction(|tx| {
            let t = tx.ledger("q");
            t.mark_done_many((0..n).map(|i| format!("i{i:06}")))?;
            t.enqueue(["i000003x", "zz-last"])?;
            Ok::<_, Error>(())
        })?;
        assert_eq!(l.fail("zz-last", "boom")?, ItemState::Failed);
        // Only two pending items: the first page reads PAGE_SCAN_ROWS items and stops short.
        let first = l.page(Some(ItemState::Pending), "", None, 50)?;
        assert_eq!(first.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i000003x"]);
        let next = first.next.expect("more to read");
        let rest = l.page(Some(ItemState::Pending), "", Some(&next), 50)?;
        assert!(rest.items.is_empty(), "{:?}", rest.items);
        assert_eq!(rest.next, None);
        let failed = l.page(Some(ItemState::Failed), "zz", None, 50)?;
        assert_eq!(failed.items.len(), 1);
        assert_eq!(failed.items[0].error.as_deref(), Some("boom"));
        assert_eq!(l.page(Some(ItemState::Done), "i0000", None, 500)?.items.len(), 100);
        let long = "x".repeat(cairn::MAX_ID_BYTES + 1);
        assert_eq!(l.page(None, &long, None, 10).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(l.page(None, "a\0", None, 10).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(store.ledger("").page(None, "", None, 10).unwrap_err().kind(), ErrorKind::InvalidInput);
        Ok(())
    }
}
