//! Times and durations as ferry writes and reads them.
//!
//! Times are RFC 3339 in UTC with second precision and a `Z` suffix
//! (`formats/README.md`); durations on the command line are jiff's friendly
//! format (`90s`, `7d`, `1d2h`, `2 weeks`) with days of 24 hours and weeks of
//! 7 days, because calendar spans are ambiguous and operators think in days.

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

/// Parses a command-line time: RFC 3339 (any offset), a plain date
/// `2026-12-02` (midnight UTC), or `@UNIX-SECONDS`.
pub fn parse_flexible(text: &str) -> Result<Timestamp, String> {
    if let Some(seconds) = text.strip_prefix('@') {
        let seconds: i64 = seconds.parse().map_err(|_| format!("`{text}` is not @UNIX-SECONDS"))?;
        return Timestamp::from_second(seconds).map_err(|e| format!("`{text}`: {e}"));
    }
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(truncate(time));
    }
    // Only a bare YYYY-MM-DD: jiff's date parser would also take the date
    // out of a time without an offset, silently dropping the time.
    text.parse::<jiff::civil::Date>()
        .ok()
        .filter(|date| date.to_string() == text)
        .and_then(|date| jiff::tz::TimeZone::UTC.to_timestamp(date.to_datetime(jiff::civil::Time::midnight())).ok())
        .ok_or_else(|| format!("`{text}` is not a time like 2026-11-24T13:00:00Z, 2026-11-24 or @1764000000"))
}

/// Parses a duration in jiff's friendly format: `90s`, `15m`, `12h`, `7d`,
/// `2w`, `1d2h`, `2 weeks`, `90 minutes` (or ISO 8601, `P1DT2H`). Days are
/// 24 hours and weeks 7 days, whatever the calendar says; months and years,
/// whose lengths vary, are refused, and so are negative durations.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let bad = || format!("`{text}` is not a duration like 90s, 15m, 12h, 7d, 2w, 1d2h or \"2 weeks\"");
    let span: jiff::Span = text.parse().map_err(|_| bad())?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(format!("`{text}`: months and years vary in length; give days or weeks (30d, 52w)"));
    }
    // A day-based Span cannot be added to a Timestamp: convert it once,
    // at fixed lengths, into the SignedDuration every caller uses.
    let duration = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|_| bad())?;
    if duration.is_negative() {
        return Err(format!("`{text}`: a duration cannot be negative"));
    }
    Ok(duration)
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

    #[test]
    fn friendly_durations() {
        let secs = |text: &str| parse_duration(text).unwrap_or_else(|e| panic!("{e}")).as_secs();
        assert_eq!(secs("15m"), 900);
        assert_eq!(secs("12h"), 43_200);
        assert_eq!(secs("2w"), 1_209_600);
        assert_eq!(secs("30d"), 2_592_000);
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("1d2h"), 93_600);
        assert_eq!(secs("1d 2h"), 93_600);
        assert_eq!(secs("2 weeks"), 1_209_600);
        assert_eq!(secs("90 minutes"), 5_400);
        assert_eq!(secs("1 day, 2 hours"), 93_600);
        assert_eq!(secs("P1DT2H"), 93_600);
        assert!(parse_duration("").is_err());
        assert!(parse_duration("never").is_err());
        assert!(parse_duration("-5d").unwrap_err().contains("negative"));
        assert!(parse_duration("5d ago").unwrap_err().contains("negative"));
        assert!(parse_duration("1 month").unwrap_err().contains("months and years"));
        assert!(parse_duration("1y").unwrap_err().contains("months and years"));
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn flexible_times() {
        let time = |text: &str| parse_flexible(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format(time("2026-12-02")), "2026-12-02T00:00:00Z");
        assert_eq!(format(time("2026-11-24T13:00:00Z")), "2026-11-24T13:00:00Z");
        assert_eq!(format(time("2026-11-24T14:00:00+01:00")), "2026-11-24T13:00:00Z");
        assert_eq!(format(time("2026-11-24T13:00:00.75Z")), "2026-11-24T13:00:00Z");
        assert_eq!(format(time("@1764000000")), "2025-11-24T16:00:00Z");
        assert!(parse_flexible("2026-13-02").is_err());
        assert!(parse_flexible("2026-11-24T13:00:00").is_err());
        assert!(parse_flexible("@x").is_err());
        assert!(parse_flexible("yesterday").is_err());
    }
}
