//! From a request to a reply: the token first, then the route, the method, the parameters.
//!
//! | route                          | GET        | POST                                   |
//! |--------------------------------|------------|----------------------------------------|
//! | `/`                            | overview   | 405                                    |
//! | `/queue/{ns}`                  | its items  | 405                                    |
//! | `/queue/{ns}/{action}`         | 405        | retry, cancel, delete (field `id`), pause, resume |
//! | `/run/{id}`                    | its steps  | 405                                    |
//! | `/run/{id}/reset`              | 405        | reset from the step in field `from`    |
//! | `/job/{name}`                  | history    | 405                                    |
//!
//! Every request carries the token: GETs in the query (`?token=`), POSTs in their form (field
//! `token`), so that a page of another site can neither read these pages nor submit a form to
//! them. Without it, or with a wrong one: 403, and nothing is read or changed.

use std::collections::HashMap;
use std::io::Read as _;

use cairn::{ErrorKind, Store};
use percent_encoding::percent_decode_str;

use crate::html::{esc, href, page, seg};
use crate::pages;

/// What every request is checked against.
pub struct Ctx {
    pub token: String,
    pub read_only: bool,
    /// The ledger counts, started with the first request (they need the store).
    pub counts: std::cell::OnceCell<crate::counts::Counter>,
}

/// A reply before it is sent.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub allow: Option<&'static str>,
}

impl Reply {
    pub fn html(body: String) -> Reply {
        Reply { status: 200, body, location: None, allow: None }
    }

    /// An error page: `status` and one line saying why, escaped.
    pub fn error(ctx: &Ctx, status: u16, why: &str) -> Reply {
        let title = format!("{status} {}", reason(status));
        let body = format!("<h1>{}</h1><p class=msg>{}</p>", esc(&title), esc(why));
        // The 403 page has no link that carries the token: the request had none, or a wrong one.
        let token = if status == 403 { "" } else { &ctx.token };
        Reply {
            status,
            body: page(token, &title, "", &body, false, ctx.read_only),
            location: None,
            allow: None,
        }
    }

    fn see_other(location: String) -> Reply {
        Reply { status: 303, body: String::new(), location: Some(location), allow: None }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        _ => "Internal Server Error",
    }
}

/// A library error as a reply: bad input is the client's (400), a run held by a live attempt
/// a conflict (409), the rest the server's (500).
pub fn failed(ctx: &Ctx, e: &cairn::Error) -> Reply {
    let status = match e.kind() {
        ErrorKind::InvalidInput => 400,
        ErrorKind::RunHeld | ErrorKind::Busy => 409,
        _ => 500,
    };
    Reply::error(ctx, status, &e.to_string())
}

/// The largest form accepted: an id is at most a few KiB.
const MAX_BODY: u64 = 64 * 1024;

/// Answer `request`. A failure to send the reply (the browser went away) is nobody's to hear.
pub fn handle(ctx: &Ctx, store: &Store, mut request: tiny_http::Request) {
    let post = *request.method() == tiny_http::Method::Post;
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let reply = match parse_form(query) {
        None => Reply::error(ctx, 400, "the query is not valid percent-encoded UTF-8"),
        Some(query) if !post => route(ctx, store, false, path, &query, &HashMap::new()),
        Some(query) => {
            let mut body = String::new();
            let read = request.as_reader().take(MAX_BODY + 1).read_to_string(&mut body);
            match read {
                Err(_) => Reply::error(ctx, 400, "the form is not UTF-8"),
                Ok(n) if n as u64 > MAX_BODY => Reply::error(ctx, 413, "the form is too large"),
                Ok(_) => match parse_form(&body) {
                    None => Reply::error(ctx, 400, "the form is not valid percent-encoded UTF-8"),
                    Some(form) => route(ctx, store, true, path, &query, &form),
                },
            }
        }
    };
    let _ = request.respond(into_response(reply));
}

fn into_response(reply: Reply) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut response = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
    let mut headers = vec![
        ("Content-Type", "text/html; charset=utf-8".to_owned()),
        ("Cache-Control", "no-store".to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        // Not framed by another site (clickjacking on the action buttons).
        ("X-Frame-Options", "DENY".to_owned()),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
                .to_owned(),
        ),
        ("Referrer-Policy", "no-referrer".to_owned()),
    ];
    if let Some(l) = reply.location {
        headers.push(("Location", l));
    }
    if let Some(a) = reply.allow {
        headers.push(("Allow", a.to_owned()));
    }
    for (k, v) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    response
}

/// `a=1&b=x%20y` (with `+` for a space) into its pairs; `None` if a part is not valid
/// percent-encoded UTF-8. A repeated name keeps its first value.
pub fn parse_form(s: &str) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for part in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = decode(&k.replace('+', " "))?;
        let v = decode(&v.replace('+', " "))?;
        out.entry(k).or_insert(v);
    }
    Some(out)
}

fn decode(s: &str) -> Option<String> {
    percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

/// Equal, in a time that does not depend on where they differ.
pub fn same_token(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn route(
    ctx: &Ctx,
    store: &Store,
    post: bool,
    path: &str,
    query: &HashMap<String, String>,
    form: &HashMap<String, String>,
) -> Reply {
    let given = if post { form.get("token") } else { query.get("token") };
    if !given.is_some_and(|t| same_token(t, &ctx.token)) {
        return Reply::error(
            ctx,
            403,
            "this page needs the token printed by `cairn ui` at start: open the URL it printed",
        );
    }
    let Some(segs) =
        path.strip_prefix('/').unwrap_or(path).split('/').map(decode).collect::<Option<Vec<_>>>()
    else {
        return Reply::error(ctx, 400, "the path is not valid percent-encoded UTF-8");
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get_only = |r: Reply| if post { not_allowed(ctx, "GET") } else { r };
    match segs.as_slice() {
        [""] => get_only_with(post, ctx, || pages::overview(ctx, store)),
        ["queue", ns] => get_only_with(post, ctx, || pages::queue(ctx, store, ns, query)),
        ["queue", ns, action @ ("retry" | "cancel" | "delete" | "pause" | "resume")] => {
            if !post {
                return not_allowed(ctx, "POST");
            }
            if ctx.read_only {
                return read_only(ctx);
            }
            queue_action(ctx, store, ns, action, form)
        }
        ["run", id] => get_only_with(post, ctx, || pages::run(ctx, store, id)),
        ["run", id, "reset"] => {
            if !post {
                return not_allowed(ctx, "POST");
            }
            if ctx.read_only {
                return read_only(ctx);
            }
            run_reset(ctx, store, id, form)
        }
        ["job", name] => get_only_with(post, ctx, || pages::job(ctx, store, name)),
        _ => get_only(Reply::error(ctx, 404, "no such page")),
    }
}

fn get_only_with(post: bool, ctx: &Ctx, f: impl FnOnce() -> Reply) -> Reply {
    if post {
        not_allowed(ctx, "GET")
    } else {
        f()
    }
}

fn not_allowed(ctx: &Ctx, allow: &'static str) -> Reply {
    let mut r = Reply::error(ctx, 405, &format!("this address takes {allow} only"));
    r.allow = Some(allow);
    r
}

fn read_only(ctx: &Ctx) -> Reply {
    Reply::error(ctx, 403, "cairn ui was started with --read-only: nothing can be changed from here")
}

/// Whether the ledger namespace `ns` exists (holds items): unknown ones are 404, not an empty
/// page, so that a typo shows.
pub fn known_ns(store: &Store, ns: &str) -> cairn::Result<bool> {
    Ok(store.ledger_namespaces()?.iter().any(|n| n == ns))
}

fn queue_action(ctx: &Ctx, store: &Store, ns: &str, action: &str, form: &HashMap<String, String>) -> Reply {
    match known_ns(store, ns) {
        Ok(true) => {}
        Ok(false) => return Reply::error(ctx, 404, &format!("no ledger namespace {ns:?}")),
        Err(e) => return failed(ctx, &e),
    }
    let ledger = store.ledger(ns);
    let result = match action {
        "pause" => ledger.pause(None).map(|()| format!("paused {ns}")),
        "resume" => {
            ledger
                .resume()
                .map(|was| if was { format!("resumed {ns}") } else { format!("{ns} was not paused") })
        }
        _ => {
            let Some(id) = form.get("id") else {
                return Reply::error(ctx, 400, "the form has no item id (field id)");
            };
            match ledger.item(id) {
                Ok(Some(_)) => {}
                Ok(None) => return Reply::error(ctx, 404, &format!("no item {id:?} in {ns:?}")),
                Err(e) => return failed(ctx, &e),
            }
            match action {
                "retry" => ledger.retry([id.as_str()]).map(|n| {
                    if n == 1 {
                        format!("{id} queued again")
                    } else {
                        format!("{id} is neither failed nor cancelled: left as it was")
                    }
                }),
                "cancel" => ledger.cancel(id).map(|_| format!("{id} cancelled")),
                _ => ledger.delete(id).map(|_| format!("{id} deleted")),
            }
        }
    };
    if let Some(counter) = ctx.counts.get() {
        counter.changed(ns);
    }
    match result {
        Ok(msg) => {
            let back = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
            let path = match known_ns(store, ns) {
                Ok(false) => "/".to_owned(),
                _ => format!("/queue/{}", seg(ns)),
            };
            let to = href(&ctx.token, &path, &[("state", back("state")), ("q", back("q")), ("msg", &msg)]);
            // `href` escapes for an attribute; a Location header takes the URL itself.
            Reply::see_other(to.replace("&amp;", "&"))
        }
        Err(e) => failed(ctx, &e),
    }
}

fn run_reset(ctx: &Ctx, store: &Store, id: &str, form: &HashMap<String, String>) -> Reply {
    match store.runs().get(id) {
        Ok(Some(_)) => {}
        Ok(None) => return Reply::error(ctx, 404, &format!("no run {id:?}")),
        Err(e) => return failed(ctx, &e),
    }
    let from = form.get("from").map(String::as_str).filter(|f| !f.is_empty());
    match store.runs().reset(id, from) {
        Ok(n) => {
            let msg = format!("{n} step(s) reset");
            let to = href(&ctx.token, &format!("/run/{}", seg(id)), &[("msg", &msg)]);
            Reply::see_other(to.replace("&amp;", "&"))
        }
        Err(e) => failed(ctx, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent_and_refuse_bad_utf8() {
        let f = parse_form("id=a+b%2Fc&token=x&id=second").unwrap_or_default();
        assert_eq!(f.get("id").map(String::as_str), Some("a b/c"));
        assert_eq!(f.get("token").map(String::as_str), Some("x"));
        assert!(parse_form("id=%FF").is_none());
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", "abc"));
    }
}
