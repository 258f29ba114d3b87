//! Per-recipient (or per-case) reply rate limits, so a flood of mail or a
//! loop with another auto-responder can never make us a spam cannon
//! (RFC 3834 §2: responders must limit how often they answer one sender).
//!
//! Pure: the caller passes the history (Unix seconds of the replies already
//! sent to one address or case) and `now`; nothing here reads a clock.
//!
//! # Windows
//! The limits are stepped: a short window (one hour) catches a burst, a long
//! one (one day) catches a slow steady loop. Each is a trailing window ending
//! at `now`, not a calendar hour or day, so a burst straddling midnight or
//! the top of the hour cannot get twice the allowance. A reply counts in a
//! window when it was sent less than the window's length ago.
//!
//! Timestamps in the future (a clock that stepped back) count as recent: when
//! unsure we send less, never more. A limit of 0 suppresses every reply.

use std::fmt;

use serde::Deserialize;

/// Seconds in the short window.
pub const HOUR_SECS: i64 = 3600;
/// Seconds in the long window; also how much history [`prune`] keeps.
pub const DAY_SECS: i64 = 86_400;

/// How many replies one address (or case) may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// At most this many in any trailing hour.
    pub per_hour: u32,
    /// At most this many in any trailing day.
    pub per_day: u32,
}

impl Default for RateLimits {
    /// Three an hour and ten a day: enough for a real conversation (an
    /// acknowledgement, a request for details, a challenge) and little
    /// enough that a loop stops quickly.
    fn default() -> Self {
        default_limits()
    }
}

/// The default limits (3 per hour, 10 per day), for `#[serde(default = ...)]`.
pub fn default_limits() -> RateLimits {
    RateLimits {
        per_hour: 3,
        per_day: 10,
    }
}

/// Why a reply was not sent, for the case log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// Human-readable reason, e.g. "3 replies to this address in the last hour".
    pub reason: String,
    /// The earliest Unix time at which the window that blocked this reply
    /// will allow one more (given no further replies are sent meanwhile).
    pub retry_at: i64,
}

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Suppressed {}

/// Checks whether one more reply may go out at `now`, given the times of the
/// replies already sent (in any order). The hour is checked first, so the
/// reason names the tighter window when both are full.
pub fn check(history_unix_secs: &[i64], now: i64, limits: &RateLimits) -> Result<(), Suppressed> {
    for (limit, window, label) in [
        (limits.per_hour, HOUR_SECS, "hour"),
        (limits.per_day, DAY_SECS, "day"),
    ] {
        let mut recent: Vec<i64> = history_unix_secs
            .iter()
            .copied()
            .filter(|&t| in_window(t, now, window))
            .collect();
        let count = recent.len();
        if count as u64 >= u64::from(limit) {
            // The window frees a slot when its (count - limit + 1)-th oldest
            // reply leaves it.
            recent.sort_unstable();
            let retry_at = if limit == 0 {
                i64::MAX
            } else {
                let oldest_blocking = recent[count - limit as usize];
                oldest_blocking
                    .max(now.saturating_sub(window))
                    .saturating_add(window)
            };
            let noun = if count == 1 { "reply" } else { "replies" };
            return Err(Suppressed {
                reason: if limit == 0 {
                    format!("replies to this address are disabled (limit 0 per {label})")
                } else {
                    format!("{count} {noun} to this address in the last {label} (limit {limit} per {label})")
                },
                retry_at,
            });
        }
    }
    Ok(())
}

/// Keeps only the history that can still matter: the last day (and any
/// future timestamps), oldest first.
pub fn prune(history: &[i64], now: i64) -> Vec<i64> {
    let mut kept: Vec<i64> = history
        .iter()
        .copied()
        .filter(|&t| in_window(t, now, DAY_SECS))
        .collect();
    kept.sort_unstable();
    kept
}

/// True when a reply sent at `t` is less than `window` seconds before `now`
/// (or after `now`).
fn in_window(t: i64, now: i64, window: i64) -> bool {
    now.saturating_sub(t) < window
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn empty_history_is_allowed() {
        assert!(check(&[], NOW, &RateLimits::default()).is_ok());
    }

    #[test]
    fn hour_limit_blocks_the_fourth_reply_and_says_why() {
        let history = [NOW - 10, NOW - 600, NOW - 1200];
        let err = check(&history, NOW, &RateLimits::default()).unwrap_err();
        assert_eq!(
            err.reason,
            "3 replies to this address in the last hour (limit 3 per hour)"
        );
        // The oldest of the three leaves the hour at NOW - 1200 + 3600.
        assert_eq!(err.retry_at, NOW - 1200 + HOUR_SECS);
        assert!(check(&history, err.retry_at, &RateLimits::default()).is_ok());
    }

    #[test]
    fn the_window_trails_now() {
        // Exactly one hour ago no longer counts; one second less does.
        let limits = RateLimits {
            per_hour: 1,
            per_day: 10,
        };
        assert!(check(&[NOW - HOUR_SECS], NOW, &limits).is_ok());
        assert!(check(&[NOW - HOUR_SECS + 1], NOW, &limits).is_err());
    }

    #[test]
    fn day_limit_blocks_a_slow_loop() {
        // One reply every two hours stays under the hourly limit but not the daily one.
        let history: Vec<i64> = (1..=10).map(|i| NOW - i * 2 * HOUR_SECS + 60).collect();
        let err = check(&history, NOW, &RateLimits::default()).unwrap_err();
        assert!(err.reason.contains("last day"), "{}", err.reason);
        assert!(err.retry_at > NOW);
        assert!(check(&history, err.retry_at, &RateLimits::default()).is_ok());
    }

    #[test]
    fn future_timestamps_count_as_recent() {
        let limits = RateLimits {
            per_hour: 1,
            per_day: 10,
        };
        assert!(check(&[NOW + 5000], NOW, &limits).is_err());
    }

    #[test]
    fn zero_disables_replies() {
        let limits = RateLimits {
            per_hour: 0,
            per_day: 10,
        };
        let err = check(&[], NOW, &limits).unwrap_err();
        assert!(err.reason.contains("disabled"));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let limits = RateLimits::default();
        assert!(check(&[i64::MIN, i64::MAX], i64::MAX, &limits).is_ok());
        assert!(check(&[i64::MAX; 3], i64::MIN, &limits).is_err());
        assert_eq!(prune(&[i64::MIN, i64::MAX], 0), vec![i64::MAX]);
    }

    #[test]
    fn prune_keeps_the_last_day_sorted() {
        let history = [
            NOW - 10,
            NOW - DAY_SECS,
            NOW - DAY_SECS + 1,
            NOW - 5 * DAY_SECS,
        ];
        assert_eq!(prune(&history, NOW), vec![NOW - DAY_SECS + 1, NOW - 10]);
    }

    #[test]
    fn limits_deserialize_with_defaults() {
        let limits: RateLimits = toml::from_str("per_hour = 5").unwrap();
        assert_eq!(
            limits,
            RateLimits {
                per_hour: 5,
                per_day: 10
            }
        );
        let limits: RateLimits = toml::from_str("").unwrap();
        assert_eq!(limits, RateLimits::default());
    }
}
