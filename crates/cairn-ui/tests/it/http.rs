//! Every route over HTTP, on a real server: the good requests, and the bad ones answered with
//! the right status and nothing changed.

use std::time::Duration;

use cairn::{ItemState, JobEnd, Schedule, Store};

use crate::Ui;

/// A store with something in every part: queues `orders` (o-1 pending, o-2 failed, o-3
/// pending) and `mail` (m-1 pending, m-2 done), a cache entry, a job run, a run with two
/// steps done and a third failed.
pub(crate) fn seed(store: &Store) {
    let orders = store.ledger("orders").max_attempts(1);
    orders.enqueue(["o-1", "o-2", "o-3"]).unwrap();
    assert_eq!(orders.fail("o-2", "HTTP 502 from <upstream>").unwrap(), ItemState::Failed);
    store.ledger("mail").enqueue(["m-1"]).unwrap();
    store.ledger("mail").mark_done("m-2").unwrap();
    store.cache("pages").set("https://example.com", "<html>", None).unwrap();
    let job = store.job("nightly", Schedule::every(Duration::from_secs(3600)).unwrap()).unwrap();
    job.run(|_| JobEnd::status(0)).unwrap();
    let mut run = store.run("deploy-1").unwrap();
    run.step("build", || Ok::<_, cairn::Error>("built".to_owned())).unwrap();
    run.step("test", || Ok::<_, cairn::Error>("passed".to_owned())).unwrap();
    let failed: Result<String, Oops> = run.step("ship", || Err(Oops("no route to host".into())));
    assert!(failed.is_err());
    run.fail("ship failed").unwrap();
}

/// A step's own error.
#[derive(Debug)]
pub(crate) struct Oops(pub(crate) String);

impl From<cairn::Error> for Oops {
    fn from(e: cairn::Error) -> Self {
        Oops(e.to_string())
    }
}

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file store seeded, and a server over it.
pub(crate) fn fixture(read_only: bool) -> (tempfile::TempDir, Store, Ui) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    seed(&store);
    let ui = Ui::start(path.to_str().unwrap(), read_only);
    (dir, store, ui)
}

fn state(store: &Store, ns: &str, id: &str) -> Option<ItemState> {
    store.ledger(ns).item(id).unwrap().map(|i| i.state)
}

#[test]
fn the_overview_shows_queues_with_counts_caches_locks_jobs_and_runs() {
    let (_dir, store, ui) = fixture(false);
    let _lock = store.try_lock("nightly-export", Duration::from_secs(600)).unwrap().unwrap();
    let r = ui.get("/");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<tr data-ns=\"orders\">"), "{}", r.body);
    assert!(r.body.contains("<tr data-ns=\"mail\">"));
    // orders: 2 pending, 1 failed.
    assert!(r.body.contains("data-state=\"failed\"><a href=\"/queue/orders?token="), "{}", r.body);
    assert!(r.body.contains("&amp;state=failed\">1</a>"));
    assert!(r.body.contains("<tr data-ns=\"pages\">"), "the cache");
    assert!(r.body.contains("<tr data-lock=\"nightly-export\">"), "the held lock");
    assert!(r.body.contains("<tr data-job=\"nightly\">") && r.body.contains("data-state=\"ok\""), "the job");
    assert!(r.body.contains("<tr data-run=\"deploy-1\">"), "the run");
    assert!(r.body.contains("data-refresh"), "the overview refreshes itself");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[test]
fn every_page_refuses_a_missing_or_wrong_token_with_403_and_shows_nothing() {
    let (_dir, _store, ui) = fixture(false);
    let wrong = "0".repeat(32);
    for path in ["/", "/queue/orders", "/run/deploy-1", "/job/nightly", "/nope"] {
        let r = ui.raw("GET", path, None);
        assert_eq!(r.status, 403, "{path} without a token");
        assert!(!r.body.contains("o-2") && !r.body.contains("deploy-1"), "{path}: {}", r.body);
        let r = ui.raw("GET", &format!("{path}?token={wrong}"), None);
        assert_eq!(r.status, 403, "{path} with a wrong token");
        let r = ui.raw("GET", &format!("{path}?token={}", &ui.token[..31]), None);
        assert_eq!(r.status, 403, "{path} with a token's prefix");
    }
}

#[test]
fn a_post_without_the_token_in_its_form_is_refused_and_changes_nothing() {
    let (_dir, store, ui) = fixture(false);
    let wrong = "f".repeat(32);
    for (target, body) in [
        ("/queue/orders/retry".to_owned(), "id=o-2".to_owned()),
        ("/queue/orders/retry".to_owned(), format!("id=o-2&token={wrong}")),
        // The token in the URL is not enough for a POST: it must be in the form.
        (format!("/queue/orders/retry?token={}", ui.token), "id=o-2".to_owned()),
    ] {
        let r = ui.raw("POST", &target, Some(&body));
        assert_eq!(r.status, 403, "{target} {body}");
    }
    assert_eq!(state(&store, "orders", "o-2"), Some(ItemState::Failed));
    let r = ui.raw("POST", "/queue/orders/pause", Some("token="));
    assert_eq!(r.status, 403);
    assert_eq!(store.ledger("orders").paused().unwrap(), None);
    let r = ui.raw("POST", "/run/deploy-1/reset", Some("from=build"));
    assert_eq!(r.status, 403);
    assert_eq!(store.runs().get("deploy-1").unwrap().unwrap().steps.len(), 3);
}

#[test]
fn a_get_on_an_action_is_405_and_changes_nothing_and_a_post_on_a_page_too() {
    let (_dir, store, ui) = fixture(false);
    for action in ["retry", "cancel", "delete", "pause", "resume"] {
        let r = ui.get(&format!("/queue/orders/{action}?id=o-2"));
        assert_eq!(r.status, 405, "{action}");
        assert_eq!(r.header("allow"), Some("POST"));
    }
    let r = ui.get("/run/deploy-1/reset?from=build");
    assert_eq!(r.status, 405);
    assert_eq!(state(&store, "orders", "o-2"), Some(ItemState::Failed));
    assert_eq!(store.ledger("orders").paused().unwrap(), None);
    assert_eq!(store.runs().get("deploy-1").unwrap().unwrap().steps.len(), 3);
    for page in ["/", "/queue/orders", "/run/deploy-1", "/job/nightly"] {
        let r = ui.post(page, "");
        assert_eq!(r.status, 405, "{page}");
        assert_eq!(r.header("allow"), Some("GET"));
    }
}

#[test]
fn retry_puts_a_failed_item_back_in_the_queue_and_redirects_to_the_queue() {
    let (_dir, store, ui) = fixture(false);
    let r = ui.post("/queue/orders/retry", "id=o-2&state=failed");
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.header("location").unwrap();
    assert!(to.starts_with(&format!("/queue/orders?token={}&state=failed&msg=", ui.token)), "{to}");
    assert_eq!(state(&store, "orders", "o-2"), Some(ItemState::Pending));
    let page = ui.raw("GET", to, None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("o-2 queued again"), "{}", page.body);
    // A pending item is not retried: said, and left alone.
    let r = ui.post("/queue/orders/retry", "id=o-1");
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().contains("left%20as%20it%20was"));
}

#[test]
fn cancel_delete_pause_and_resume_do_what_they_say() {
    let (_dir, store, ui) = fixture(false);
    assert_eq!(ui.post("/queue/orders/cancel", "id=o-1").status, 303);
    assert_eq!(state(&store, "orders", "o-1"), Some(ItemState::Cancelled));
    assert_eq!(ui.post("/queue/orders/delete", "id=o-3").status, 303);
    assert_eq!(state(&store, "orders", "o-3"), None);
    assert_eq!(ui.post("/queue/orders/pause", "").status, 303);
    assert!(store.ledger("orders").paused().unwrap().is_some());
    assert!(ui.get("/queue/orders").body.contains("data-action=\"resume\""));
    assert_eq!(ui.post("/queue/orders/resume", "").status, 303);
    assert_eq!(store.ledger("orders").paused().unwrap(), None);
    // Cancelling a done item is bad input: 400, and it stays done.
    assert_eq!(ui.post("/queue/mail/cancel", "id=m-2").status, 400);
    assert_eq!(state(&store, "mail", "m-2"), Some(ItemState::Done));
}

#[test]
fn deleting_the_last_item_of_a_namespace_goes_back_to_the_overview() {
    let (_dir, store, ui) = fixture(false);
    store.ledger("solo").enqueue(["only"]).unwrap();
    let r = ui.post("/queue/solo/delete", "id=only");
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/?token="));
}

#[test]
fn unknown_namespaces_items_runs_jobs_and_pages_are_404_and_change_nothing() {
    let (_dir, store, ui) = fixture(false);
    assert_eq!(ui.get("/queue/nope").status, 404);
    assert_eq!(ui.post("/queue/nope/pause", "").status, 404);
    assert_eq!(store.ledger("nope").paused().unwrap(), None);
    assert_eq!(ui.post("/queue/orders/retry", "id=o-404").status, 404);
    assert_eq!(ui.post("/queue/orders/delete", "id=o-404").status, 404);
    assert_eq!(ui.get("/run/nope").status, 404);
    assert_eq!(ui.post("/run/nope/reset", "from=build").status, 404);
    assert_eq!(ui.get("/job/nope").status, 404);
    assert_eq!(ui.get("/queue/orders/explode").status, 404);
    assert_eq!(ui.get("/nowhere/at/all").status, 404);
    let body = ui.get("/queue/%3Cscript%3E").body;
    assert!(!body.contains("<script>\"") && body.contains("&lt;script&gt;"), "the name is escaped: {body}");
}

#[test]
fn malformed_ids_and_parameters_are_400_and_change_nothing() {
    let (_dir, store, ui) = fixture(false);
    assert_eq!(ui.get("/queue/orders?state=finished").status, 400);
    assert_eq!(ui.post("/queue/orders/retry", "").status, 400, "no id");
    assert_eq!(ui.post("/queue/orders/retry", "id=").status, 400, "an empty id");
    let long = "x".repeat(cairn::MAX_ID_BYTES + 1);
    assert_eq!(ui.post("/queue/orders/delete", &format!("id={long}")).status, 400, "an id too long");
    assert_eq!(ui.get(&format!("/queue/orders?q={long}")).status, 400, "a prefix too long");
    assert_eq!(ui.post("/queue/orders/retry", "id=%FF").status, 400, "not UTF-8");
    assert_eq!(ui.get("/queue/%FF").status, 400, "a path not UTF-8");
    assert_eq!(ui.get(&format!("/run/{long}")).status, 400, "a run id too long");
    assert_eq!(ui.post("/run/deploy-1/reset", "from=no-such-step").status, 400);
    assert_eq!(state(&store, "orders", "o-2"), Some(ItemState::Failed));
    assert_eq!(store.ledger("orders").counts().unwrap().pending, 2);
    assert_eq!(store.runs().get("deploy-1").unwrap().unwrap().steps.len(), 3);
}

#[test]
fn read_only_shows_no_action_and_refuses_every_post_with_403() {
    let (_dir, store, ui) = fixture(true);
    for page in ["/", "/queue/orders", "/queue/orders?state=failed", "/run/deploy-1", "/job/nightly"] {
        let r = ui.get(page);
        assert_eq!(r.status, 200, "{page}");
        assert!(!r.body.contains("method=post") && !r.body.contains("data-action"), "{page}: {}", r.body);
        assert!(r.body.contains("read-only"));
    }
    for (path, form) in [
        ("/queue/orders/retry", "id=o-2"),
        ("/queue/orders/delete", "id=o-1"),
        ("/queue/orders/pause", ""),
        ("/run/deploy-1/reset", "from=build"),
    ] {
        assert_eq!(ui.post(path, form).status, 403, "{path}");
    }
    assert_eq!(state(&store, "orders", "o-2"), Some(ItemState::Failed));
    assert_eq!(state(&store, "orders", "o-1"), Some(ItemState::Pending));
    assert_eq!(store.ledger("orders").paused().unwrap(), None);
    assert_eq!(store.runs().get("deploy-1").unwrap().unwrap().steps.len(), 3);
}

#[test]
fn the_queue_page_filters_by_state_and_id_prefix_and_pages_through() {
    let (_dir, store, ui) = fixture(false);
    let r = ui.get("/queue/orders?state=failed");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<tr data-id=\"o-2\" data-state=\"failed\">"), "{}", r.body);
    assert!(r.body.contains("HTTP 502 from &lt;upstream&gt;"), "the last error, escaped");
    assert!(r.body.contains("data-action=\"retry\" data-id=\"o-2\""));
    assert!(!r.body.contains("data-id=\"o-1\""));

    let ids: Vec<String> = (0..120).map(|i| format!("p-{i:03}")).collect();
    store.ledger("orders").enqueue(&ids).unwrap();
    let first = ui.get("/queue/orders?q=p-");
    assert_eq!(first.body.matches("<tr data-id=\"p-").count(), 50);
    assert!(!first.body.contains("data-id=\"o-1\""));
    let next = first.body.split("id=next rel=next href=\"").nth(1).unwrap().split('"').next().unwrap();
    let next = next.replace("&amp;", "&");
    assert!(next.contains("after=p-049"), "{next}");
    let second = ui.raw("GET", &next, None);
    assert!(second.body.contains("data-id=\"p-050\"") && !second.body.contains("data-id=\"p-049\""));
}

#[test]
fn ids_and_data_are_escaped_in_pages_and_encoded_in_urls() {
    let (_dir, store, ui) = fixture(false);
    let evil = "<img src=x onerror=alert(1)>/\"&?#";
    store
        .ledger("orders")
        .enqueue_items([cairn::QueueItem::new(evil).data("<script>alert(2)</script>").unwrap()])
        .unwrap();
    let body = ui.get("/queue/orders").body;
    assert!(!body.contains("<img src=x") && !body.contains("<script>alert"), "{body}");
    assert!(body.contains("&lt;img src=x onerror=alert(1)&gt;/&quot;&amp;?#"));
    assert!(body.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    // The id goes back in a form field and deletes exactly that item.
    let r = ui.post("/queue/orders/delete", "id=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%2F%22%26%3F%23");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(state(&store, "orders", evil), None);
}

#[test]
fn the_run_page_lists_steps_in_order_and_resets_from_a_step() {
    let (_dir, store, ui) = fixture(false);
    let r = ui.get("/run/deploy-1");
    assert_eq!(r.status, 200);
    let build = r.body.find("<tr data-id=\"build\" data-state=\"done\">").unwrap();
    let test = r.body.find("<tr data-id=\"test\" data-state=\"done\">").unwrap();
    let ship = r.body.find("<tr data-id=\"ship\" data-state=\"failed\">").unwrap();
    assert!(build < test && test < ship, "in order");
    assert!(r.body.contains("no route to host"), "the step's error");
    let r = ui.post("/run/deploy-1/reset", "from=test");
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().starts_with(&format!("/run/deploy-1?token={}", ui.token)));
    let steps: Vec<String> =
        store.runs().get("deploy-1").unwrap().unwrap().steps.into_iter().map(|s| s.name).collect();
    assert_eq!(steps, ["build"]);
}

#[test]
fn the_job_page_shows_its_history_as_a_table_and_a_chart() {
    let (_dir, store, ui) = fixture(false);
    let job = store
        .job("hourly", Schedule::every(Duration::from_secs(1)).unwrap())
        .unwrap()
        .catch_up(cairn::CatchUp::All);
    job.run(|_| JobEnd::status(3)).unwrap();
    let r = ui.get("/job/hourly");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<svg id=chart"));
    assert!(r.body.contains("<rect data-state=\"failed\""), "{}", r.body);
    assert!(r.body.contains("data-state=\"failed\"><td class=n>"), "a row per run");
    let r = ui.get("/job/nightly");
    assert!(r.body.contains("<rect data-state=\"succeeded\""));
}

#[test]
fn the_overview_and_a_retry_work_on_postgresql() {
    let Some(schema) = cairn_testkit::postgres::test_schema() else { return };
    let url = schema.url();
    let store = Store::open(&url).unwrap();
    seed(&store);
    let ui = Ui::start(&url, false);
    let r = ui.get("/");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<tr data-ns=\"orders\">") && r.body.contains("<tr data-run=\"deploy-1\">"));
    assert!(ui.get("/queue/orders?state=failed").body.contains("data-id=\"o-2\""));
    assert_eq!(ui.post("/queue/orders/retry", "id=o-2").status, 303);
    assert_eq!(state(&store, "orders", "o-2"), Some(ItemState::Pending));
    assert_eq!(ui.raw("GET", "/queue/orders", None).status, 403);
    assert_eq!(ui.get("/queue/nope").status, 404);
    assert_eq!(ui.get("/run/deploy-1").status, 200);
    assert_eq!(ui.get("/job/nightly").status, 200);
}

#[test]
fn resetting_a_run_that_a_live_attempt_holds_is_409_and_changes_nothing() {
    let (_dir, store, ui) = fixture(false);
    let mut run = store.run("live").unwrap();
    run.step("one", || Ok::<_, cairn::Error>(1)).unwrap();
    let r = ui.post("/run/live/reset", "from=one");
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(store.runs().get("live").unwrap().unwrap().steps.len(), 1);
    run.finish().unwrap();
}

#[test]
fn the_overview_escapes_every_name_it_shows() {
    let (_dir, store, ui) = fixture(false);
    let evil = "<b onmouseover=alert(1)>\"x'";
    store.ledger(evil).enqueue(["a"]).unwrap();
    store.cache(evil).set("k", "v", None).unwrap();
    let _lock = store.try_lock(evil, Duration::from_secs(60)).unwrap().unwrap();
    let mut run = store.run(evil).unwrap();
    run.step("s", || Ok::<_, cairn::Error>(1)).unwrap();
    run.finish().unwrap();
    let body = ui.get("/").body;
    assert!(!body.contains("<b onmouseover"), "{body}");
    let escaped = "&lt;b onmouseover=alert(1)&gt;&quot;x&#39;";
    assert_eq!(body.matches(escaped).count(), 2 * 4, "queue, cache, lock and run: attribute and text each");
    // Its links are percent-encoded, and lead to its pages.
    let link = "/queue/%3Cb%20onmouseover%3Dalert%281%29%3E%22x%27";
    assert!(body.contains(link), "{body}");
    assert!(ui.get(link).body.contains("data-id=\"a\""));
    assert_eq!(ui.get("/run/%3Cb%20onmouseover%3Dalert%281%29%3E%22x%27").status, 200);
}
