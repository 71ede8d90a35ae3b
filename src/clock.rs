//! Times and durations as ferry writes and reads them.
//!
//! Times are RFC 3339 in UTC with second precision and a `Z` suffix
//! (`formats/README.md`); durations on the command line are a number and a
//! unit (`90s`, `15m`, `12h`, `7d`, `2w`), because day-based calendar spans
//! are ambiguous and operators think in days.

use jiff::{SignedDuration, Timestamp};

/// The current time, truncated to whole seconds.
pub fn now() -> Timestamp {
    truncate(Timestamp::now())
}

/// `time` without its sub-second part.
pub fn truncate(time: Timestamp) -> Timestamp {
    Timestamp::from_second(time.as_second()).unwrap_or(time)
}

/// Formats `time` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses exactly the form [`format`] writes.
pub fn parse(text: &str) -> Option<Timestamp> {
    let time: Timestamp = text.parse().ok()?;
    (format(time) == text).then_some(time)
}

/// Parses a command-line time: RFC 3339 (any offset) or `@UNIX-SECONDS`.
pub fn parse_flexible(text: &str) -> Result<Timestamp, String> {
    if let Some(seconds) = text.strip_prefix('@') {
        let seconds: i64 = seconds.parse().map_err(|_| format!("`{text}` is not @UNIX-SECONDS"))?;
        return Timestamp::from_second(seconds).map_err(|e| format!("`{text}`: {e}"));
    }
    text.parse::<Timestamp>().map(truncate).map_err(|_| format!("`{text}` is not a time like 2026-11-24T13:00:00Z"))
}

/// Parses `N` followed by one of `s m h d w`.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let bad = || format!("`{text}` is not a duration like 90s, 15m, 12h, 7d or 2w");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    number.checked_mul(seconds_per_unit).map(SignedDuration::from_secs).ok_or_else(bad)
}

/// Describes a duration for people: `3d 4h`, `12m`, `40s`.
pub fn describe(duration: SignedDuration) -> String {
    let total = duration.as_secs();
    let sign = if total < 0 { "-" } else { "" };
    let total = total.unsigned_abs();
    let (days, hours, minutes, seconds) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60, total % 60);
    let text = if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m")
    } else {
        format!("{seconds}s")
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_exactly() {
        let time = parse("2026-11-24T13:00:00Z").unwrap();
        assert_eq!(format(time), "2026-11-24T13:00:00Z");
        assert!(parse("2026-11-24T13:00:00+00:00").is_none());
        assert!(parse("2026-11-24T13:00:00.5Z").is_none());
        assert_eq!(parse_flexible("@0").unwrap().as_second(), 0);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 604_800);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(describe(SignedDuration::from_secs(90_000)), "1d 1h");
    }
}
