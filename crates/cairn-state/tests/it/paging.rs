//! Listing a large namespace a page at a time: every key once, in order, nothing skipped at
//! page boundaries, expired keys left out; on both engines.

use std::time::Duration;

use cairn::Error;

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
}
