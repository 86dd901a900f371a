//! `cairn ui`: the URL line, the loopback rule, a missing store. The pages themselves are
//! tested in crates/cairn-ui.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use crate::{assert_one_line_error, Env};

/// `cairn ui ARGS` started, its first stdout line read; killed on drop.
struct Serving {
    child: Child,
    line: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env, args: &[&str]) -> Serving {
    let mut child = std::process::Command::new(crate::cairn_bin())
        .env("CAIRN_DB", env.db())
        .arg("ui")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    Serving { child, line }
}

fn get(addr: &str, target: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn ui_prints_one_url_line_with_the_real_port_and_a_token_and_serves_it() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "a"], 0);
    let s = serve(&env, &["--listen", "127.0.0.1:0"]);
    let url =
        s.line.trim_end().strip_prefix("cairn ui: serving http://").unwrap_or_else(|| panic!("{:?}", s.line));
    let (addr, token) = url.split_once("/?token=").unwrap();
    assert!(!addr.ends_with(":0"), "the real port: {addr}");
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let page = get(addr, &format!("/?token={token}"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("data-ns=\"default\""));
    assert!(get(addr, "/").starts_with("HTTP/1.1 403"));
}

#[test]
fn ui_refuses_a_non_loopback_address_without_allow_remote() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "a"], 0);
    let (code, out, err) = env.run(&["ui", "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_one_line_error(&err);
    assert!(err.contains("--allow-remote"), "{err}");
}

#[test]
fn ui_with_allow_remote_serves_beyond_loopback_and_warns() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "a"], 0);
    let mut s = serve(&env, &["--listen", "0.0.0.0:0", "--allow-remote", "--read-only"]);
    assert!(s.line.starts_with("cairn ui: serving http://0.0.0.0:"), "{}", s.line);
    let mut err = String::new();
    BufReader::new(s.child.stderr.take().unwrap()).read_line(&mut err).unwrap();
    assert!(err.starts_with("cairn: warning: serving on 0.0.0.0:"), "{err}");
}

#[test]
fn ui_on_a_missing_store_fails_and_creates_nothing() {
    let env = Env::new();
    let (code, _, err) = env.run(&["ui", "--listen", "127.0.0.1:0"]);
    assert_ne!(code, 0);
    assert_one_line_error(&err);
    assert!(!env.db().exists());
}

#[test]
fn ui_on_a_port_in_use_fails_with_one_line_naming_it() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "a"], 0);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, out, err) = env.run(&["ui", "--listen", &addr]);
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty());
    assert_one_line_error(&err);
    assert!(err.contains(&addr), "{err}");
}
