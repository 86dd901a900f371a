//! # cairn-ui: a local web page to see and steer a cairn store
//!
//! `cairn ui` serves it: an overview of the store (ledger namespaces with their items by
//! state, caches, held locks, jobs, runs), a page per queue with its items and the actions
//! retry, cancel, delete, pause and resume, a page per run with its steps and "reset from
//! here", and a page per job with its history as a table and a chart. Server-rendered HTML with
//! a little vanilla JavaScript; nothing is fetched from the network.
//!
//! Every URL carries a random token (printed with the URL at start, like Jupyter's); a request
//! without it is refused with 403, and the actions are POSTs carrying it in their form, so
//! another site open in the same browser can neither read the pages nor trigger an action.
//! The server binds to loopback unless [`Options::allow_remote`] says otherwise.
//!
//! ```no_run
//! use cairn::Store;
//!
//! let store = Store::open("state.db")?;
//! let server = cairn_ui::Server::bind(&cairn_ui::Options::new().read_only(true))?;
//! println!("serving {}", server.url());
//! server.serve(&store)?; // until the process ends
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod counts;
mod html;
mod pages;
mod routes;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cairn::Store;

/// Where and how to serve, for [`Server::bind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    listen: SocketAddr,
    read_only: bool,
    allow_remote: bool,
    token: Option<String>,
}

/// The address served by default: loopback, port 7878.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7878);

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// [`DEFAULT_LISTEN`], actions allowed, loopback only, a fresh random token.
    ///
    /// ```
    /// let o = cairn_ui::Options::new().listen("127.0.0.1:0".parse()?).read_only(true);
    /// let server = cairn_ui::Server::bind(&o)?;
    /// assert_ne!(server.local_addr().port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Options {
        Options { listen: DEFAULT_LISTEN, read_only: false, allow_remote: false, token: None }
    }

    /// The address to listen on; port 0 picks a free one ([`Server::local_addr`] tells which).
    pub fn listen(mut self, addr: SocketAddr) -> Options {
        self.listen = addr;
        self
    }

    /// Show no action and refuse every POST (403): a page to look at, not to steer with.
    pub fn read_only(mut self, yes: bool) -> Options {
        self.read_only = yes;
        self
    }

    /// Allow an address other than loopback: anyone who can reach it and learns the token
    /// (sent in clear, over plain HTTP) can steer the store.
    pub fn allow_remote(mut self, yes: bool) -> Options {
        self.allow_remote = yes;
        self
    }

    /// Use this token instead of a random one (at least 16 characters, letters, digits, `-`
    /// and `_`): for a URL bookmarked across restarts.
    pub fn token(mut self, token: impl Into<String>) -> Options {
        self.token = Some(token.into());
        self
    }
}

/// A bound server: [`Server::url`] to print, [`Server::serve`] to answer.
///
/// ```
/// use std::io::{Read, Write};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.db");
/// cairn::Store::open(&path)?.ledger("orders").enqueue(["o-1"])?;
/// let server = cairn_ui::Server::bind(&cairn_ui::Options::new().listen("127.0.0.1:0".parse()?))?;
/// let (addr, token) = (server.local_addr(), server.token().to_owned());
/// assert_eq!(server.url(), format!("http://{addr}/?token={token}"));
/// let serving = std::thread::spawn(move || -> Result<(), String> {
///     let store = cairn::Store::open(&path).map_err(|e| e.to_string())?;
///     for _ in 0..2 {
///         server.serve_one(&store).map_err(|e| e.to_string())?;
///     }
///     Ok(())
/// });
/// let get = |target: &str| -> std::io::Result<String> {
///     let mut s = std::net::TcpStream::connect(addr)?;
///     write!(s, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
///     let mut reply = String::new();
///     s.read_to_string(&mut reply)?;
///     Ok(reply)
/// };
/// assert!(get(&format!("/queue/orders?token={token}"))?.contains("data-id=\"o-1\""));
/// assert!(get("/queue/orders")?.starts_with("HTTP/1.1 403")); // no token
/// serving.join().expect("the server thread")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    http: tiny_http::Server,
    addr: SocketAddr,
    ctx: routes::Ctx,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).field("read_only", &self.ctx.read_only).finish()
    }
}

impl Server {
    /// Bind the listening socket. An address other than loopback is refused (`InvalidInput`)
    /// unless [`Options::allow_remote`]; so is a token too short or with other characters.
    ///
    /// ```
    /// let err = cairn_ui::Server::bind(&cairn_ui::Options::new().listen("0.0.0.0:0".parse()?))
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(options: &Options) -> io::Result<Server> {
        if !options.listen.ip().is_loopback() && !options.allow_remote {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a loopback address: anyone reaching it could steer the store; \
                     give --allow-remote to serve it anyway",
                    options.listen
                ),
            ));
        }
        let token = match &options.token {
            Some(t) if valid_token(t) => t.clone(),
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a token is at least 16 characters: letters, digits, - and _",
                ))
            }
            None => random_token()?,
        };
        let http = tiny_http::Server::http(options.listen).map_err(|e| {
            io::Error::new(io::ErrorKind::AddrInUse, format!("cannot listen on {}: {e}", options.listen))
        })?;
        let addr = http.server_addr().to_ip().unwrap_or(options.listen);
        Ok(Server {
            http,
            addr,
            ctx: routes::Ctx { token, read_only: options.read_only, counts: std::cell::OnceCell::new() },
        })
    }

    /// The address listened on (with the real port when port 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The access token every request must carry.
    pub fn token(&self) -> &str {
        &self.ctx.token
    }

    /// The overview's URL with the token: what to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.ctx.token)
    }

    /// Answer requests one at a time, reading and writing `store`, until the process ends or
    /// the socket fails. The first call also starts a thread, on a second handle of the same
    /// store ([`Store::open_again`]), that counts the ledger namespaces too large to count on
    /// every view of the overview (see docs/DESIGN.md, "Counts at scale").
    pub fn serve(&self, store: &Store) -> io::Result<()> {
        self.ctx.counts.get_or_init(|| counts::Counter::start(store));
        loop {
            let request = self.http.recv()?;
            routes::handle(&self.ctx, store, request);
        }
    }

    /// Answer one request (waiting for it): for tests that serve a given number of requests.
    pub fn serve_one(&self, store: &Store) -> io::Result<()> {
        self.ctx.counts.get_or_init(|| counts::Counter::start(store));
        let request = self.http.recv()?;
        routes::handle(&self.ctx, store, request);
        Ok(())
    }
}

fn valid_token(t: &str) -> bool {
    t.len() >= 16 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 32 hex characters from 16 random bytes of the operating system.
fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| io::Error::other(format!("no random bytes for the token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_32_hex_characters_and_differ() -> io::Result<()> {
        let (a, b) = (random_token()?, random_token()?);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn a_non_loopback_address_needs_allow_remote() {
        let o = Options::new().listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        assert_eq!(Server::bind(&o).map(|_| ()).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(Server::bind(&o.allow_remote(true)).is_ok());
    }

    #[test]
    fn a_short_or_odd_token_is_refused() {
        let o = Options::new().listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        for bad in ["short", "0123456789abcdef<"] {
            assert!(Server::bind(&o.clone().token(bad)).is_err(), "{bad}");
        }
        assert!(Server::bind(&o.token("0123456789abcdef")).is_ok());
    }
}
