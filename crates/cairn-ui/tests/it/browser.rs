//! The page in a real browser: headless Chromium driven through chromedriver over the
//! WebDriver protocol (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them).
//! Without them the tests say so and skip, or fail under `CAIRN_NO_SKIP`.
//!
//! `write_the_readme_screenshots` (ignored) writes docs/img/ui-overview.png and ui-run.png:
//! `cargo nextest run -p cairn-ui --run-ignored only -E 'test(screenshots)'`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn::{ItemState, JobEnd, Schedule, Store};
use serde_json::{json, Value};

use crate::http::{seed, Oops};
use crate::Ui;

/// The key of an element reference in WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver on a free port, with one headless Chromium session; both ended on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

impl Browser {
    /// `None` (said, or a failure under CAIRN_NO_SKIP) without chromedriver and Chromium.
    fn start(width: u32, height: u32) -> Option<Browser> {
        let (Some(driver), Some(chromium)) =
            (on_path("chromedriver"), on_path("chromium").or_else(|| on_path("chromium-browser")))
        else {
            cairn_testkit::skip_unless_ci(
                "chromium and chromedriver (apt-get install chromium chromium-driver)",
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut b =
            Browser { driver: child, base: format!("http://127.0.0.1:{port}"), session: String::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.call("GET", "/status", None).ok().and_then(|v| v["ready"].as_bool()) != Some(true) {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}")]
            }
        }}});
        let v = b.call("POST", "/session", Some(caps)).unwrap_or_else(|e| panic!("no browser session: {e}"));
        b.session = v["sessionId"].as_str().unwrap().to_owned();
        Some(b)
    }

    /// One WebDriver command: its `value`, or its error's message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let req = ureq::request(method, &format!("{}{path}", self.base)).timeout(Duration::from_secs(60));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(e.to_string()),
        };
        let v: Value = resp.into_json().map_err(|e| e.to_string())?;
        let value = v["value"].clone();
        match value.get("error") {
            Some(err) => Err(format!("{err}: {}", value["message"])),
            None => Ok(value),
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).unwrap();
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.cmd("POST", "/elements", Some(json!({"using": "css selector", "value": css}))).unwrap();
        v.as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap_or_else(|| panic!("{e}")).to_owned())
            .collect()
    }

    /// The first element matching `css`, waiting up to 10 s for it to appear.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no {css} in {}", self.source());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn click(&self, element: &str) {
        self.cmd("POST", &format!("/element/{element}/click"), Some(json!({}))).unwrap();
    }

    /// The text of the alert (a confirm()) open now, waiting up to 10 s for it.
    fn alert_text(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.cmd("GET", "/alert/text", None) {
                Ok(v) => return v.as_str().unwrap_or("").to_owned(),
                Err(e) => assert!(Instant::now() < deadline, "no alert: {e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", None).map(|v| v.as_str().unwrap_or("").to_owned()).unwrap_or_default()
    }

    fn title(&self) -> String {
        self.cmd("GET", "/title", None).unwrap().as_str().unwrap_or("").to_owned()
    }

    fn script(&self, js: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": js, "args": []}))).unwrap()
    }

    /// A PNG of the window.
    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", None).unwrap();
        base64_decode(b64.as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').map(val).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &v)| acc | (u32::from(v) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

#[test]
fn in_a_browser_the_overview_refreshes_and_a_failed_item_is_retried_after_confirming_and_seen_queued_again() {
    let Some(b) = Browser::start(1280, 900) else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    seed(&store);
    let ui = Ui::start(path.to_str().unwrap(), false);

    // The overview, then the failed items of `orders` from its count.
    b.goto(&format!("{}/?token={}", ui.base(), ui.token));
    assert_eq!(b.title(), "overview · cairn");
    // It refreshes itself: a namespace made meanwhile shows up without a reload.
    assert!(b.find_all("tr[data-ns=\"fresh\"]").is_empty());
    store.ledger("fresh").enqueue(["f-1"]).unwrap();
    b.find("tr[data-ns=\"fresh\"]");
    b.click(&b.find("tr[data-ns=\"orders\"] td[data-state=\"failed\"] a"));
    b.find("tr[data-id=\"o-2\"][data-state=\"failed\"]");

    // Dismissing the confirmation changes nothing.
    b.click(&b.find("button[data-action=\"delete\"][data-id=\"o-2\"]"));
    assert!(b.alert_text().contains("Delete o-2?"));
    b.cmd("POST", "/alert/dismiss", Some(json!({}))).unwrap();
    assert_eq!(store.ledger("orders").item("o-2").unwrap().unwrap().state, ItemState::Failed);

    // Retry, confirmed: the page says so, and the item is queued again.
    b.click(&b.find("button[data-action=\"retry\"][data-id=\"o-2\"]"));
    assert!(b.alert_text().contains("Retry o-2?"));
    b.cmd("POST", "/alert/accept", Some(json!({}))).unwrap();
    let msg = b.find("p.msg");
    let text = b.cmd("GET", &format!("/element/{msg}/text"), None).unwrap();
    assert_eq!(text.as_str(), Some("o-2 queued again"));
    assert_eq!(store.ledger("orders").item("o-2").unwrap().unwrap().state, ItemState::Pending);
    b.goto(&format!("{}/queue/orders?token={}&state=pending", ui.base(), ui.token));
    b.find("tr[data-id=\"o-2\"][data-state=\"pending\"]");
    let png = b.screenshot();
    assert!(png.starts_with(PNG) && png.len() > 1000, "a PNG screenshot");

    // Without the token: refused.
    b.goto(&format!("{}/queue/orders", ui.base()));
    assert_eq!(b.title(), "403 Forbidden · cairn");
    assert!(b.find_all("[data-id]").is_empty());

    // Read-only: the same pages, no action anywhere.
    let ro = Ui::start(path.to_str().unwrap(), true);
    for page in ["/", "/queue/orders", "/run/deploy-1"] {
        b.goto(&format!("{}{page}?token={}", ro.base(), ro.token));
        b.find("main#main h1");
        assert!(b.find_all("[data-action], form[method=post]").is_empty(), "{page}: {}", b.source());
    }
}

#[test]
fn in_a_browser_375_px_wide_the_pages_do_not_scroll_sideways() {
    let Some(b) = Browser::start(375, 800) else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    seed(&store);
    let ui = Ui::start(path.to_str().unwrap(), false);
    for page in ["/", "/queue/orders", "/run/deploy-1", "/job/nightly"] {
        b.goto(&format!("{}{page}?token={}", ui.base(), ui.token));
        b.find("main#main h1");
        let (page_w, view_w) = (
            b.script("return document.documentElement.scrollWidth").as_u64().unwrap(),
            b.script("return window.innerWidth").as_u64().unwrap(),
        );
        assert!(page_w <= view_w, "{page}: {page_w} px wide in a {view_w} px window");
    }
}

/// A store that looks lived-in, for the README's pictures.
fn showcase(store: &Store) {
    seed(store);
    let q = store.ledger("invoices").max_attempts(2);
    let ids: Vec<String> = (1..=40).map(|i| format!("inv-2026-{i:04}")).collect();
    q.enqueue(&ids).unwrap();
    q.mark_done_many(&ids[..28]).unwrap();
    for id in &ids[28..31] {
        q.fail(id, "SMTP 451: try again later").unwrap();
        q.fail(id, "SMTP 451: try again later").unwrap();
    }
    store.ledger("thumbnails").enqueue((0..12).map(|i| format!("img-{i}"))).unwrap();
    store.ledger("thumbnails").pause(None).unwrap();
    for (ns, n) in [("pages", 30), ("geo", 7)] {
        let c = store.cache(ns);
        for i in 0..n {
            c.set(&format!("k{i}"), "x".repeat(200 * (i + 1)), None).unwrap();
            let _ = c.get::<String>(&format!("k{i}")).unwrap();
        }
        let _ = c.get::<String>("missing").unwrap();
    }
    let job = store.job("backup", Schedule::every(Duration::from_millis(40)).unwrap()).unwrap();
    for i in 0..24u64 {
        std::thread::sleep(Duration::from_millis(45));
        job.run(|_| {
            std::thread::sleep(Duration::from_millis(5 + (i * 7) % 30));
            JobEnd::status(if i % 7 == 5 { 1 } else { 0 })
        })
        .unwrap();
    }
    let mut run = store.run("release-v1.4.0").unwrap();
    for (step, ms) in [("checkout", 120), ("build", 900), ("test", 450)] {
        run.step(step, || {
            std::thread::sleep(Duration::from_millis(ms));
            Ok::<_, Oops>(format!("{step}: ok"))
        })
        .unwrap();
    }
    let failed: Result<String, Oops> = run.step("publish", || Err(Oops("registry answered 503".into())));
    assert!(failed.is_err());
    run.fail("publish: registry answered 503").unwrap();
}

#[test]
#[ignore = "writes docs/img/ui-*.png for the README: run it by hand after changing the pages"]
fn write_the_readme_screenshots() {
    let Some(b) = Browser::start(1280, 900) else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    showcase(&store);
    let _lock = store.try_lock("nightly-export", Duration::from_secs(3600)).unwrap().unwrap();
    let ui = Ui::start(path.to_str().unwrap(), false);
    let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
    std::fs::create_dir_all(&img).unwrap();
    for (page, file) in [("/", "ui-overview.png"), ("/run/release-v1.4.0", "ui-run.png")] {
        b.goto(&format!("{}{page}?token={}", ui.base(), ui.token));
        b.find("main#main h1");
        let png = b.screenshot();
        assert!(png.starts_with(PNG));
        std::fs::write(img.join(file), png).unwrap();
    }
}

#[test]
fn base64_decodes_padded_and_unpadded_input() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk"), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
