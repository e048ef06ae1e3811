//! Recognizing timestamps in log lines: ISO 8601 / RFC 3339 (also with a space, a comma before
//! the fraction, or slashes in the date), Apache/nginx common log format, and BSD syslog
//! (`Jan  5 10:00:00`, no year). Times without a zone are taken as UTC.

use std::ops::Range;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use regex::{Captures, Regex};

use crate::error::DevopsError;
use crate::text::prefix_bytes;

/// Only the start of a line is searched: timestamps lead log lines, and this bounds the cost
/// per line.
const SEARCH_PREFIX_BYTES: usize = 256;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<iso>\b(?P<y>\d{4})[-/](?P<mo>\d{2})[-/](?P<d>\d{2})[T\ ]
            (?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?
            (?:\ ?(?P<tz>Z|[+-]\d{2}(?::?\d{2})?\b))?)
        | (?P<clf>\b(?P<cd>\d{2})/(?P<cmo>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/
            (?P<cy>\d{4}):(?P<ch>\d{2}):(?P<cmi>\d{2}):(?P<cs>\d{2})(?:\ (?P<ctz>[+-]\d{4}))?)
        | (?P<sys>\b(?P<smo>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\ {1,2}(?P<sd>\d{1,2})
            \ (?P<sh>\d{2}):(?P<smi>\d{2}):(?P<ss>\d{2})\b)",
    )
    // invariant: a constant pattern, compiled by this module's tests.
    .expect("timestamp regex is valid")
});

/// A timestamp found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTimestamp {
    /// Byte range of the timestamp in the searched text.
    pub range: Range<usize>,
    /// Milliseconds since the Unix epoch, UTC; `None` when the fields are out of range.
    pub epoch_ms: Option<i64>,
}

/// Finds the first timestamp near the start of `text`. `now` decides the year of syslog
/// timestamps: the current one, or the previous one when that would lie in the future.
pub fn find_timestamp(text: &str, now: DateTime<Utc>) -> Option<FoundTimestamp> {
    let captures = TIMESTAMP.captures(prefix_bytes(text, SEARCH_PREFIX_BYTES))?;
    let whole = captures.get(0)?;
    Some(FoundTimestamp {
        range: whole.range(),
        epoch_ms: to_epoch_ms(&captures, now),
    })
}

fn to_epoch_ms(c: &Captures<'_>, now: DateTime<Utc>) -> Option<i64> {
    let num = |name: &str| c.name(name).and_then(|m| m.as_str().parse::<u32>().ok());
    if c.name("iso").is_some() {
        let nanos = c.name("frac").map_or(Some(0), |f| {
            let digits = f.as_str();
            let value: u32 = digits.parse().ok()?;
            Some(value * 10u32.pow(9 - digits.len() as u32))
        })?;
        let offset = c
            .name("tz")
            .map_or(Some(0), |tz| offset_seconds(tz.as_str()))?;
        let year = i32::try_from(num("y")?).ok()?;
        let date = NaiveDate::from_ymd_opt(year, num("mo")?, num("d")?)?;
        let time = date.and_hms_nano_opt(num("h")?, num("mi")?, num("s")?, nanos)?;
        Some(time.and_utc().timestamp_millis() - i64::from(offset) * 1000)
    } else if c.name("clf").is_some() {
        let offset = c
            .name("ctz")
            .map_or(Some(0), |tz| offset_seconds(tz.as_str()))?;
        let year = i32::try_from(num("cy")?).ok()?;
        let date = NaiveDate::from_ymd_opt(year, month(c.name("cmo")?.as_str())?, num("cd")?)?;
        let time = date.and_hms_opt(num("ch")?, num("cmi")?, num("cs")?)?;
        Some(time.and_utc().timestamp_millis() - i64::from(offset) * 1000)
    } else {
        let month = month(c.name("smo")?.as_str())?;
        let in_year = |year: i32| -> Option<i64> {
            let date = NaiveDate::from_ymd_opt(year, month, num("sd")?)?;
            Some(
                date.and_hms_opt(num("sh")?, num("smi")?, num("ss")?)?
                    .and_utc()
                    .timestamp_millis(),
            )
        };
        let this_year = in_year(now.year());
        let one_day_ms = 86_400_000;
        match this_year {
            Some(ms) if ms <= now.timestamp_millis() + one_day_ms => Some(ms),
            _ => in_year(now.year() - 1),
        }
    }
}

fn month(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// `Z`, `+05`, `+0530` or `+05:30` in seconds east of UTC.
fn offset_seconds(tz: &str) -> Option<i32> {
    if tz == "Z" {
        return Some(0);
    }
    let sign = if tz.starts_with('-') { -1 } else { 1 };
    let digits: String = tz[1..].chars().filter(char::is_ascii_digit).collect();
    let hours: i32 = digits.get(..2)?.parse().ok()?;
    let minutes: i32 = digits.get(2..4).map_or(Some(0), |m| m.parse().ok())?;
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
}

/// A Unix time number from a JSON log field in seconds, milliseconds, microseconds or
/// nanoseconds (told apart by magnitude), in milliseconds.
pub fn epoch_number_to_ms(value: f64) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let ms = if value < 1e11 {
        value * 1e3
    } else if value < 1e14 {
        value
    } else if value < 1e17 {
        value / 1e3
    } else {
        value / 1e6
    };
    Some(ms as i64)
}

/// RFC 3339 in UTC with milliseconds.
pub fn format_utc(epoch_ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(epoch_ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Parses the `since` argument: a date (`2024-05-01`, midnight UTC) or a date and time
/// (`2024-05-01T12:00:00Z`, `2024-05-01 12:00:00`, optionally with an offset).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<i64, DevopsError> {
    let text = text.trim();
    let invalid = || {
        DevopsError::invalid(format!(
            "since {text:?} is not a date or date-time; use e.g. \"2024-05-01\" or \
             \"2024-05-01T12:00:00Z\" (times without a zone are UTC)"
        ))
    };
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .ok_or_else(invalid);
    }
    match find_timestamp(text, now) {
        Some(found) if found.range == (0..text.len()) => found.epoch_ms.ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// The fixed "now" of the log tests, so syslog years do not depend on the test date.
#[cfg(test)]
pub(crate) fn test_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_now as now;

    fn utc(line: &str) -> Option<String> {
        find_timestamp(line, now())
            .and_then(|t| t.epoch_ms)
            .and_then(format_utc)
    }

    #[test]
    fn recognizes_common_formats() {
        assert_eq!(
            utc("2024-01-15T10:30:00Z INFO x").unwrap(),
            "2024-01-15T10:30:00.000Z"
        );
        assert_eq!(
            utc("2024-01-15 10:30:00,123 ERROR x").unwrap(),
            "2024-01-15T10:30:00.123Z"
        );
        assert_eq!(
            utc("[2024-01-15T10:30:00.5+02:00 WARN]").unwrap(),
            "2024-01-15T08:30:00.500Z"
        );
        assert_eq!(
            utc("2024/01/15 10:30:00 go log").unwrap(),
            "2024-01-15T10:30:00.000Z"
        );
        assert_eq!(
            utc(r#"1.2.3.4 - - [15/Jan/2024:10:30:00 -0500] "GET / HTTP/1.1" 200"#).unwrap(),
            "2024-01-15T15:30:00.000Z"
        );
        assert_eq!(
            utc("Mar  9 23:59:59 host sshd[1]: x").unwrap(),
            "2025-03-09T23:59:59.000Z"
        );
        assert!(utc("no time here 12:00").is_none());
    }

    #[test]
    fn syslog_dates_in_the_future_belong_to_last_year() {
        assert_eq!(
            utc("Dec 31 10:00:00 host x: y").unwrap(),
            "2024-12-31T10:00:00.000Z"
        );
    }

    #[test]
    fn impossible_dates_are_found_but_not_parsed() {
        let found = find_timestamp("2024-13-45T10:00:00Z oops", now()).unwrap();
        assert_eq!(found.epoch_ms, None);
    }

    #[test]
    fn epoch_numbers_of_any_unit() {
        let ms = 1_700_000_000_000;
        assert_eq!(epoch_number_to_ms(1_700_000_000.0), Some(ms));
        assert_eq!(epoch_number_to_ms(1_700_000_000_000.0), Some(ms));
        assert_eq!(epoch_number_to_ms(1_700_000_000_000_000.0), Some(ms));
        assert_eq!(epoch_number_to_ms(1_700_000_000_000_000_000.0), Some(ms));
        assert_eq!(epoch_number_to_ms(-1.0), None);
    }

    #[test]
    fn since_accepts_dates_and_times_only() {
        assert_eq!(parse_since("2024-01-15", now()).unwrap(), 1_705_276_800_000);
        assert_eq!(
            parse_since("2024-01-15T00:00:00Z", now()).unwrap(),
            1_705_276_800_000
        );
        assert_eq!(
            parse_since(" 2024-01-15 01:00:00+01:00 ", now()).unwrap(),
            1_705_276_800_000
        );
        for bad in [
            "yesterday",
            "2024-01-15T00:00:00Z trailing",
            "2024-02-30",
            "",
        ] {
            let err = parse_since(bad, now()).unwrap_err().to_string();
            assert!(err.contains("2024-05-01"), "{bad}: {err}");
        }
    }
}
