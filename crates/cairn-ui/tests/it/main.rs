//! cairn-ui's integration tests: a real server on port 0, spoken to over HTTP (`http`), and
//! driven in a real browser through chromedriver (`browser`).

mod browser;
mod http;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use cairn::Store;

/// A server running in a thread of its own over its own connection to `location`.
pub(crate) struct Ui {
    pub(crate) addr: SocketAddr,
    pub(crate) token: String,
}

impl Ui {
    /// Serve `location` (a file or a postgres:// URL), on port 0.
    pub(crate) fn start(location: &str, read_only: bool) -> Ui {
        let options = cairn_ui::Options::new().listen("127.0.0.1:0".parse().unwrap()).read_only(read_only);
        let server = cairn_ui::Server::bind(&options).unwrap();
        let ui = Ui { addr: server.local_addr(), token: server.token().to_owned() };
        let location = location.to_owned();
        // The thread ends with the test process.
        std::thread::spawn(move || {
            let store = Store::open(&location).unwrap();
            let _ = server.serve(&store);
        });
        ui
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET `path` with the token added to its query.
    pub(crate) fn get(&self, path: &str) -> Reply {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.raw("GET", &format!("{path}{sep}token={}", self.token), None)
    }

    /// POST `form` (with the token) to `path`.
    pub(crate) fn post(&self, path: &str, form: &str) -> Reply {
        let body = if form.is_empty() {
            format!("token={}", self.token)
        } else {
            format!("token={}&{form}", self.token)
        };
        self.raw("POST", path, Some(&body))
    }

    /// A request exactly as given: no token added.
    pub(crate) fn raw(&self, method: &str, target: &str, body: Option<&str>) -> Reply {
        let mut s = TcpStream::connect(self.addr).unwrap();
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        Reply { status, headers, body: body.to_owned() }
    }
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}
