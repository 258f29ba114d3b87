//! The one place the worker reads the time. Tests and operators may pin it
//! with `RECOVERYDESK_NOW` (Unix seconds or RFC 3339), which is how the
//! follow-up tests drive weeks of time through the real binary.

/// The environment variable that pins the clock.
pub const NOW_ENV: &str = "RECOVERYDESK_NOW";

/// The current time in Unix seconds.
pub fn now() -> i64 {
    if let Ok(text) = std::env::var(NOW_ENV) {
        if let Some(t) = parse_time(&text) {
            return t;
        }
        tracing::warn!(value = %text, "{NOW_ENV} is not Unix seconds or RFC 3339; using the system clock");
    }
    chrono::Utc::now().timestamp()
}

/// Parses Unix seconds or an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    text.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|d| d.timestamp())
    })
}
