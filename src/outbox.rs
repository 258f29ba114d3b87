//! The durable reply queue: sends what the pipeline committed, marks each
//! message sent right after the transport accepts it (keeping the
//! at-least-once window small), retries transient failures with backoff,
//! and records permanent ones on the case.

use crate::case::LogEntry;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::store::OutboxItem;
use crate::transport::{OutgoingMessage, Transport};

/// What one pass of the sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Delivered.
    pub sent: usize,
    /// Will be retried.
    pub deferred: usize,
    /// Refused for good.
    pub failed: usize,
}

/// Backoff after `attempts` failures: 30 s doubling, at most an hour.
pub fn backoff_secs(attempts: u32) -> i64 {
    (30i64 << attempts.min(7)).min(3600)
}

/// Sends every due message once.
pub async fn send_due(
    pipeline: &Pipeline,
    transport: &dyn Transport,
    now: i64,
) -> Result<SendReport> {
    let mut report = SendReport::default();
    for mut item in pipeline.store.pending_outbox()? {
        if item.next_attempt_at > now {
            continue;
        }
        let Some(body) = pipeline.store.outbox_body(item.seq)? else {
            continue;
        };
        let message = OutgoingMessage {
            message_id: item.message_id.clone(),
            envelope_from: item.envelope_from.clone(),
            envelope_to: item.to.clone(),
            bytes: body,
        };
        match transport.send(&message).await {
            Ok(()) => {
                item.sent_at = Some(now);
                let log = entry(
                    now,
                    format!("sent {} to {}", item.template, item.to.join(", ")),
                );
                pipeline.store.update_outbox(&item, Some(log))?;
                tracing::info!(case_id = %item.case_id, message_id = %item.message_id, template = %item.template, "sent");
                report.sent += 1;
            }
            Err(Error::Permanent(reason)) => {
                fail(pipeline, &mut item, &reason, now)?;
                report.failed += 1;
            }
            Err(e) => {
                item.attempts += 1;
                item.next_attempt_at = now + backoff_secs(item.attempts);
                item.last_error = Some(e.to_string());
                pipeline.store.update_outbox(&item, None)?;
                tracing::warn!(case_id = %item.case_id, message_id = %item.message_id, attempts = item.attempts,
                    error.message = %e, transport = %transport.describe(), "send deferred");
                report.deferred += 1;
            }
        }
    }
    Ok(report)
}

fn fail(pipeline: &Pipeline, item: &mut OutboxItem, reason: &str, now: i64) -> Result<()> {
    item.failed = true;
    item.last_error = Some(reason.to_owned());
    let log = entry(
        now,
        format!(
            "{} to {} refused: {reason}",
            item.template,
            item.to.join(", ")
        ),
    );
    pipeline.store.update_outbox(item, Some(log))?;
    tracing::error!(case_id = %item.case_id, message_id = %item.message_id, error.message = %reason, "send refused");
    // Tell staff, unless the refused mail was itself a staff notification.
    if !item.template.starts_with("staff_") {
        pipeline.record_delivery_failure(&item.case_id, &item.to.join(", "), reason, now)?;
    }
    Ok(())
}

fn entry(at: i64, what: String) -> LogEntry {
    LogEntry {
        at,
        actor: "system".into(),
        what,
    }
}
