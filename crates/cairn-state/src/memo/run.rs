//! Recording a command's output while it runs: a [`MemoRecorder`] takes the pieces as they
//! come and writes them to the store in chunks of about 1 MiB, each in a short write
//! transaction of its own, so that memory stays at one chunk whatever the output's size; and
//! [`MemoRecorder::record_child`] pumps a child process's two pipes into it while passing
//! every piece on at once.

use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::storage::{EngineOps, MemoOps};

use super::record::{push_frames, Body, CHUNK_BYTES, FRAME_MAX};
use super::Stream;

/// How much a pipe read takes at a time.
const READ_BYTES: usize = 64 * 1024;

/// Reads of the two pipes not yet consumed: with a slow consumer the pipes fill and the
/// command waits, rather than memory filling.
const IN_FLIGHT: usize = 4;

/// Where a running command's output is recorded, handed to the `run` closure of
/// [`Cache::memo_stream`].
pub struct MemoRecorder<'c, 'a> {
    cache: &'c Cache<'a>,
    key: &'c str,
    /// Which result of the key this is: its chunks carry it.
    gen: i64,
    /// Frames not yet written.
    buf: Vec<u8>,
    /// Chunks written.
    chunks: u32,
    /// The result was stored, or there is nothing left to clean up.
    kept: bool,
}

/// How a child recorded by [`MemoRecorder::record_child`] ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct ChildRun {
    /// Its exit status, or 128 + N if signal N killed it, as a shell reports it.
    pub status: i32,
    /// The first error of passing output on (a reader that went away: a closed pipe). The
    /// output was still recorded to the end; nothing more was passed on after it.
    pub passing_on: Option<io::Error>,
}

impl<'c, 'a> MemoRecorder<'c, 'a> {
    pub(crate) fn new(cache: &'c Cache<'a>, key: &'c str) -> Self {
        MemoRecorder { cache, key, gen: new_gen(), buf: Vec::new(), chunks: 0, kept: false }
    }

    /// Record `bytes` written to `stream`. Every ~1 MiB is written to the store at once.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        for piece in bytes.chunks(FRAME_MAX) {
            push_frames(&mut self.buf, stream, piece);
            if self.buf.len() >= CHUNK_BYTES {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Run `child` to its end, its stdout and stderr (spawned piped) recorded and each piece
    /// handed at once to `pass_on`, which writes it where the caller's own output goes. Reads
    /// of the two pipes are pumped from two threads, in the order they complete, so a replay
    /// interleaves them as the command wrote them. If `pass_on` fails, the rest is still
    /// recorded (the result is whole for the next call) and the error is returned in
    /// [`ChildRun::passing_on`].
    pub fn record_child(
        &mut self,
        child: &mut Child,
        pass_on: &mut dyn FnMut(Stream, &[u8]) -> io::Result<()>,
    ) -> Result<ChildRun> {
        let (tx, rx) = mpsc::sync_channel::<(Stream, Vec<u8>)>(IN_FLIGHT);
        let mut readers = Vec::new();
        let pipes: [(Stream, Option<Box<dyn Read + Send>>); 2] = [
            (Stream::Stdout, child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
            (Stream::Stderr, child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
        ];
        for (stream, pipe) in pipes {
            let Some(mut pipe) = pipe else { continue };
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || loop {
                let mut buf = vec![0u8; READ_BYTES];
                match pipe.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send((stream, buf)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }));
        }
        drop(tx);
        let mut passing_on = None;
        let mut recording = Ok(());
        for (stream, bytes) in rx {
            if passing_on.is_none() {
                passing_on = pass_on(stream, &bytes).err();
            }
            if recording.is_ok() {
                recording = self.write(stream, &bytes);
            }
        }
        for r in readers {
            let _ = r.join();
        }
        let status = child.wait().map_err(|e| Error::Io {
            action: "wait for the command run by",
            path: self.cache.store.path().to_path_buf(),
            source: e,
        })?;
        recording?;
        Ok(ChildRun { status: shell_status(status), passing_on })
    }

    /// The output recorded: inline if it never filled a chunk, else the last chunk is written
    /// and the chunks are named.
    pub(crate) fn finish(&mut self) -> Result<Body> {
        if self.chunks == 0 {
            return Ok(Body::Inline(std::mem::take(&mut self.buf)));
        }
        if !self.buf.is_empty() {
            self.flush()?;
        }
        Ok(Body::Chunks { gen: self.gen, count: self.chunks })
    }

    /// Whether the result was stored; if not, its chunks are dropped now.
    pub(crate) fn mark_kept(&mut self, stored: bool) {
        if !stored {
            self.drop_chunks();
        }
        self.kept = true;
    }

    fn flush(&mut self) -> Result<()> {
        let (ns, key, gen, seq) = (self.cache.namespace(), self.key, self.gen, i64::from(self.chunks));
        let data = &self.buf;
        self.cache.write(|s| s.engine.memo_chunk_put(ns, key, gen, seq, data))?;
        self.chunks += 1;
        self.buf.clear();
        if !self.cache.in_tx() {
            self.cache.store.engine.release_memory();
        }
        Ok(())
    }

    fn drop_chunks(&mut self) {
        if self.chunks > 0 && !self.cache.in_tx() {
            let (ns, key, gen) = (self.cache.namespace(), self.key, self.gen);
            // If this fails, the chunks are orphans the next sweep removes.
            let _ = self.cache.write(|s| s.engine.memo_chunks_drop(ns, key, gen));
        }
        self.chunks = 0;
    }
}

impl Drop for MemoRecorder<'_, '_> {
    /// A run that failed, panicked or was not kept leaves no chunks behind (inside a
    /// transaction, its rollback removes them).
    fn drop(&mut self) {
        if !self.kept {
            self.drop_chunks();
        }
    }
}

impl std::fmt::Debug for MemoRecorder<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoRecorder")
            .field("key", &self.key)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

/// The status a shell would report: the exit code, or 128 + the signal that killed it.
fn shell_status(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A result's generation: unique across processes and runs (a hash of this process's unique
/// token), and never 0, which stands for "no chunks".
fn new_gen() -> i64 {
    let digest = Sha256::digest(crate::process::token().as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    match i64::from_be_bytes(b) {
        0 => 1,
        g => g,
    }
}
