//! A counting relay between a client and the PostgreSQL server: it forwards bytes both ways
//! unchanged and reads the client's side of the wire protocol to count **round trips** (a
//! `Sync` ends an extended-protocol exchange, a simple `Query` is one exchange) and
//! **statements executed** (each `Execute` and each simple `Query`, by their SQL text). Used
//! on a short pass beside the timed runs, never in them: the relay adds its own latency.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// What the relay has seen since the last [`Relay::take`].
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Client-to-server exchanges that wait for the server's answer.
    pub round_trips: u64,
    /// Statements executed, by their SQL (whitespace squeezed).
    pub statements: BTreeMap<String, u64>,
}

impl Seen {
    pub fn statement_count(&self) -> u64 {
        self.statements.values().sum()
    }
}

/// A relay listening on a local port of its own.
pub struct Relay {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Relay {
    /// Listen on 127.0.0.1 (any free port) and relay every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = relay(client, upstream, &seen);
                });
            }
        });
        Ok(Relay { port, seen })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What was seen since the last call, and start counting afresh.
    pub fn take(&self) -> Seen {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn relay(client: TcpStream, upstream: SocketAddr, seen: &Mutex<Seen>) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut from_server, mut to_client) = (server.try_clone()?, client.try_clone()?);
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let (mut from_client, mut to_server) = (client, server);
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from_client.read(&mut buf)?;
        if n == 0 {
            break;
        }
        parser.feed(&buf[..n], seen);
        to_server.write_all(&buf[..n])?;
    }
    let _ = to_server.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}

/// The client's side of the protocol, read incrementally.
#[derive(Default)]
struct Parser {
    pending: Vec<u8>,
    started: bool,
    /// Prepared statements of this connection, by name.
    prepared: HashMap<String, String>,
    /// The statement of the last `Bind`, which the next `Execute` runs.
    bound: String,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8], seen: &Mutex<Seen>) {
        self.pending.extend_from_slice(bytes);
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.pending.len() < header {
                return;
            }
            let at = header - 4;
            let len = u32::from_be_bytes([
                self.pending[at],
                self.pending[at + 1],
                self.pending[at + 2],
                self.pending[at + 3],
            ]) as usize;
            let total = at + len;
            if self.pending.len() < total {
                return;
            }
            let msg: Vec<u8> = self.pending.drain(..total).collect();
            if self.started {
                self.message(msg[0], &msg[5..], seen);
            } else {
                // The startup packet; an SSL or GSS request (codes 80877103/4) comes before it.
                let code = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
                self.started = code != 80_877_103 && code != 80_877_104;
            }
        }
    }

    fn message(&mut self, kind: u8, body: &[u8], seen: &Mutex<Seen>) {
        let mut strings = body.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned());
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        match kind {
            b'P' => {
                let name = strings.next().unwrap_or_default();
                let sql = strings.next().unwrap_or_default();
                self.prepared.insert(name, squeeze(&sql));
            }
            b'B' => {
                let _portal = strings.next();
                let name = strings.next().unwrap_or_default();
                self.bound = self.prepared.get(&name).cloned().unwrap_or(name);
            }
            b'E' => *seen.statements.entry(self.bound.clone()).or_default() += 1,
            b'S' => seen.round_trips += 1,
            b'Q' => {
                seen.round_trips += 1;
                *seen.statements.entry(squeeze(&strings.next().unwrap_or_default())).or_default() += 1;
            }
            _ => {}
        }
    }
}

/// SQL with its runs of whitespace made single spaces.
fn squeeze(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
