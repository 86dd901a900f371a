//! Durations and times as people write them in scripts: `90s`, `10m`, `1h30m`, `2d`, `500ms`;
//! `2026-12-01T09:00:00Z`, `2026-12-01T10:00:00+01:00`.

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

/// Parse an RFC 3339 time (`2026-12-01T09:00:00Z`, `2026-12-01 10:00:00.5+01:00`; the output
/// of `date --iso-8601=seconds`) into Unix milliseconds. The offset is required: a time
/// without one could be anyone's local time.
///
/// ```
/// assert_eq!(cairn::parse_time("1970-01-01T00:00:01Z")?, 1000);
/// assert_eq!(cairn::parse_time("1970-01-01T01:00:01+01:00")?, 1000);
/// assert!(cairn::parse_time("2026-12-01 09:00:00").is_err(), "no offset");
/// # Ok::<(), cairn::Error>(())
/// ```
pub fn parse_time(text: &str) -> Result<i64> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "invalid time {text:?} ({why}): write an RFC 3339 time with its offset, e.g. 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00"
        ))
    };
    let t = text.trim();
    let (Some(date), Some(rest)) = (t.get(..10), t.get(11..)) else {
        return Err(bad("too short"));
    };
    if !matches!(t.as_bytes()[10], b'T' | b't' | b' ') {
        return Err(bad("the date and the time must be separated by T"));
    }
    let (clock, offset_secs) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let Some(at) = rest.rfind(['+', '-']) else {
            return Err(bad("no offset: add Z for UTC, or +HH:MM"));
        };
        let (clock, offset) = rest.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the offset must be +HH:MM or -HH:MM"));
        }
        let (h, m) = (digits[..2].parse::<i64>().unwrap_or(0), digits[2..].parse::<i64>().unwrap_or(0));
        if h > 23 || m > 59 {
            return Err(bad("the offset is out of range"));
        }
        (clock, sign * (h * 3600 + m * 60))
    };
    let utc = humantime::parse_rfc3339_weak(&format!("{date}T{clock}Z")).map_err(|e| bad(&e.to_string()))?;
    let millis = utc
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad("before 1970"))
        .and_then(|d| i64::try_from(d.as_millis()).map_err(|_| bad("too far in the future")))?;
    Ok(millis - offset_secs * 1000)
}

/// A time in Unix milliseconds as RFC 3339 in UTC, to the millisecond:
/// `2026-12-01T09:00:00.000Z`. Times before 1970 are shown as 1970.
///
/// ```
/// assert_eq!(cairn::format_time(1000), "1970-01-01T00:00:01.000Z");
/// ```
pub fn format_time(millis: i64) -> String {
    let since_epoch = Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    let at = std::time::UNIX_EPOCH.checked_add(since_epoch).unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_millis(at).to_string()
}

/// Refuse a duration under a millisecond (cairn keeps time in milliseconds) where zero would
/// switch a guarantee off: `what` names the setting, `consequence` says what zero would do.
pub(crate) fn at_least_1ms(d: Duration, what: &str, consequence: &str) -> Result<()> {
    if d >= Duration::from_millis(1) {
        return Ok(());
    }
    Err(Error::invalid(format!("{what} of {} {consequence}: give at least 1ms", show(d))))
}

/// A duration the way people write it, and [`parse_duration`] reads it back: `0s`, `500ms`,
/// `1h 30m`.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(cairn::format_duration(Duration::from_secs(5400)), "1h 30m");
/// assert_eq!(cairn::parse_duration(&cairn::format_duration(Duration::from_millis(1500)))?, Duration::from_millis(1500));
/// # Ok::<(), cairn::Error>(())
/// ```
pub fn format_duration(d: Duration) -> String {
    show(d)
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
    fn times_with_any_offset_parse_to_the_same_instant_and_format_back_in_utc() {
        let utc = parse_time("2026-12-01T09:00:00Z").unwrap();
        for text in [
            "2026-12-01T09:00:00z",
            "2026-12-01 09:00:00Z",
            "2026-12-01T10:00:00+01:00",
            "2026-12-01T04:30:00-04:30",
            "2026-12-01T10:00:00+0100",
            "2026-12-01T09:00:00.000+00:00",
            " 2026-12-01T09:00:00Z\n",
        ] {
            assert_eq!(parse_time(text).unwrap(), utc, "{text:?}");
        }
        assert_eq!(parse_time("2026-12-01T09:00:00.25Z").unwrap(), utc + 250);
        assert_eq!(format_time(utc), "2026-12-01T09:00:00.000Z");
        assert_eq!(format_time(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn malformed_times_are_invalid_input_with_an_example() {
        for text in [
            "",
            "2026-12-01",
            "2026-12-01T09:00:00",
            "2026-12-01T09:00:00+1",
            "2026-12-01T09:00:00+25:00",
            "2026-13-01T09:00:00Z",
            "2026-12-01X09:00:00Z",
            "1969-12-31T23:59:59Z",
            "tomorrow",
            "2026-12-01T09:00:00+é",
        ] {
            let err = parse_time(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{text:?}");
            assert!(err.to_string().contains("e.g. 2026-12-01T09:00:00Z"), "{err}");
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
