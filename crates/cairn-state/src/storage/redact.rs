//! A server's URL as messages show it: with every part that may be a password hidden.

use std::ops::Range;

/// A server URL with every part that may be a password replaced by `***`, for messages.
///
/// Read as loosely as any reader of the URL might, so that no reading shows a password:
/// - The user part runs to the *last* `@`: the driver stops at the first `@` whatever comes
///   before it (so `/` and `?` in a password need no escaping), and a user who wrote an `@`
///   in a password meant a later one. When a database name or a parameter holds an `@`, more
///   than the password is hidden, never less.
/// - A parameter is any piece after a `?` or `&`; one whose name decodes to `password` or
///   `sslpassword` (any case, `passw%6Frd` too) has its value hidden, and so does each piece
///   after it up to the next known connection parameter (`password=s3&cr?et` is one password).
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let mut hidden = Vec::new();
    let rest = &url[scheme_end..];
    if let Some(at) = rest.rfind('@') {
        if let Some(colon) = rest[..at].find(':') {
            hidden.push(scheme_end + colon + 1..scheme_end + at);
        }
    }
    hidden.extend(parameter_passwords(url, scheme_end));
    mask(url, hidden)
}

/// The byte ranges of password values among the `?`- and `&`-separated pieces after `from`.
fn parameter_passwords(url: &str, from: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut in_password = false;
    let mut start = from;
    let ends = url[from..].match_indices(['?', '&']).map(|(i, _)| from + i).chain([url.len()]);
    for end in ends {
        let piece = &url[start..end];
        let key = piece.split_once('=').map(|(k, _)| percent_decoded(k).to_ascii_lowercase());
        match key.as_deref() {
            Some("password" | "sslpassword") => {
                ranges.push(start + piece.find('=').map_or(0, |i| i + 1)..end);
                in_password = true;
            }
            Some(k) if KNOWN_PARAMETERS.contains(&k) => in_password = false,
            _ if in_password => {
                if let Some(last) = ranges.last_mut() {
                    last.end = end;
                }
            }
            _ => {}
        }
        start = end + 1;
    }
    ranges
}

/// libpq's connection parameters and cairn's own: a piece naming one starts a parameter of
/// its own, anything else after a password is still that password.
const KNOWN_PARAMETERS: &[&str] = &[
    "application_name",
    "cairn_schema",
    "channel_binding",
    "client_encoding",
    "connect_timeout",
    "dbname",
    "fallback_application_name",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "options",
    "passfile",
    "port",
    "replication",
    "require_auth",
    "requirepeer",
    "requiressl",
    "service",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslmode",
    "sslnegotiation",
    "sslrootcert",
    "sslsni",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
];

/// `%XX` decoded (as the driver decodes a parameter's name); anything else kept as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], decoded) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with each range (merged where they touch) replaced by `***`.
fn mask(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    ranges.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut shown_to = 0;
    let mut ranges = ranges.into_iter().peekable();
    while let Some(mut range) = ranges.next() {
        while let Some(next) = ranges.next_if(|n| n.start <= range.end) {
            range.end = range.end.max(next.end);
        }
        out.push_str(&text[shown_to..range.start]);
        out.push_str("***");
        shown_to = range.end;
    }
    out.push_str(&text[shown_to..]);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::redact_url;

    /// A password never reaches a message, in the user part or as a parameter; the rest of
    /// the URL stays as written, so the message still says which server.
    #[test]
    fn passwords_are_masked_wherever_the_url_carries_them() {
        for (url, shown) in [
            ("postgres://u:s3cret@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h/db?password=s3cret&sslmode=disable",
                "postgres://u@h/db?password=***&sslmode=disable",
            ),
            (
                "postgresql://h/db?user=u&PASSWORD=x&sslpassword=y",
                "postgresql://h/db?user=u&PASSWORD=***&sslpassword=***",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db?cairn_schema=s", "postgres://h/db?cairn_schema=s"),
            ("/not/a/url?password=x", "/not/a/url?password=x"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    /// The driver reads the user part up to the first `@` wherever it is, so `/` and `?` need
    /// not be escaped in a password; and it decodes a parameter's name, so `passw%6Frd` is
    /// `password`. Each of these used to show the password, or part of it.
    #[test]
    fn passwords_with_unescaped_slashes_or_question_marks_and_encoded_parameter_names_are_masked() {
        for (url, shown) in [
            ("postgres://postgres:s3/cret@127.0.0.1:1/test", "postgres://postgres:***@127.0.0.1:1/test"),
            ("postgres://postgres:s3?cret@127.0.0.1:1/test", "postgres://postgres:***@127.0.0.1:1/test"),
            ("postgres://u:a/b?c@d@h/db?sslmode=disable", "postgres://u:***@h/db?sslmode=disable"),
            ("postgres://u@h/db?passw%6Frd=s3cret", "postgres://u@h/db?passw%6Frd=***"),
            (
                "postgres://u@h/db?%70assword=s3cret&sslmode=disable",
                "postgres://u@h/db?%70assword=***&sslmode=disable",
            ),
            ("postgres://u@h/db?ssl%50ASSWORD=s3cret", "postgres://u@h/db?ssl%50ASSWORD=***"),
            // Pieces after a password that are no parameter of their own belong to it.
            (
                "postgres://u@h/db?password=s3&cr?et&sslmode=disable",
                "postgres://u@h/db?password=***&sslmode=disable",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    /// A password's letters are X, Y and Z, and nothing else in a generated URL has them; any
    /// special character in it comes after a letter, so a fragment shown would show a letter.
    fn password() -> impl Strategy<Value = String> {
        let special =
            prop::sample::select(vec!["", "/", "?", "@", ":", "&", "=", "#", "%", "%2F", "%40", " ", "é"]);
        let letter = prop::sample::select(vec!["X", "Y", "Z"]);
        (prop::option::of(special.clone()), prop::collection::vec((letter, special), 1..6)).prop_map(
            |(lead, rest)| {
                let mut pw = lead.unwrap_or("").to_owned();
                for (l, s) in rest {
                    pw.push_str(l);
                    pw.push_str(s);
                }
                pw
            },
        )
    }

    /// `password` or `sslpassword` as a URL may spell it: any case, any letter percent-encoded.
    fn password_key() -> impl Strategy<Value = String> {
        let name = prop::sample::select(vec!["password", "sslpassword"]);
        (name, prop::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), 11)).prop_map(
            |(name, how)| {
                name.chars()
                    .zip(how)
                    .map(|(c, (upper, encode, upper_hex))| {
                        let c = if upper { c.to_ascii_uppercase() } else { c };
                        match (encode, upper_hex) {
                            (true, true) => format!("%{:02X}", c as u32),
                            (true, false) => format!("%{:02x}", c as u32),
                            (false, _) => c.to_string(),
                        }
                    })
                    .collect()
            },
        )
    }

    /// Parameters and paths that are not passwords, some with `@`, `/` or `:` in them.
    fn other_param() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "sslmode=disable",
            "application_name=a@b",
            "options=-c%20x=1",
            "cairn_schema=s",
            "connect_timeout=5",
            "host=/run/postgresql",
            "user=u:v@w",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        /// Whatever the URL, with a password in the user part, as parameters, or both, and
        /// other parts holding `@`, `/` and `:` too: no letter of any password is shown.
        #[test]
        fn no_generated_url_shows_its_password(
            scheme in prop::sample::select(vec!["postgres://", "postgresql://", "POSTGRES://"]),
            user in prop::option::of(prop::sample::select(vec!["", "u", "postgres", "a%40b"])),
            in_user_part in prop::option::of(password()),
            host in prop::sample::select(vec!["", "h", "127.0.0.1:5432", "[::1]:1", "a,b:6"]),
            db in prop::option::of(prop::sample::select(vec!["", "db", "d@b", "d:b"])),
            params in prop::collection::vec(
                prop_oneof![
                    other_param(),
                    (password_key(), password()).prop_map(|(k, v)| format!("{k}={v}")),
                ],
                0..4,
            ),
        ) {
            let mut url = scheme.to_owned();
            match (user, &in_user_part) {
                (Some(u), Some(pw)) => url.push_str(&format!("{u}:{pw}@")),
                (None, Some(pw)) => url.push_str(&format!(":{pw}@")),
                (Some(u), None) if !u.is_empty() => url.push_str(&format!("{u}@")),
                _ => {}
            }
            url.push_str(host);
            if let Some(db) = db {
                url.push('/');
                url.push_str(db);
            }
            for (i, p) in params.iter().enumerate() {
                url.push(if i == 0 { '?' } else { '&' });
                url.push_str(p);
            }
            let shown = redact_url(&url);
            prop_assert!(!shown.contains(['X', 'Y', 'Z']), "{url} is shown as {shown}");
        }
    }
}
