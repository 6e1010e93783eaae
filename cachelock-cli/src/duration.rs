//! Durations on the command line and in HTTP parameters: `30s`, `5m`, `1h30m`, `500ms`, or a
//! bare number of seconds.

use std::time::Duration;

/// Parses `30s`, `5m`, `1h`, `1h30m`, `250ms` (humantime's syntax) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration (examples: 30s, 5m, 1h, 500ms)".to_owned());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("duration {text:?} is too large"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?}: {e} (examples: 30s, 5m, 1h, 500ms)"))
}

/// Parses a lock TTL: a duration greater than zero and at most [`cachelock::MAX_TTL`].
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_duration(text)?;
    check_ttl(ttl, cachelock::MAX_TTL)?;
    Ok(ttl)
}

/// Checks that `ttl` is greater than zero and at most `max`.
pub fn check_ttl(ttl: Duration, max: Duration) -> Result<(), String> {
    if ttl.is_zero() {
        return Err("a TTL must be greater than zero".to_owned());
    }
    if ttl > max {
        return Err(format!(
            "a TTL of {} is longer than the maximum of {}",
            show(ttl),
            show(max)
        ));
    }
    Ok(())
}

/// A duration for people: `1h 30m`, `42s`, `250ms` (whole milliseconds).
pub fn show(duration: Duration) -> String {
    let millis = Duration::from_millis(duration.as_millis().min(u128::from(u64::MAX)) as u64);
    humantime::format_duration(millis).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999999").is_err());
    }

    #[test]
    fn ttls_are_bounded() {
        assert!(parse_ttl("0s").unwrap_err().contains("greater than zero"));
        assert!(parse_ttl("31days").unwrap_err().contains("maximum"));
        assert_eq!(parse_ttl("30days"), Ok(cachelock::MAX_TTL));
        assert_eq!(show(Duration::from_millis(90_500)), "1m 30s 500ms");
    }
}
