//! Escaping, URLs and the page around every view: ids, namespaces and data are whatever
//! scripts stored, so every value goes through [`esc`] into HTML and through [`seg`] or
//! [`qv`] into a URL.

use std::fmt::Write as _;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// `s` safe in HTML text and in a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What stays as it is in a path segment or a query value: the unreserved characters.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `s` as one path segment (a `/` in a namespace or id is encoded, not a separator).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, KEEP).to_string()
}

/// `s` as a query value.
pub fn qv(s: &str) -> String {
    utf8_percent_encode(s, KEEP).to_string()
}

/// A URL of this server: `path` (already encoded) with the token and `params` (raw values,
/// empty ones left out), escaped for an attribute.
pub fn href(token: &str, path: &str, params: &[(&str, &str)]) -> String {
    let mut url = format!("{path}?token={}", qv(token));
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = write!(url, "&{k}={}", qv(v));
    }
    esc(&url)
}

/// A POST form: one button `label`, the token and `fields` hidden, confirmed with `confirm`.
pub fn action_form(
    token: &str,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    data: &str,
    confirm: &str,
) -> String {
    let mut out = format!(
        "<form class=act method=post action=\"{}\" data-confirm=\"{}\"><input type=hidden name=token value=\"{}\">",
        esc(action),
        esc(confirm),
        esc(token)
    );
    for (k, v) in fields {
        let _ = write!(out, "<input type=hidden name=\"{}\" value=\"{}\">", esc(k), esc(v));
    }
    let _ = write!(
        out,
        "<button type=submit data-action=\"{}\" {data}>{}</button></form>",
        esc(label),
        esc(label)
    );
    out
}

const STYLE: &str = r#"
:root{--bg:#fff;--fg:#1b1f23;--mute:#6a737d;--line:#e1e4e8;--card:#f6f8fa;--link:#0366d6;
--ok:#22863a;--bad:#cb2431;--warn:#b08800;--run:#6f42c1}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#c9d1d9;--mute:#8b949e;--line:#30363d;
--card:#161b22;--link:#58a6ff;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--run:#a371f7}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif}
header{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:baseline;padding:.6em 1em;border-bottom:1px solid var(--line);background:var(--card)}
header b a{color:var(--fg)}
main{padding:.5em 1em 2em;max-width:1200px}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:1.3em;margin:.6em 0;word-break:break-all}h2{font-size:1.1em;margin:1.2em 0 .4em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:600;white-space:nowrap}
td.n{text-align:right}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
pre{white-space:pre-wrap;word-break:break-word;margin:0;max-height:12em;overflow:auto}
td pre:not(:empty){min-width:12em}
.mute{color:var(--mute)}
.st{display:inline-block;padding:0 .45em;border-radius:1em;border:1px solid currentColor;font-size:.85em;white-space:nowrap}
.st-failed,.st-bad{color:var(--bad)}.st-done,.st-finished,.st-succeeded,.st-ok{color:var(--ok)}
.st-pending,.st-paused{color:var(--warn)}.st-claimed,.st-running{color:var(--run)}.st-cancelled{color:var(--mute)}
form.act{display:inline;margin:0}
button{font:inherit;padding:.15em .6em;border-radius:4px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
button:hover{border-color:var(--link)}
.filters{display:flex;flex-wrap:wrap;gap:.4em;align-items:center;margin:.5em 0}
.filters input,.filters select{font:inherit;padding:.2em .4em;background:var(--bg);color:var(--fg);border:1px solid var(--line);border-radius:4px;max-width:100%}
.msg{padding:.4em .8em;border-left:3px solid var(--link);background:var(--card);margin:.6em 0}
svg text{fill:var(--mute);font-size:11px}
"#;

const SCRIPT: &str = r#"
document.addEventListener('submit',function(e){var m=e.target.getAttribute('data-confirm');if(m&&!window.confirm(m))e.preventDefault();});
if(document.body.hasAttribute('data-refresh')){var refresh=function(){var t0=Date.now();
fetch(location.href,{cache:'no-store'}).then(function(r){return r.ok?r.text():null}).then(function(t){
if(!t)return;var d=new DOMParser().parseFromString(t,'text/html');var n=d.getElementById('main');var o=document.getElementById('main');
if(n&&o)o.replaceWith(n);}).catch(function(){}).then(function(){setTimeout(refresh,Math.max(3000,10*(Date.now()-t0)));});};
setTimeout(refresh,3000);}
"#;

/// A whole page: the header with the way back to the overview, `body` in `<main id=main>`.
/// `refresh`: the script replaces `main` with a fresh copy every 3 s while the page is open,
/// or ten times as long as the last copy took to come (a store whose counts take long is not
/// kept busy answering one open tab).
pub fn page(token: &str, title: &str, crumbs: &str, body: &str, refresh: bool, read_only: bool) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta name=referrer content=no-referrer>\
         <link rel=icon href=\"data:,\"><title>{} · cairn</title><style>{STYLE}</style></head>\
         <body{}><header><b><a href=\"{}\">cairn</a></b>{crumbs}{}</header>\
         <main id=main>{body}</main><script>{SCRIPT}</script></body></html>",
        esc(title),
        if refresh { " data-refresh" } else { "" },
        href(token, "/", &[]),
        if read_only { "<span class=mute>read-only</span>" } else { "" },
    )
}

/// A state as a coloured badge, with `data-state` for tests and scripts.
pub fn badge(state: &str) -> String {
    format!("<span class=\"st st-{0}\" data-state=\"{0}\">{0}</span>", esc(state))
}

/// Unix ms as an RFC 3339 time, in a `<time>` element.
pub fn time(ms: i64) -> String {
    let t = cairn::format_time(ms);
    format!("<time datetime=\"{t}\">{}</time>", esc(&t.replace('T', " ")))
}

/// A duration, rounded to what a person reads.
pub fn dur(d: std::time::Duration) -> String {
    let d = if d.as_secs() >= 60 {
        std::time::Duration::from_secs(d.as_secs())
    } else {
        std::time::Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    esc(&cairn::format_duration(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralizes_markup_and_quotes() {
        assert_eq!(esc("<a href='x'>\"&</a>"), "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&lt;/a&gt;");
    }

    #[test]
    fn a_segment_encodes_slashes_question_marks_and_non_ascii() {
        assert_eq!(seg("a/b?c d#é"), "a%2Fb%3Fc%20d%23%C3%A9");
        assert_eq!(seg("ok-1_2.3~"), "ok-1_2.3~");
    }

    #[test]
    fn href_carries_the_token_and_leaves_out_empty_params() {
        assert_eq!(
            href("t0k", "/queue/q", &[("state", "failed"), ("q", "")]),
            "/queue/q?token=t0k&amp;state=failed"
        );
    }
}
