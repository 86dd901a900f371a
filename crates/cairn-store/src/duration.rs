//! Durations as people write them in scripts: `90s`, `10m`, `1h30m`, `2d`, `500ms`.

use std::time::Duration;

use crate::error::{Error, Result};

/// Parse a duration written as numbers with units (`ms`, `s`, `m`, `h`, `d`, `w`; several may
/// follow each other, as in `1h30m`). A bare number is refused: `10` could mean anything.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(cairn::parse_duration("1h30m")?, Duration::from_secs(5400));
/// assert_eq!(cairn::parse_duration("500ms")?, Duration::from_millis(500));
/// assert!(cairn::parse_duration("10").is_err());
/// # Ok::<(), cairn::Error>(())
/// ```
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "invalid duration {text:?} ({why}): write a number and a unit, e.g. 90s, 10m, 1h30m, 2d, 500ms"
        ))
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("no unit"));
    }
    humantime::parse_duration(trimmed).map_err(|e| bad(&e.to_string()))
}

/// Refuse a duration under a millisecond (cairn keeps time in milliseconds) where zero would
/// switch a guarantee off: `what` names the setting, `consequence` says what zero would do.
pub(crate) fn at_least_1ms(d: Duration, what: &str, consequence: &str) -> Result<()> {
    if d >= Duration::from_millis(1) {
        return Ok(());
    }
    Err(Error::invalid(format!("{what} of {} {consequence}: give at least 1ms", show(d))))
}

/// A duration the way people write it: `500us`, `0s`, `1h 30m`.
pub(crate) fn show(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_parse() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("90s", s(90)),
            ("10m", s(600)),
            ("1h30m", s(5400)),
            ("2d", s(172_800)),
            ("500ms", Duration::from_millis(500)),
            ("1h 30m", s(5400)),
            ("1w", s(604_800)),
            ("0s", s(0)),
            ("1.5h", s(5400)),
        ] {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn durations_under_a_millisecond_are_refused_with_what_zero_would_do() {
        let err = at_least_1ms(Duration::ZERO, "a lock TTL", "gives no mutual exclusion").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "invalid input: a lock TTL of 0s gives no mutual exclusion: give at least 1ms"
        );
        assert!(at_least_1ms(Duration::from_micros(999), "x", "y")
            .unwrap_err()
            .to_string()
            .contains("999us"));
        assert!(at_least_1ms(Duration::from_millis(1), "x", "y").is_ok());
    }

    #[test]
    fn malformed_durations_are_invalid_input_with_an_example() {
        for text in ["", " ", "10", "-1s", "ten minutes", "5x", "1h30", "s"] {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{text}");
            assert!(err.to_string().contains("e.g. 90s"), "{err}");
        }
    }
}
