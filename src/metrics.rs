//! In-process counters the store cannot answer: suppressed replies, source
//! failures, and the acknowledgement latency histogram. Counters start at
//! zero with the process, as Prometheus counters may.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::store::Store;
use crate::templates::TemplateKind;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Process-wide counters, shared by the pipeline, worker and endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Replies held back by the rate limit.
    pub replies_suppressed: AtomicU64,
    /// Passes that failed because the source (IMAP) failed; each is followed by a reconnect.
    pub source_failures: AtomicU64,
    /// Flood summaries sent to staff in place of single alerts.
    pub staff_flood_summaries: AtomicU64,
    /// Staff alerts not mailed on their own, per template.
    alerts_folded: Mutex<BTreeMap<TemplateKind, u64>>,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// Unix seconds of the last pass whose fetch succeeded (0: none yet).
    pass_ok_at: AtomicI64,
    /// Unix seconds since when passes fail without a success (0: not failing).
    failing_since: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// What `/readyz` answers: ready or not, and the facts behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    /// Whether the worker is doing its job (HTTP 200, else 503).
    pub ready: bool,
    /// Why not, one line each.
    pub problems: Vec<String>,
    /// Unix seconds of the last successful fetch, if any.
    pub last_fetch_ok: Option<i64>,
    /// `up`, `down` (the last pass failed) or `starting`.
    pub source: &'static str,
    /// The error of the last failed pass, while failing.
    pub source_error: Option<String>,
    /// `up`, or `failing` when a queued reply has a send error.
    pub transport: &'static str,
    /// The last send error of the oldest failing reply.
    pub transport_error: Option<String>,
    /// Replies waiting to be sent.
    pub outbox_pending: usize,
    /// Age in seconds of the oldest reply waiting.
    pub oldest_pending_seconds: i64,
}

impl Metrics {
    /// Counts one staff alert of this template that was not mailed on its own.
    pub fn fold_alert(&self, template: TemplateKind) {
        let mut folded = self.alerts_folded.lock().unwrap_or_else(|e| e.into_inner());
        *folded.entry(template).or_default() += 1;
    }

    /// Records a pass whose mail fetch succeeded.
    pub fn pass_succeeded(&self, now: i64) {
        self.pass_ok_at.store(now, Ordering::Relaxed);
        self.failing_since.store(0, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Records a failed pass; the failure time is kept from the first one.
    pub fn pass_failed(&self, now: i64, error: &str) {
        let _ = self
            .failing_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
    }

    /// Readiness at `now`: not ready before the first good pass, when
    /// passes have failed for longer than `grace`, when the last good one
    /// is older than `stale` (a stuck worker), or when a reply has waited
    /// longer than `grace`.
    pub fn readiness(&self, store: &Store, now: i64, grace: i64, stale: i64) -> Readiness {
        let ok_at = self.pass_ok_at.load(Ordering::Relaxed);
        let failing = self.failing_since.load(Ordering::Relaxed);
        let mut problems = Vec::new();
        let source = match (ok_at, failing) {
            (_, f) if f > 0 => "down",
            (0, _) => "starting",
            _ => "up",
        };
        if failing > 0 && now - failing > grace {
            problems.push(format!("mail source failing for {}s", now - failing));
        }
        if ok_at == 0 && failing == 0 {
            problems.push("no pass has finished yet".into());
        } else if ok_at > 0 && now - ok_at > stale {
            problems.push(format!("last successful fetch {}s ago", now - ok_at));
        }
        let pending = store.pending_outbox().unwrap_or_else(|e| {
            problems.push(format!("store unreadable: {e}"));
            Vec::new()
        });
        let oldest = pending.iter().map(|i| now - i.queued_at).max().unwrap_or(0);
        let failing_send = pending.iter().find(|i| i.last_error.is_some());
        if oldest > grace {
            problems.push(format!(
                "{} reply(ies) waiting, the oldest for {oldest}s",
                pending.len()
            ));
        }
        Readiness {
            ready: problems.is_empty(),
            problems,
            last_fetch_ok: (ok_at > 0).then_some(ok_at),
            source,
            source_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            transport: if failing_send.is_some() {
                "failing"
            } else {
                "up"
            },
            transport_error: failing_send.and_then(|i| i.last_error.clone()),
            outbox_pending: pending.len(),
            oldest_pending_seconds: oldest,
        }
    }

    /// Records one fetch → acknowledgement-sent latency.
    pub fn observe_ack_latency(&self, seconds: f64) {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text for these counters.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str(
            "# HELP recoverydesk_replies_suppressed_total Replies held back by the rate limit.\n",
        );
        out.push_str("# TYPE recoverydesk_replies_suppressed_total counter\n");
        out.push_str(&format!(
            "recoverydesk_replies_suppressed_total {}\n",
            get(&self.replies_suppressed)
        ));
        out.push_str("# HELP recoverydesk_source_failures_total Failed passes due to the mailbox source (each followed by a reconnect).\n");
        out.push_str("# TYPE recoverydesk_source_failures_total counter\n");
        out.push_str(&format!(
            "recoverydesk_source_failures_total {}\n",
            get(&self.source_failures)
        ));
        out.push_str("# HELP recoverydesk_staff_alerts_folded_total Staff alerts not mailed on their own (one per kind per case per interval; floods).\n");
        out.push_str("# TYPE recoverydesk_staff_alerts_folded_total counter\n");
        let folded = self.alerts_folded.lock().unwrap_or_else(|e| e.into_inner());
        for (template, n) in folded.iter() {
            out.push_str(&format!(
                "recoverydesk_staff_alerts_folded_total{{template=\"{template}\"}} {n}\n"
            ));
        }
        drop(folded);
        out.push_str("# HELP recoverydesk_staff_flood_summaries_total Summary mails sent to staff for a flood of one kind of alert.\n");
        out.push_str("# TYPE recoverydesk_staff_flood_summaries_total counter\n");
        out.push_str(&format!(
            "recoverydesk_staff_flood_summaries_total {}\n",
            get(&self.staff_flood_summaries)
        ));
        out.push_str("# HELP recoverydesk_ack_latency_seconds From fetching a message to its acknowledgement being accepted by the transport.\n");
        out.push_str("# TYPE recoverydesk_ack_latency_seconds histogram\n");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            out.push_str(&format!(
                "recoverydesk_ack_latency_seconds_bucket{{le=\"{bound}\"}} {}\n",
                get(bucket)
            ));
        }
        let count = get(&self.latency_count);
        out.push_str(&format!(
            "recoverydesk_ack_latency_seconds_bucket{{le=\"+Inf\"}} {count}\n"
        ));
        out.push_str(&format!(
            "recoverydesk_ack_latency_seconds_sum {:.6}\n",
            get(&self.latency_sum_micros) as f64 / 1e6
        ));
        out.push_str(&format!("recoverydesk_ack_latency_seconds_count {count}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_every_bucket_at_or_above_it() {
        let m = Metrics::default();
        m.observe_ack_latency(0.3);
        let text = m.render();
        assert!(text.contains("le=\"0.25\"} 0"), "{text}");
        assert!(text.contains("le=\"0.5\"} 1"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 1"), "{text}");
        assert!(
            text.contains("recoverydesk_ack_latency_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn folded_alerts_are_counted_per_template() {
        let m = Metrics::default();
        m.fold_alert(TemplateKind::StaffForged);
        m.fold_alert(TemplateKind::StaffForged);
        m.fold_alert(TemplateKind::StaffDeliveryFailure);
        let text = m.render();
        assert!(
            text.contains("recoverydesk_staff_alerts_folded_total{template=\"staff_forged\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "recoverydesk_staff_alerts_folded_total{template=\"staff_delivery_failure\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("recoverydesk_staff_flood_summaries_total 0"));
    }
}
