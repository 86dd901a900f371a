//! Durations and times as people write them in scripts: `90s`, `10m`, `1h30m`, `2d`, `500ms`;
//! `2026-12-01T09:00:00Z`, `2026-12-01T10:00:00+01:00`.

use std::time::Duration;

use crate::clock::{EARLIEST_TIME_MILLIS, LATEST_TIME_MILLIS};
use crate::error::{Error, Result};

/// Parse a duration: one or more numbers, each followed by its unit; the terms add up.
///
/// This is the grammar of every duration cairn reads as text: the CLI's `--ttl`, `--lease`,
/// `--wait`, `--busy-timeout`..., a batch's `"ttl"`, and the strings the Python package takes
/// (`ttl="1h"`).
///
/// - **A number** is digits with an optional decimal part: `90`, `1.5`, `0.25` (not `.5`,
///   `1.`, `-1` or `1e3`). Every number needs a unit: a bare `10` is refused, since it could
///   mean anything.
/// - **A unit** is one of these, in any case (`1H` is `1h`, `10Min` is `10min`):
///
///   | unit | written |
///   |---|---|
///   | weeks (7 days) | `w`, `week`, `weeks` |
///   | days (24 hours) | `d`, `day`, `days` |
///   | hours | `h`, `hr`, `hrs`, `hour`, `hours` |
///   | minutes | `m`, `min`, `mins`, `minute`, `minutes` |
///   | seconds | `s`, `sec`, `secs`, `second`, `seconds` |
///   | milliseconds | `ms`, `msec`, `msecs`, `millisecond`, `milliseconds` |
///   | microseconds | `us`, `usec`, `usecs`, `microsecond`, `microseconds` |
///   | nanoseconds | `ns`, `nsec`, `nsecs`, `nanosecond`, `nanoseconds` |
///
/// - **Refused so that no unit is mistaken for another**: a capital `M` alone (minutes or
///   months? write `m` or `min`), and months and years in any spelling (`mo`, `month`, `y`,
///   `year`...): their length varies, and no script needs them; write days (`30d`).
/// - **Spaces** may stand between a number and its unit and between terms, and around the
///   whole: `1h30m`, `1h 30m`, `1 hour 30 minutes`, `5 minutes` are all the same kind of text.
///   Nothing else may: `1h,30m` is refused.
/// - Terms may come in any order and repeat; a fraction is kept to the nanosecond
///   (`1.5h` = `1h30m`, `0.25s` = `250ms`). `0s` is zero, which the settings where zero would
///   switch a guarantee off refuse in turn.
///
/// [`format_duration`] prints durations in this grammar, and what it prints parses back to
/// the same duration.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(cairn::parse_duration("1h30m")?, Duration::from_secs(5400));
/// assert_eq!(cairn::parse_duration("1.5H")?, Duration::from_secs(5400));
/// assert_eq!(cairn::parse_duration("5 minutes")?, Duration::from_secs(300));
/// assert_eq!(cairn::parse_duration("500ms")?, Duration::from_millis(500));
/// assert!(cairn::parse_duration("10").is_err(), "no unit");
/// assert!(cairn::parse_duration("5M").is_err(), "minutes or months?");
/// # Ok::<(), cairn::Error>(())
/// ```
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "invalid duration {text:?} ({why}): write a number and a unit, e.g. 90s, 10m, 1h30m, 2d, 500ms"
        ))
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after) = split_while(rest, |c| c.is_ascii_digit());
        if whole.is_empty() {
            return Err(bad(&match rest.chars().next() {
                Some('-') => "a duration cannot be negative".to_owned(),
                _ => format!("{:?} is not a number", word(rest)),
            }));
        }
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let (digits, after) = split_while(after, |c| c.is_ascii_digit());
                if digits.is_empty() {
                    return Err(bad(&format!("{whole}. has no digits after the point")));
                }
                (digits, after)
            }
            None => ("", after),
        };
        let (unit, after) = split_while(after.trim_start(), |c| c.is_alphabetic());
        if unit.is_empty() {
            return Err(bad(&format!("{} has no unit", number(whole, fraction))));
        }
        let nanos = unit_nanos(unit).map_err(|why| bad(&why))?;
        total = term_nanos(whole, fraction, nanos)
            .and_then(|n| total.checked_add(n))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or_else(|| bad("too long"))?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| bad("too long"))?;
    // Below 1e9: fits.
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| bad("too long"))?;
    Ok(Duration::new(secs, nanos))
}

/// A duration in the grammar [`parse_duration`] reads, largest unit first, each unit once:
/// `0s`, `500ms`, `1h 30m`, `40d 3h`, `1s 7ns`. It parses back to the same duration.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(cairn::format_duration(Duration::from_secs(5400)), "1h 30m");
/// assert_eq!(cairn::format_duration(Duration::from_millis(1500)), "1s 500ms");
/// let d = Duration::from_secs(90_061);
/// assert_eq!(cairn::parse_duration(&cairn::format_duration(d))?, d);
/// # Ok::<(), cairn::Error>(())
/// ```
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let secs = d.as_secs();
    let sub = u64::from(d.subsec_nanos());
    let parts = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (sub / 1_000_000, "ms"),
        (sub / 1000 % 1000, "us"),
        (sub % 1000, "ns"),
    ];
    let shown: Vec<String> =
        parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect();
    shown.join(" ")
}

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// `Duration::MAX` in nanoseconds.
const MAX_NANOS: u128 = u64::MAX as u128 * NANOS_PER_SEC + (NANOS_PER_SEC - 1);

/// The longest prefix of `s` whose characters satisfy `f`, and the rest.
fn split_while(s: &str, f: impl Fn(char) -> bool) -> (&str, &str) {
    s.split_at(s.find(|c: char| !f(c)).unwrap_or(s.len()))
}

/// The word `s` starts with, for a message.
fn word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or(s)
}

fn number(whole: &str, fraction: &str) -> String {
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// The nanoseconds in one `unit`, or why it is refused.
fn unit_nanos(unit: &str) -> std::result::Result<u128, String> {
    const MICRO: u128 = 1000;
    const MILLI: u128 = 1000 * MICRO;
    const SEC: u128 = 1000 * MILLI;
    if unit == "M" {
        return Err("M could mean minutes or months: write m or min for minutes".into());
    }
    Ok(match unit.to_lowercase().as_str() {
        "w" | "week" | "weeks" => 7 * 86_400 * SEC,
        "d" | "day" | "days" => 86_400 * SEC,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600 * SEC,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * SEC,
        "s" | "sec" | "secs" | "second" | "seconds" => SEC,
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => MILLI,
        "us" | "usec" | "usecs" | "microsecond" | "microseconds" => MICRO,
        "ns" | "nsec" | "nsecs" | "nanosecond" | "nanoseconds" => 1,
        "mo" | "mon" | "mons" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years" => {
            return Err(format!(
                "{unit:?}: months and years are not durations cairn takes, their length varies; write days, e.g. 30d"
            ))
        }
        _ => {
            return Err(format!(
                "unknown unit {unit:?}; the units are w, d, h, m, s, ms, us, ns, or their names"
            ))
        }
    })
}

/// `whole.fraction` units of `unit_nanos` each, to the nanosecond (a fraction beyond the 18th
/// digit is dropped: it is below a nanosecond even in weeks); `None` if it overflows.
fn term_nanos(whole: &str, fraction: &str, unit_nanos: u128) -> Option<u128> {
    let whole = whole.trim_start_matches('0');
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    let digits = &fraction[..fraction.len().min(18)];
    if !digits.is_empty() {
        let scale = 10u128.pow(u32::try_from(digits.len()).ok()?);
        nanos = nanos.checked_add(digits.parse::<u128>().ok()? * unit_nanos / scale)?;
    }
    Some(nanos)
}

/// Parse an RFC 3339 time (`2026-12-01T09:00:00Z`, `2026-12-01 10:00:00.5+01:00`; the output
/// of `date --iso-8601=seconds`) into Unix milliseconds. The offset is required: a time
/// without one could be anyone's local time. Times from year 1 to 9999 are accepted (before
/// 1970 too; a leap second `23:59:60` is the second after `23:59:59`, a fraction is kept to the
/// millisecond); one outside [`EARLIEST_TIME_MILLIS`](crate::EARLIEST_TIME_MILLIS) to
/// [`LATEST_TIME_MILLIS`](crate::LATEST_TIME_MILLIS) once its offset is applied is refused as
/// out of range.
///
/// ```
/// assert_eq!(cairn::parse_time("1970-01-01T00:00:01Z")?, 1000);
/// assert_eq!(cairn::parse_time("1970-01-01T01:00:01+01:00")?, 1000);
/// assert_eq!(cairn::parse_time("1969-12-31T23:59:59Z")?, -1000);
/// assert!(cairn::parse_time("2026-12-01 09:00:00").is_err(), "no offset");
/// assert!(cairn::parse_time("10000-01-01T00:00:00Z").is_err(), "out of range");
/// # Ok::<(), cairn::Error>(())
/// ```
pub fn parse_time(text: &str) -> Result<i64> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "invalid time {text:?} ({why}): write an RFC 3339 time with its offset, e.g. 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00"
        ))
    };
    let out_of_range = || {
        Error::invalid(format!(
            "time {text:?} is out of range: cairn keeps times from {} to {}",
            format_time(EARLIEST_TIME_MILLIS),
            format_time(LATEST_TIME_MILLIS)
        ))
    };
    let t = text.trim();
    // A date with a year of five digits or more, or a signed one (ISO 8601's expanded years),
    // is no mistake of form.
    let unsigned = t.trim_start_matches(['+', '-']);
    let year_digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    let signed = unsigned.len() < t.len();
    if (year_digits > 4 || (year_digits == 4 && signed))
        && unsigned.get(year_digits..).is_some_and(|r| r.starts_with('-'))
    {
        return Err(out_of_range());
    }
    let (Some(date), Some(sep), Some(rest)) = (t.get(..10), t.as_bytes().get(10), t.get(11..)) else {
        return Err(bad("too short"));
    };
    if !matches!(sep, b'T' | b't' | b' ') {
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
        let digits: String = offset.chars().skip(1).filter(|c| *c != ':').collect();
        let (Some(h), Some(m)) = (digits_at(&digits, 0, 2), digits_at(&digits, 2, 2)) else {
            return Err(bad("the offset must be +HH:MM or -HH:MM"));
        };
        if digits.len() != 4 {
            return Err(bad("the offset must be +HH:MM or -HH:MM"));
        }
        if h > 23 || m > 59 {
            return Err(bad("the offset is out of range"));
        }
        (clock, sign * (h * 3600 + m * 60))
    };
    let field = |s: &str, at: usize, len: usize| digits_at(s, at, len);
    let (Some(year), Some(month), Some(day)) = (field(date, 0, 4), field(date, 5, 2), field(date, 8, 2))
    else {
        return Err(bad("the date must be YYYY-MM-DD"));
    };
    if date.get(4..5) != Some("-") || date.get(7..8) != Some("-") {
        return Err(bad("the date must be YYYY-MM-DD"));
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such day"));
    }
    let (hms, fraction) = clock.split_once('.').map_or((clock, None), |(hms, f)| (hms, Some(f)));
    let (Some(h), Some(m), Some(sec)) = (field(hms, 0, 2), field(hms, 3, 2), field(hms, 6, 2)) else {
        return Err(bad("the time must be HH:MM:SS"));
    };
    if hms.len() != 8 || hms.get(2..3) != Some(":") || hms.get(5..6) != Some(":") {
        return Err(bad("the time must be HH:MM:SS"));
    }
    if h > 23 || m > 59 || sec > 60 {
        return Err(bad("no such time of day"));
    }
    let millis_of_second = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}").get(..3).and_then(|ms| ms.parse::<i64>().ok()).unwrap_or(0)
        }
        Some(_) => return Err(bad("the fraction of a second must be digits")),
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec - offset_secs;
    let millis = seconds * 1000 + millis_of_second;
    if !(EARLIEST_TIME_MILLIS..=LATEST_TIME_MILLIS).contains(&millis) {
        return Err(out_of_range());
    }
    Ok(millis)
}

/// The number written with `len` ASCII digits at byte `at` of `s`, if they are there.
fn digits_at(s: &str, at: usize, len: usize) -> Option<i64> {
    s.get(at..at + len).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (proleptic Gregorian), after Howard Hinnant's
/// `days_from_civil`; exact for every year an `i64` of milliseconds can reach.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March is 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// A time in Unix milliseconds as RFC 3339 in UTC, to the millisecond:
/// `2026-12-01T09:00:00.000Z`. Any integer is shown, none panics: a year outside 0 to 9999
/// (only a row written by hand or by an older version can hold one) is written with its sign,
/// as ISO 8601 expands years (`+10000-01-01T00:00:00.000Z`).
///
/// ```
/// assert_eq!(cairn::format_time(1000), "1970-01-01T00:00:01.000Z");
/// assert_eq!(cairn::format_time(-1000), "1969-12-31T23:59:59.000Z");
/// ```
pub fn format_time(millis: i64) -> String {
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let year = if (0..=9999).contains(&year) { format!("{year:04}") } else { format!("{year:+05}") };
    let (h, m, s, ms) =
        (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Refuse a duration under a millisecond (cairn keeps time in milliseconds) where zero would
/// switch a guarantee off: `what` names the setting, `consequence` says what zero would do.
pub(crate) fn at_least_1ms(d: Duration, what: &str, consequence: &str) -> Result<()> {
    if d >= Duration::from_millis(1) {
        return Ok(());
    }
    Err(Error::invalid(format!("{what} of {} {consequence}: give at least 1ms", format_duration(d))))
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
            ("1H", s(3600)),
            ("1D", s(86_400)),
            ("2W", s(1_209_600)),
            ("500MS", Duration::from_millis(500)),
            ("10Min", s(600)),
            ("5 minutes", s(300)),
            ("1 hour 30 minutes", s(5400)),
            ("2 days", s(172_800)),
            ("45 sec", s(45)),
            (" 1h\n", s(3600)),
            ("0.25s", Duration::from_millis(250)),
            ("1.5ms", Duration::from_micros(1500)),
            ("2us", Duration::from_micros(2)),
            ("7ns", Duration::from_nanos(7)),
        ] {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn capital_m_months_and_years_are_refused_instead_of_read_as_months() {
        for text in ["5M", "1h5M", "5 M"] {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.contains("minutes or months"), "{text}: {err}");
        }
        for text in ["1mo", "2 months", "1month", "1y", "2 years", "1yr", "1Y"] {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.contains("write days"), "{text}: {err}");
        }
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    }

    #[test]
    fn durations_format_with_the_units_the_parser_reads() {
        let s = Duration::from_secs;
        for (d, want) in [
            (s(0), "0s"),
            (s(5400), "1h 30m"),
            (s(90_061), "1d 1h 1m 1s"),
            (s(40 * 86_400), "40d"),
            (s(400 * 86_400), "400d"),
            (Duration::from_micros(1500), "1ms 500us"),
            (Duration::from_nanos(1_000_000_007), "1s 7ns"),
        ] {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_duration_the_formatter_prints_parses_back_to_itself(
            secs in proptest::prop_oneof![0u64..1_000_000, proptest::num::u64::ANY],
            nanos in proptest::prop_oneof![proptest::strategy::Just(0u32), 0u32..1_000_000_000],
        ) {
            let d = Duration::new(secs, nanos);
            let text = format_duration(d);
            proptest::prop_assert_eq!(parse_duration(&text).map_err(|e| e.to_string()), Ok(d), "{}", text);
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
        assert_eq!(format_time(-5), "1969-12-31T23:59:59.995Z");
        assert_eq!(format_time(i64::MAX), "+292278994-08-17T07:12:55.807Z");
        assert_eq!(format_time(i64::MIN), "-292275055-05-16T16:47:04.192Z");
    }

    /// Every RFC 3339 time from year 1 to 9999 is accepted: before 1970 (used to be refused
    /// as malformed), leap days, a leap second (the second after it), any number of digits of
    /// a fraction (kept to the millisecond).
    #[test]
    fn valid_times_before_1970_and_at_the_ends_of_the_range_parse_and_format_back() {
        for (text, millis, shown) in [
            ("1969-12-31T23:59:59Z", -1000, "1969-12-31T23:59:59.000Z"),
            ("1969-07-20T20:17:40Z", -14_182_940_000, "1969-07-20T20:17:40.000Z"),
            ("1900-01-01T00:00:00+01:00", -2_208_992_400_000, "1899-12-31T23:00:00.000Z"),
            ("0001-01-01T00:00:00Z", EARLIEST_TIME_MILLIS, "0001-01-01T00:00:00.000Z"),
            ("9999-12-31T23:59:59.999999Z", LATEST_TIME_MILLIS, "9999-12-31T23:59:59.999Z"),
            ("2000-02-29T12:00:00Z", 951_825_600_000, "2000-02-29T12:00:00.000Z"),
            ("2016-12-31T23:59:60Z", 1_483_228_800_000, "2017-01-01T00:00:00.000Z"),
            ("1970-01-01T00:00:00.1Z", 100, "1970-01-01T00:00:00.100Z"),
        ] {
            assert_eq!(parse_time(text).unwrap(), millis, "{text}");
            assert_eq!(format_time(millis), shown, "{text}");
        }
    }

    /// Outside years 1 to 9999 a time is refused as out of range, saying the range: not as
    /// malformed, and never kept.
    #[test]
    fn times_out_of_range_are_refused_saying_the_range() {
        for text in [
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
        ] {
            let err = parse_time(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{text:?}");
            assert!(
                err.to_string().contains("out of range: cairn keeps times from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z"),
                "{text}: {err}"
            );
        }
    }

    proptest::proptest! {
        /// Any integer formats (a row written by hand or by an older version may hold any),
        /// and every time in the range comes back from its text.
        #[test]
        fn any_millis_format_and_every_time_in_range_parses_back(millis in proptest::num::i64::ANY, ms in EARLIEST_TIME_MILLIS..=LATEST_TIME_MILLIS) {
            let shown = format_time(millis);
            proptest::prop_assert!(shown.ends_with('Z'), "{}", shown);
            proptest::prop_assert_eq!(parse_time(&format_time(ms))?, ms);
        }

        /// Any text, and text shaped almost like a time, is a time in the range or an error.
        #[test]
        fn any_text_parses_to_a_time_in_range_or_an_error(
            text in proptest::prop_oneof![
                ".*",
                "[-+]?[0-9]{1,6}-[0-9é]{1,2}-[0-9]{1,2}[Tt é][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{0,12})?([Zz]|[-+][0-9:é]{0,6})",
            ]
        ) {
            if let Ok(ms) = parse_time(&text) {
                proptest::prop_assert!((EARLIEST_TIME_MILLIS..=LATEST_TIME_MILLIS).contains(&ms), "{}: {}", text, ms);
            }
        }
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
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T23:60:00Z",
            "2026-12-01T23:59:61Z",
            "2026-12-01T09:00:00.Z",
            "2026-12-01T09:00Z",
            "2026-12-01T9:00:00Z",
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
        for text in
            ["", " ", "10", "-1s", "ten minutes", "5x", "1h30", "s", "1.h", ".5h", "1..5h", "1h,30m", "5 m s"]
        {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{text}");
            assert!(err.to_string().contains("e.g. 90s"), "{err}");
        }
    }
}
