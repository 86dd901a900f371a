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
    fn malformed_durations_are_invalid_input_with_an_example() {
        for text in ["", " ", "10", "-1s", "ten minutes", "5x", "1h30", "s"] {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{text}");
            assert!(err.to_string().contains("e.g. 90s"), "{err}");
        }
    }
}
