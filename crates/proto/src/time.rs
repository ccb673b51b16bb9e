//! Wall-clock times as udpchat shows them: the audit log, and clients showing when a kept
//! message was sent, print UTC as `YYYY-MM-DD HH:MM:SS` (the `jiff` crate does the
//! calendar).

use jiff::Timestamp;

/// `YYYY-MM-DD HH:MM:SS` in UTC for `ms` milliseconds since the Unix epoch; a time past
/// what the calendar holds shows as the latest it does (late in the year 9999).
pub fn utc(ms: u64) -> String {
    let ts = i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::MAX);
    ts.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_time() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(utc(u64::MAX), "9999-12-30 22:00:00");
    }
}
