//! How values become bytes and back: raw bytes, UTF-8 text, or JSON through serde.
//!
//! There is deliberately no executable serialization format: a value read back can only ever
//! become data.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a stored value could not become the requested type: what was expected, and the detail.
#[derive(Debug)]
pub struct DecodeError {
    pub(crate) expected: &'static str,
    pub(crate) detail: String,
}

impl DecodeError {
    /// A decoding failure: `expected` names the type ("JSON"), `detail` says what was found.
    pub fn new(expected: &'static str, detail: impl Into<String>) -> Self {
        DecodeError { expected, detail: detail.into() }
    }
}

/// A value that can be stored: it turns into bytes.
///
/// Implemented for byte slices and vectors (stored as is), strings (stored as UTF-8), integers
/// (stored as decimal text, like [`Cache::incr`](crate::Cache::incr) does) and [`Json`].
pub trait Encode {
    /// The bytes to store.
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>>;
}

/// A value that can be read back from stored bytes.
pub trait Decode: Sized {
    /// Build the value from the stored bytes.
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError>;
}

/// Stores any serde type as JSON.
///
/// ```
/// use cairn::{Json, Store};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Page { url: String, status: u16 }
///
/// let store = Store::open_in_memory()?;
/// let cache = store.cache("pages");
/// let page = Page { url: "https://example.com".into(), status: 200 };
/// cache.set("home", Json(&page), None)?;
/// let Json(back) = cache.get::<Json<Page>>("home")?.unwrap();
/// assert_eq!(back, page);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> Encode for Json<T> {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        serde_json::to_vec(&self.0)
            .map(Cow::Owned)
            .map_err(|e| crate::Error::invalid(format!("value cannot be encoded as JSON: {e}")))
    }
}

impl<T: DeserializeOwned> Decode for Json<T> {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| DecodeError::new("JSON of the requested type", e.to_string()))
    }
}

impl Encode for [u8] {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl Encode for Vec<u8> {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl Encode for str {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self.as_bytes()))
    }
}

impl Encode for String {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self.as_bytes()))
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        (**self).encode()
    }
}

impl Decode for Vec<u8> {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        Ok(bytes)
    }
}

impl Decode for String {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        String::from_utf8(bytes).map_err(|e| DecodeError::new("UTF-8 text", e.to_string()))
    }
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
                Ok(Cow::Owned(self.to_string().into_bytes()))
            }
        }
        impl Decode for $t {
            fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| DecodeError::new("an integer", "the value is not text"))?;
                text.trim().parse().map_err(|e| {
                    DecodeError::new("an integer", format!("{e}: {:?}", truncated(text)))
                })
            }
        }
    )*};
}
int_codec!(i64, u64, i32, u32);

/// The start of a value, for error messages that must stay one line.
pub(crate) fn truncated(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_exactly_including_nul_and_invalid_utf8() -> crate::Result<()> {
        let raw = vec![0u8, 159, 146, 150, 0, 255];
        let enc = raw.encode()?.into_owned();
        assert_eq!(Vec::<u8>::decode(enc).ok(), Some(raw));
        Ok(())
    }

    #[test]
    fn text_decoding_rejects_invalid_utf8_with_the_reason() {
        let err = String::decode(vec![0xff, 0xfe]).unwrap_err();
        assert_eq!(err.expected, "UTF-8 text");
    }

    #[test]
    fn integers_are_decimal_text_and_reject_garbage() -> crate::Result<()> {
        assert_eq!(42i64.encode()?.as_ref(), b"42");
        assert_eq!(i64::decode(b"-7".to_vec()).ok(), Some(-7));
        assert!(i64::decode(b"seven".to_vec()).is_err());
        Ok(())
    }

    #[test]
    fn json_round_trips_and_reports_type_mismatch() -> crate::Result<()> {
        let enc = Json(vec![1, 2, 3]).encode()?.into_owned();
        assert_eq!(enc, b"[1,2,3]");
        let Json(v) = Json::<Vec<i32>>::decode(enc.clone()).map_err(|e| crate::Error::invalid(e.detail))?;
        assert_eq!(v, vec![1, 2, 3]);
        assert!(Json::<String>::decode(enc).is_err());
        Ok(())
    }
}
