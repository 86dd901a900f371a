//! The storage engines. Only this module (and the error conversion) names a database crate;
//! features decide policy and call the engine's operations. PostgreSQL will be a sibling of
//! `sqlite/` with the same file names.

pub(crate) mod sqlite;

use crate::codec::ValueKind;

/// A stored value as read: its bytes and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub bytes: Vec<u8>,
    pub kind: ValueKind,
}

impl Stored {
    /// From the kind's code as stored. A code this version does not know (a later version
    /// wrote it, which the schema version check would have refused) reads as bytes.
    pub fn new(bytes: Vec<u8>, code: i64) -> Stored {
        let kind = u8::try_from(code).ok().and_then(ValueKind::from_code).unwrap_or(ValueKind::Bytes);
        Stored { bytes, kind }
    }
}
