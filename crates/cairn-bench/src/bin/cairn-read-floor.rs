//! `cairn-read-floor DB NS KEY`: what any replay kept in a SQLite file costs at the least, for
//! `bench/compare`'s command-line rows. It opens the file as cairn does (WAL, a busy timeout,
//! `synchronous=NORMAL`), reads one value with the statement `cairn cache get` runs, and
//! prints it: no checks, no schema, no counters, no argument parser.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, ns, key] = args.as_slice() else { return Err("usage: cairn-read-floor DB NS KEY".into()) };
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let value: Vec<u8> = conn.query_row(
        "SELECT value FROM cairn_cache WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        rusqlite::params![ns, key, 0],
        |r| r.get(0),
    )?;
    std::io::stdout().write_all(&value)?;
    Ok(())
}
