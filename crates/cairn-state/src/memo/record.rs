//! How a memoized result is stored: a small record in the cache entry (when it was produced,
//! the status, and the output itself or where its chunks are), the output as frames.
//!
//! A frame is a stream tag (1 stdout, 2 stderr), a 32-bit big-endian length and that many
//! bytes; the output is its frames in the order the command wrote them, so a replay
//! interleaves stdout and stderr as the command did (at the granularity of its writes).
//! Output up to [`CHUNK_BYTES`] is kept inline in the record; beyond that, in chunks of
//! about that size (`cairn_memo_chunk`), each a run of whole frames.

use std::borrow::Cow;

use crate::codec::{Decode, DecodeError, Encode};
use crate::error::Result;

use super::Stream;

/// About how much output a chunk holds, and the most kept inline: a replay or a recording
/// holds about this much in memory at a time, whatever the size of the output.
pub(crate) const CHUNK_BYTES: usize = 1024 * 1024;

/// The largest frame: writes longer than this are split.
pub(crate) const FRAME_MAX: usize = 64 * 1024;

const FRAME_HEAD: usize = 5;

/// The first format: stdout and stderr whole, one after the other. Still read.
const MAGIC_V1: &[u8; 6] = b"CMEMO1";
const HEADER_V1: usize = MAGIC_V1.len() + 8 + 4 + 8;

/// Frames, inline or in chunks.
const MAGIC: &[u8; 6] = b"CMEMO2";
const HEADER: usize = MAGIC.len() + 8 + 4 + 8 + 4;

/// Where a result's output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// Its frames, in the record.
    Inline(Vec<u8>),
    /// In `count` chunks of result `gen` of the key.
    Chunks { gen: i64, count: u32 },
}

/// A stored result: when it was produced, its status, its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub produced_at: i64,
    pub status: i32,
    pub body: Body,
}

impl Encode for Record {
    fn encode(&self) -> Result<Cow<'_, [u8]>> {
        let (gen, count, inline): (i64, u32, &[u8]) = match &self.body {
            Body::Inline(frames) => (0, 0, frames),
            Body::Chunks { gen, count } => (*gen, *count, &[]),
        };
        let mut b = Vec::with_capacity(HEADER + inline.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.produced_at.to_be_bytes());
        b.extend_from_slice(&self.status.to_be_bytes());
        b.extend_from_slice(&gen.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(inline);
        Ok(Cow::Owned(b))
    }
}

impl Decode for Record {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let bad = |what: &str| DecodeError::new("a memoized command result", what.to_owned());
        let be = |at: usize, n: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            a[8 - n..].copy_from_slice(&bytes[at..at + n]);
            a
        };
        if bytes.len() >= HEADER && &bytes[..MAGIC.len()] == MAGIC {
            let produced_at = i64::from_be_bytes(be(6, 8));
            let status = i32::from_be_bytes(bytes[14..18].try_into().map_err(|_| bad("short status"))?);
            let gen = i64::from_be_bytes(be(18, 8));
            let count = u32::from_be_bytes(bytes[26..30].try_into().map_err(|_| bad("short chunk count"))?);
            let body = if count == 0 {
                let frames = bytes[HEADER..].to_vec();
                if !frames_are_whole(&frames) {
                    return Err(bad("a frame runs past the record"));
                }
                Body::Inline(frames)
            } else {
                Body::Chunks { gen, count }
            };
            return Ok(Record { produced_at, status, body });
        }
        if bytes.len() >= HEADER_V1 && &bytes[..MAGIC_V1.len()] == MAGIC_V1 {
            let produced_at = i64::from_be_bytes(be(6, 8));
            let status = i32::from_be_bytes(bytes[14..18].try_into().map_err(|_| bad("short status"))?);
            let out_len = u64::from_be_bytes(be(18, 8));
            let out_end = usize::try_from(out_len)
                .ok()
                .and_then(|n| n.checked_add(HEADER_V1))
                .filter(|&end| end <= bytes.len())
                .ok_or_else(|| bad("stdout length beyond the record"))?;
            let mut frames = Vec::with_capacity(bytes.len());
            push_frames(&mut frames, Stream::Stdout, &bytes[HEADER_V1..out_end]);
            push_frames(&mut frames, Stream::Stderr, &bytes[out_end..]);
            return Ok(Record { produced_at, status, body: Body::Inline(frames) });
        }
        Err(bad("no memo record header"))
    }
}

/// When a stored result was produced, read from its header alone (no copy of its output).
pub(crate) fn produced_at(bytes: &[u8]) -> Option<i64> {
    let whole = (bytes.len() >= HEADER && &bytes[..MAGIC.len()] == MAGIC)
        || (bytes.len() >= HEADER_V1 && &bytes[..MAGIC_V1.len()] == MAGIC_V1);
    whole.then(|| i64::from_be_bytes(bytes[6..14].try_into().unwrap_or([0; 8])))
}

/// Append `bytes` written to `stream` as frames of at most [`FRAME_MAX`] bytes.
pub(crate) fn push_frames(buf: &mut Vec<u8>, stream: Stream, bytes: &[u8]) {
    for piece in bytes.chunks(FRAME_MAX) {
        buf.push(match stream {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        });
        buf.extend_from_slice(&(piece.len() as u32).to_be_bytes());
        buf.extend_from_slice(piece);
    }
}

/// The frames of `bytes`, in order; `None` at the first one that is damaged.
pub(crate) fn frames(bytes: &[u8]) -> impl Iterator<Item = Option<(Stream, &[u8])>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let frame = (|| {
            let head = bytes.get(at..at + FRAME_HEAD)?;
            let stream = match head[0] {
                1 => Stream::Stdout,
                2 => Stream::Stderr,
                _ => return None,
            };
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let body = bytes.get(at + FRAME_HEAD..at + FRAME_HEAD + len)?;
            Some((stream, body, FRAME_HEAD + len))
        })();
        match frame {
            Some((stream, body, size)) => {
                at += size;
                Some(Some((stream, body)))
            }
            None => {
                at = bytes.len();
                Some(None)
            }
        }
    })
}

fn frames_are_whole(bytes: &[u8]) -> bool {
    frames(bytes).all(|f| f.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(parts: &[(Stream, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (s, bytes) in parts {
            push_frames(&mut b, *s, bytes);
        }
        b
    }

    #[test]
    fn records_round_trip_inline_or_chunked_with_binary_outputs() {
        let frames = inline(&[
            (Stream::Stdout, &[0, 255, 10]),
            (Stream::Stderr, &[0xc3, 0x28]),
            (Stream::Stdout, b""),
        ]);
        for body in [Body::Inline(frames), Body::Inline(Vec::new()), Body::Chunks { gen: -7, count: 3 }] {
            let r = Record { produced_at: 1_700_000_000_123, status: -3, body };
            let back = Record::decode(r.encode().unwrap().into_owned()).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn frames_come_back_in_order_and_long_writes_are_split() {
        let big = vec![7u8; FRAME_MAX * 2 + 1];
        let b = inline(&[(Stream::Stderr, b"e"), (Stream::Stdout, &big)]);
        let got: Vec<(Stream, usize)> = frames(&b).map(|f| f.map(|(s, x)| (s, x.len())).unwrap()).collect();
        assert_eq!(
            got,
            [
                (Stream::Stderr, 1),
                (Stream::Stdout, FRAME_MAX),
                (Stream::Stdout, FRAME_MAX),
                (Stream::Stdout, 1)
            ]
        );
    }

    #[test]
    fn first_format_records_read_as_stdout_then_stderr() {
        let mut b = MAGIC_V1.to_vec();
        b.extend_from_slice(&5i64.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&3u64.to_be_bytes());
        b.extend_from_slice(b"outerr");
        let r = Record::decode(b).unwrap();
        assert_eq!((r.produced_at, r.status), (5, 2));
        assert_eq!(r.body, Body::Inline(inline(&[(Stream::Stdout, b"out"), (Stream::Stderr, b"err")])));
    }

    #[test]
    fn truncated_or_foreign_records_are_decode_errors() {
        let r = Record { produced_at: 5, status: 0, body: Body::Inline(inline(&[(Stream::Stdout, b"abc")])) };
        let bytes = r.encode().unwrap().into_owned();
        assert!(Record::decode(bytes[..HEADER - 1].to_vec()).is_err());
        assert!(Record::decode(bytes[..bytes.len() - 1].to_vec()).is_err(), "a frame cut short");
        assert!(Record::decode(b"plain value that is long enough to be a header".to_vec()).is_err());
        let mut lying = MAGIC_V1.to_vec();
        lying.extend_from_slice(&[0; 12]);
        lying.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(Record::decode(lying).is_err());
    }
}
