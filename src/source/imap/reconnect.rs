//! Reconnecting: capped exponential backoff with jitter, opening the
//! session on demand, and retrying an operation once on a fresh session.

use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Result};

use super::cursor::Live;
use super::ImapSource;

/// Reconnect backoff: first delay and cap.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Capped exponential backoff with jitter for reconnects.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: u32,
}

impl Backoff {
    fn delay(&self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let exp = BACKOFF_BASE.saturating_mul(1u32 << self.failures.saturating_sub(1).min(16));
        let capped = exp.min(BACKOFF_CAP);
        // Half fixed, half random, so that many workers restarted together
        // do not reconnect in lockstep.
        let half = capped / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }
}

/// Runs an operation on the live session; if a session that was open turns
/// out to be dead (e.g. the server restarted), runs it once more on a fresh
/// connection. A transient failure always drops the session, so the next
/// call reconnects. (A macro because the operation borrows `self` mutably
/// and its arguments separately, which a closure taking `&mut Self` cannot.)
macro_rules! once_more_on_a_fresh_session {
    ($source:ident, $op:expr) => {{
        let had_session = $source.live.is_some();
        match $op.await {
            Err(e) if e.is_transient() && had_session => {
                tracing::warn!(source = %$source.key, error.message = %e, "imap session lost; reconnecting");
                $source.live = None;
                let res = $op.await;
                if res.as_ref().is_err_and(Error::is_transient) {
                    $source.live = None;
                }
                res
            }
            Err(e) => {
                if e.is_transient() {
                    $source.live = None;
                }
                Err(e)
            }
            ok => ok,
        }
    }};
}
pub(super) use once_more_on_a_fresh_session;

impl ImapSource {
    /// The open session, opening one if needed. After failures, waits out
    /// the backoff first so that a caller looping on errors cannot hammer
    /// the server.
    pub(super) async fn ensure_live(&mut self) -> Result<&mut Live> {
        if self.live.is_none() {
            let delay = self.backoff.delay();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match self.open_live().await {
                Ok(live) => {
                    self.backoff = Backoff::default();
                    self.live = Some(live);
                }
                Err(e) => {
                    self.backoff.failures = self.backoff.failures.saturating_add(1);
                    tracing::warn!(source = %self.key, error.message = %e, "imap connect failed");
                    return Err(e);
                }
            }
        }
        match self.live.as_mut() {
            Some(live) => Ok(live),
            None => Err(Error::Transient(format!("{}: not connected", self.key))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.delay(), Duration::ZERO);
        backoff.failures = 1;
        let d = backoff.delay();
        assert!(d >= BACKOFF_BASE / 2 && d <= BACKOFF_BASE);
        backoff.failures = 40;
        let d = backoff.delay();
        assert!(d >= BACKOFF_CAP / 2 && d <= BACKOFF_CAP);
    }
}
