//! Per-recipient reply rate limits in stepped windows.
//!
//! Placeholder; the reading issue replaces it.

use serde::Deserialize;

/// How many replies one address may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RateLimits {
    /// At most this many in any hour.
    pub per_hour: u32,
    /// At most this many in any day.
    pub per_day: u32,
}

/// Why a reply was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// Human-readable reason.
    pub reason: String,
}

/// Checks whether one more reply may go out now.
pub fn check(history: &[i64], now: i64, limits: &RateLimits) -> Result<(), Suppressed> {
    let hour = history.iter().filter(|t| now - **t < 3600).count() as u32;
    let day = history.iter().filter(|t| now - **t < 86400).count() as u32;
    if hour >= limits.per_hour {
        return Err(Suppressed { reason: format!("{hour} replies to this address in the last hour") });
    }
    if day >= limits.per_day {
        return Err(Suppressed { reason: format!("{day} replies to this address in the last day") });
    }
    Ok(())
}

/// Keeps only the last day of history.
pub fn prune(history: &[i64], now: i64) -> Vec<i64> {
    history.iter().copied().filter(|t| now - *t < 86400).collect()
}
