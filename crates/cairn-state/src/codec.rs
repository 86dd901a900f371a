//! How values become bytes and back: raw bytes, UTF-8 text, integers, floats, or JSON through
//! serde, each stored with its [`ValueKind`] so that Rust, the CLI and Python read a value back
//! as the type it was written as.
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

/// What a stored value is, kept beside its bytes: what another language reads it back as.
///
/// | kind | bytes | Rust | Python | `cairn cache get` prints |
/// |---|---|---|---|---|
/// | `Bytes` | as given | `Vec<u8>` | `bytes` | the bytes |
/// | `Text` | UTF-8 | `String`, `&str` | `str` | the text |
/// | `Int` | decimal | `i64`, `u64`, `i32`, `u32` | `int` | the digits |
/// | `Float` | decimal (`1.5`, `1e100`, `inf`, `NaN`) | `f64` | `float` | the number |
/// | `Json` | JSON text | [`Json<T>`], `bool` | `dict`, `list`, `bool`, `None` | the JSON |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// Raw bytes.
    Bytes,
    /// UTF-8 text.
    Text,
    /// A 64-bit integer, as decimal text.
    Int,
    /// A 64-bit float, as decimal text.
    Float,
    /// JSON text.
    Json,
}

impl ValueKind {
    /// The number stored in the file (0 to 4).
    pub fn code(self) -> u8 {
        match self {
            ValueKind::Bytes => 0,
            ValueKind::Text => 1,
            ValueKind::Int => 2,
            ValueKind::Float => 3,
            ValueKind::Json => 4,
        }
    }

    /// The kind stored as `code`, if it is one.
    pub fn from_code(code: u8) -> Option<ValueKind> {
        Some(match code {
            0 => ValueKind::Bytes,
            1 => ValueKind::Text,
            2 => ValueKind::Int,
            3 => ValueKind::Float,
            4 => ValueKind::Json,
            _ => return None,
        })
    }

    /// Its name: `bytes`, `text`, `int`, `float` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Bytes => "bytes",
            ValueKind::Text => "text",
            ValueKind::Int => "int",
            ValueKind::Float => "float",
            ValueKind::Json => "json",
        }
    }

    /// What a value written without a kind (by cairn before schema version 4) most likely
    /// is: a canonical decimal integer (what `incr` wrote), else UTF-8 text, else bytes.
    pub(crate) fn guess(bytes: &[u8]) -> ValueKind {
        match std::str::from_utf8(bytes) {
            Ok(t) if t.parse::<i64>().is_ok_and(|n| n.to_string() == t) => ValueKind::Int,
            Ok(_) => ValueKind::Text,
            Err(_) => ValueKind::Bytes,
        }
    }
}

/// A value that can be stored: it turns into bytes, and says what [`ValueKind`] they are.
///
/// Implemented for byte slices and vectors (stored as is), strings (stored as UTF-8), integers
/// (stored as decimal text, like [`Cache::incr`](crate::Cache::incr) does), `f64`, `bool`,
/// [`Json`] and [`Value`].
pub trait Encode {
    /// The bytes to store.
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>>;

    /// What the bytes are. Default: [`ValueKind::Bytes`].
    fn kind(&self) -> ValueKind {
        ValueKind::Bytes
    }
}

/// A value that can be read back from stored bytes.
pub trait Decode: Sized {
    /// Build the value from the stored bytes.
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError>;

    /// Build the value from the stored bytes and their kind. Default: [`Decode::decode`],
    /// whatever the kind (a `String` reads a value stored as JSON as its JSON text).
    fn decode_typed(kind: ValueKind, bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let _ = kind;
        Self::decode(bytes)
    }
}

/// Any stored value, as the type it was stored as: what a reader that does not know the type
/// in advance (a language binding, a generic tool) asks for.
///
/// ```
/// use cairn::{Json, Store, Value};
///
/// let store = Store::open_in_memory()?;
/// let cache = store.cache("c");
/// cache.set("n", 42i64, None)?;
/// cache.set("s", "hello", None)?;
/// cache.set("j", Json(vec![1, 2]), None)?;
/// assert_eq!(cache.get::<Value>("n")?, Some(Value::Int(42)));
/// assert_eq!(cache.get::<Value>("s")?, Some(Value::Text("hello".into())));
/// assert_eq!(cache.get::<Value>("j")?, Some(Value::Json("[1,2]".into())));
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// UTF-8 text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// JSON text.
    Json(String),
}

impl Value {
    /// Text if `bytes` are UTF-8, else bytes: what a value given on a command line or a pipe
    /// most likely is (`cairn cache set k hello` stores text, which Python reads as `str`).
    pub fn text_or_bytes(bytes: Vec<u8>) -> Value {
        String::from_utf8(bytes).map_or_else(|e| Value::Bytes(e.into_bytes()), Value::Text)
    }

    /// A value of `kind` from its stored form, checked: `Int` must be a decimal integer,
    /// `Float` a number, `Json` valid JSON, `Text` UTF-8. `InvalidInput` otherwise.
    ///
    /// ```
    /// use cairn::{Value, ValueKind};
    ///
    /// assert_eq!(Value::from_kind(ValueKind::Int, b"42".to_vec())?, Value::Int(42));
    /// assert!(Value::from_kind(ValueKind::Json, b"{oops".to_vec()).is_err());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn from_kind(kind: ValueKind, bytes: Vec<u8>) -> crate::Result<Value> {
        let value = Value::decode_typed(kind, bytes)
            .map_err(|e| crate::Error::invalid(format!("the value is not {}: {}", e.expected, e.detail)))?;
        if let Value::Json(j) = &value {
            serde_json::from_str::<serde::de::IgnoredAny>(j)
                .map_err(|e| crate::Error::invalid(format!("the value is not JSON: {e}")))?;
        }
        Ok(value)
    }

    /// Its kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Bytes(_) => ValueKind::Bytes,
            Value::Text(_) => ValueKind::Text,
            Value::Int(_) => ValueKind::Int,
            Value::Float(_) => ValueKind::Float,
            Value::Json(_) => ValueKind::Json,
        }
    }
}

impl Encode for Value {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        match self {
            Value::Bytes(b) => Ok(Cow::Borrowed(b)),
            Value::Text(t) => Ok(Cow::Borrowed(t.as_bytes())),
            Value::Int(n) => n.encode().map(|c| Cow::Owned(c.into_owned())),
            Value::Float(x) => x.encode().map(|c| Cow::Owned(c.into_owned())),
            Value::Json(j) => {
                // Checked here, so that every reader in every language can parse it.
                serde_json::from_str::<serde::de::IgnoredAny>(j)
                    .map_err(|e| crate::Error::invalid(format!("a Value::Json is not valid JSON: {e}")))?;
                Ok(Cow::Borrowed(j.as_bytes()))
            }
        }
    }

    fn kind(&self) -> ValueKind {
        Value::kind(self)
    }
}

impl Decode for Value {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        Ok(Value::Bytes(bytes))
    }

    fn decode_typed(kind: ValueKind, bytes: Vec<u8>) -> Result<Self, DecodeError> {
        Ok(match kind {
            ValueKind::Bytes => Value::Bytes(bytes),
            ValueKind::Text => Value::Text(String::decode(bytes)?),
            ValueKind::Int => Value::Int(i64::decode(bytes)?),
            ValueKind::Float => Value::Float(f64::decode(bytes)?),
            ValueKind::Json => Value::Json(String::decode(bytes)?),
        })
    }
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

/// A value bound to or read from users' own SQL: SQLite's five storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for SqlValue {
    fn from(n: i64) -> Self {
        SqlValue::Integer(n)
    }
}

impl From<f64> for SqlValue {
    fn from(x: f64) -> Self {
        SqlValue::Real(x)
    }
}

impl From<&str> for SqlValue {
    fn from(t: &str) -> Self {
        SqlValue::Text(t.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(t: String) -> Self {
        SqlValue::Text(t)
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(b: Vec<u8>) -> Self {
        SqlValue::Blob(b)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// Rows of a query: each a vector of its columns' values.
pub type Rows = Vec<Vec<SqlValue>>;

impl<T: Serialize> Encode for Json<T> {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        serde_json::to_vec(&self.0)
            .map(Cow::Owned)
            .map_err(|e| crate::Error::invalid(format!("value cannot be encoded as JSON: {e}")))
    }

    fn kind(&self) -> ValueKind {
        ValueKind::Json
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

    fn kind(&self) -> ValueKind {
        ValueKind::Text
    }
}

impl Encode for String {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self.as_bytes()))
    }

    fn kind(&self) -> ValueKind {
        ValueKind::Text
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        (**self).encode()
    }

    fn kind(&self) -> ValueKind {
        (**self).kind()
    }
}

/// Stored as decimal text that reads back exactly: Rust's shortest round-trip form (`1.5`,
/// `1e100`, `inf`, `NaN`), which Python's `float()` also reads.
impl Encode for f64 {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Owned(format!("{self:?}").into_bytes()))
    }

    fn kind(&self) -> ValueKind {
        ValueKind::Float
    }
}

impl Decode for f64 {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let text =
            std::str::from_utf8(&bytes).map_err(|_| DecodeError::new("a float", "the value is not text"))?;
        text.trim().parse().map_err(|e| DecodeError::new("a float", format!("{e}: {:?}", truncated(text))))
    }
}

/// Stored as JSON `true` or `false`, which is what Python's `True` and `False` become.
impl Encode for bool {
    fn encode(&self) -> crate::Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(if *self { b"true" } else { b"false" }))
    }

    fn kind(&self) -> ValueKind {
        ValueKind::Json
    }
}

impl Decode for bool {
    fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        match bytes.as_slice() {
            b"true" => Ok(true),
            b"false" => Ok(false),
            other => Err(DecodeError::new(
                "a bool (JSON true or false)",
                format!("{:?}", truncated(&String::from_utf8_lossy(other))),
            )),
        }
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

            fn kind(&self) -> ValueKind {
                ValueKind::Int
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
    fn every_kind_round_trips_through_value_and_floats_keep_every_bit() -> crate::Result<()> {
        for v in [
            Value::Bytes(vec![0, 255]),
            Value::Text("héllo".into()),
            Value::Int(i64::MIN),
            Value::Float(0.1),
            Value::Float(1e100),
            Value::Float(f64::INFINITY),
            Value::Float(-0.0),
            Value::Json(r#"{"a":[1,null]}"#.into()),
        ] {
            let bytes = v.encode()?.into_owned();
            let back = Value::decode_typed(v.kind(), bytes).map_err(|e| crate::Error::invalid(e.detail))?;
            match (&v, &back) {
                (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(back, v),
            }
            assert_eq!(ValueKind::from_code(v.kind().code()), Some(v.kind()));
        }
        let nan = Value::Float(f64::NAN).encode()?.into_owned();
        assert!(f64::decode(nan).is_ok_and(f64::is_nan));
        // What Python writes for its floats reads back too.
        for (text, want) in [("1e+100", 1e100), ("nan", f64::NAN), ("-inf", f64::NEG_INFINITY), ("0.1", 0.1)]
        {
            let got = f64::decode(text.as_bytes().to_vec()).map_err(|e| crate::Error::invalid(e.detail))?;
            assert!(got == want || (got.is_nan() && want.is_nan()), "{text}");
        }
        assert!(Value::Json("{not json".into()).encode().is_err());
        Ok(())
    }

    #[test]
    fn values_written_before_kinds_were_stored_are_guessed_as_int_text_or_bytes() {
        assert_eq!(ValueKind::guess(b"42"), ValueKind::Int);
        assert_eq!(ValueKind::guess(b"-7"), ValueKind::Int);
        assert_eq!(ValueKind::guess(b"007"), ValueKind::Text, "not what incr writes");
        assert_eq!(ValueKind::guess(b"+7"), ValueKind::Text);
        assert_eq!(ValueKind::guess(b"99999999999999999999"), ValueKind::Text, "beyond i64");
        assert_eq!(ValueKind::guess(b"hello"), ValueKind::Text);
        assert_eq!(ValueKind::guess(b"{\"a\":1}"), ValueKind::Text);
        assert_eq!(ValueKind::guess(&[0xff, 0]), ValueKind::Bytes);
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
