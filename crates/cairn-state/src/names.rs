//! Names and sizes every feature checks the same way: namespaces, keys, values, job and lock
//! names, migration scopes. Below the features, so that none of them borrows another's rules.

use crate::error::{Error, Result};

/// The longest key, in bytes (also of ids, lock and limiter names).
///
/// On PostgreSQL the server's own limit comes first: a btree index entry holds at most 2,704
/// bytes, so keys, ids and names longer than about 2,700 bytes (less for text that compresses
/// poorly) are refused there with `InvalidInput`, saying so.
pub const MAX_KEY_BYTES: usize = 4096;
/// The longest namespace name, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 256;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// A namespace name: 1 to [`MAX_NAMESPACE_BYTES`] bytes without NUL.
pub(crate) fn validate_ns(ns: &str) -> Result<()> {
    validate_name("namespace", ns, MAX_NAMESPACE_BYTES)
}

/// A cache key: 1 to [`MAX_KEY_BYTES`] bytes without NUL.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    validate_name("key", key, MAX_KEY_BYTES)
}

/// A migration scope: a name of 1 to 256 bytes without NUL.
pub(crate) fn validate_scope(scope: &str) -> Result<()> {
    if scope.is_empty() || scope.len() > 256 || scope.contains('\0') {
        return Err(Error::invalid("a migration scope is a name of 1 to 256 bytes without NUL"));
    }
    Ok(())
}

/// A name of `what` (said in the message): 1 to `max` bytes without NUL.
pub(crate) fn validate_name(what: &str, name: &str, max: usize) -> Result<()> {
    let a = article(what);
    if name.is_empty() {
        return Err(Error::invalid(format!("{a} {what} must not be empty")));
    }
    if name.len() > max {
        return Err(Error::invalid(format!(
            "{a} {what} is at most {max} bytes; this one has {}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(Error::invalid(format!("{a} {what} must not contain NUL bytes")));
    }
    Ok(())
}

/// "an" before a vowel ("an id"), else "a" ("a key").
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A value: at most [`MAX_VALUE_BYTES`].
pub(crate) fn validate_value(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(Error::invalid(format!(
            "a value is at most {MAX_VALUE_BYTES} bytes; this one has {}",
            bytes.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_with_a_reason() {
        assert!(validate_key("k").is_ok());
        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert_eq!(msg(validate_key("")), "invalid input: a key must not be empty");
        assert!(msg(validate_key(&"x".repeat(MAX_KEY_BYTES + 1))).contains("at most 4096 bytes"));
        assert!(msg(validate_ns("a\0b")).contains("NUL"));
    }

    #[test]
    fn an_id_takes_an_and_a_key_takes_a() {
        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert_eq!(msg(validate_name("id", "", 10)), "invalid input: an id must not be empty");
        assert_eq!(msg(validate_name("worker", "", 10)), "invalid input: a worker must not be empty");
    }
}
