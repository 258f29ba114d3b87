//! The durable reply queue: sends what the pipeline committed, a few
//! messages at a time, marks each sent right after the transport accepts
//! it and makes the marks durable in groups, in the background while
//! other messages are on the wire (keeping the at-least-once window to the
//! `connections` messages in flight), retries a message's
//! transient failures with backoff, pauses the whole queue (no backoff)
//! while the transport is unavailable, and records permanent failures on
//! the case.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::StreamExt;

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
    /// Due but not tried: the transport was unavailable, so they wait for
    /// the next pass without a backoff of their own.
    pub held: usize,
    /// The transport could not be reached this pass.
    pub unavailable: bool,
}

/// Test hook: exit right after the transport accepted this many messages,
/// before the last one is marked, to prove a crash while sending re-sends
/// only the mail in flight.
pub const CRASH_AFTER_SENDS_ENV: &str = "RECOVERYDESK_CRASH_AFTER_SENDS";

/// Backoff after `attempts` failures: 30 s doubling, at most an hour.
pub fn backoff_secs(attempts: u32) -> i64 {
    (30i64 << attempts.min(7)).min(3600)
}

/// The outcome of one message's attempt.
enum Attempt {
    Done(Result<()>),
    /// Not tried: the transport was found unavailable meanwhile.
    Held,
    /// The body is gone (sent by an earlier pass that crashed before its
    /// mark); nothing to do.
    NoBody,
}

/// Sends every due message once, up to [`Transport::connections`] at a
/// time. Each accepted message is marked sent at once; the marks are made
/// durable (fsync) in the background while other messages are on the
/// wire, one fsync at a time covering every mark written before it
/// started (group commit). A message is started only while fewer than
/// `connections` are on the wire or waiting for their mark's fsync, so a
/// crash re-sends at most `connections` messages (see ARCHITECTURE.md).
/// A transport found unavailable stops the pass: what is in flight
/// finishes, the rest is held for the next pass untouched.
pub async fn send_due(
    pipeline: &Pipeline,
    transport: &dyn Transport,
    now: i64,
) -> Result<SendReport> {
    let store = pipeline.store.clone();
    send_due_with(pipeline, transport, now, Arc::new(move || store.flush())).await
}

/// Makes the marks written so far durable (the store's flush; a test
/// stand-in can hold it up).
type SyncFn = Arc<dyn Fn() -> Result<()> + Send + Sync>;

async fn send_due_with(
    pipeline: &Pipeline,
    transport: &dyn Transport,
    now: i64,
    sync: SyncFn,
) -> Result<SendReport> {
    let mut due = pipeline
        .store
        .pending_outbox()?
        .into_iter()
        .filter(|item| item.next_attempt_at <= now);
    let width = transport.connections().max(1);
    let halted = AtomicBool::new(false);
    let crash_after = crash_after_sends();
    let mut report = SendReport::default();
    let mut accepted = 0usize;
    let mut marks = Marks::new(sync);
    let mut wire = FuturesUnordered::new();
    loop {
        while wire.len() + marks.unsynced() < width {
            let Some(item) = due.next() else { break };
            wire.push(attempt(pipeline, transport, &halted, item));
        }
        if wire.is_empty() && !marks.syncing() {
            break;
        }
        tokio::select! {
            synced = marks.synced(), if marks.syncing() => synced?,
            Some((mut item, outcome)) = wire.next(), if !wire.is_empty() => match outcome {
                Attempt::Done(Ok(())) => {
                    accepted += 1;
                    if crash_after == Some(accepted) {
                        tracing::error!("{CRASH_AFTER_SENDS_ENV} is set: exiting before the mark");
                        std::process::exit(98);
                    }
                    mark_sent(pipeline, &mut item, now)?;
                    marks.noted();
                    report.sent += 1;
                }
                Attempt::Done(Err(e)) => {
                    record_failure(pipeline, transport, &mut item, e, now, &mut report)?
                }
                Attempt::Held => report.held += 1,
                Attempt::NoBody => {}
            },
        }
        marks.start_sync();
    }
    marks.finish().await?;
    report.unavailable = halted.load(Ordering::SeqCst);
    Ok(report)
}

/// The sent marks on their way to disk: those written since the running
/// fsync started, and those it covers.
struct Marks {
    sync: SyncFn,
    waiting: usize,
    covered: usize,
    running: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl Marks {
    fn new(sync: SyncFn) -> Self {
        Marks {
            sync,
            waiting: 0,
            covered: 0,
            running: None,
        }
    }

    fn noted(&mut self) {
        self.waiting += 1;
    }

    /// Messages accepted whose mark is not durable yet.
    fn unsynced(&self) -> usize {
        self.waiting + self.covered
    }

    fn syncing(&self) -> bool {
        self.running.is_some()
    }

    /// Starts an fsync of the waiting marks unless one is running.
    fn start_sync(&mut self) {
        if self.running.is_none() && self.waiting > 0 {
            let sync = self.sync.clone();
            self.running = Some(tokio::task::spawn_blocking(move || sync()));
            self.covered = std::mem::take(&mut self.waiting);
        }
    }

    /// Waits for the running fsync, if any.
    async fn synced(&mut self) -> Result<()> {
        let Some(handle) = self.running.as_mut() else {
            return Ok(());
        };
        let result = handle.await;
        self.running = None;
        self.covered = 0;
        result.map_err(|e| Error::Permanent(format!("the store's fsync task failed: {e}")))?
    }

    /// Every mark durable: the running fsync, then one more for the marks
    /// written meanwhile.
    async fn finish(mut self) -> Result<()> {
        self.synced().await?;
        self.start_sync();
        self.synced().await
    }
}

async fn attempt(
    pipeline: &Pipeline,
    transport: &dyn Transport,
    halted: &AtomicBool,
    item: OutboxItem,
) -> (OutboxItem, Attempt) {
    if halted.load(Ordering::SeqCst) {
        return (item, Attempt::Held);
    }
    let body = match pipeline.store.outbox_body(item.seq) {
        Ok(Some(body)) => body,
        Ok(None) => return (item, Attempt::NoBody),
        Err(e) => return (item, Attempt::Done(Err(e))),
    };
    let message = OutgoingMessage {
        message_id: item.message_id.clone(),
        envelope_from: item.envelope_from.clone(),
        envelope_to: item.to.clone(),
        bytes: body,
    };
    let result = transport.send(&message).await;
    if matches!(result, Err(Error::Unavailable(_))) {
        halted.store(true, Ordering::SeqCst);
    }
    (item, Attempt::Done(result))
}

fn mark_sent(pipeline: &Pipeline, item: &mut OutboxItem, now: i64) -> Result<()> {
    item.sent_at = Some(now);
    let log = entry(
        now,
        format!("sent {} to {}", item.template, item.to.join(", ")),
    );
    pipeline.store.update_outbox(item, Some(log))?;
    tracing::info!(case_id = %item.case_id, message_id = %item.message_id, template = %item.template.to_string(), "sent");
    Ok(())
}

fn record_failure(
    pipeline: &Pipeline,
    transport: &dyn Transport,
    item: &mut OutboxItem,
    error: Error,
    now: i64,
    report: &mut SendReport,
) -> Result<()> {
    match error {
        Error::Permanent(reason) => {
            fail(pipeline, item, &reason, now)?;
            report.failed += 1;
        }
        // The store failing is not the message's fault: stop.
        e @ Error::Store(_) => return Err(e),
        Error::Unavailable(reason) => {
            // Not this message's fault: no attempt counted, no backoff;
            // it goes first again on the next pass.
            item.last_error = Some(reason);
            pipeline.store.update_outbox(item, None)?;
            tracing::warn!(case_id = %item.case_id, message_id = %item.message_id,
                error.message = item.last_error.as_deref().unwrap_or_default(), transport = %transport.describe(), "transport unavailable; sending paused");
            report.deferred += 1;
        }
        e => {
            item.attempts += 1;
            item.next_attempt_at = now + backoff_secs(item.attempts);
            item.last_error = Some(e.to_string());
            pipeline.store.update_outbox(item, None)?;
            tracing::warn!(case_id = %item.case_id, message_id = %item.message_id, attempts = item.attempts,
                error.message = %e, transport = %transport.describe(), "send deferred");
            report.deferred += 1;
        }
    }
    Ok(())
}

fn crash_after_sends() -> Option<usize> {
    std::env::var(CRASH_AFTER_SENDS_ENV).ok()?.parse().ok()
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
    if !item.template.is_staff_facing() {
        pipeline.record_delivery_failure(&item.case_id, &item.to.join(", "), reason, now)?;
    }
    Ok(())
}

fn entry(at: i64, what: String) -> LogEntry {
    LogEntry {
        at,
        actor: crate::case::Actor::System,
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaseId;
    use crate::store::{Commit, Store};
    use futures::future::BoxFuture;
    use std::sync::{Arc, Mutex};

    /// Refuses mail to `busy@` with a 4xx, and everything once `down`.
    #[derive(Default)]
    struct Relay {
        down: bool,
        tried: Mutex<Vec<String>>,
    }

    impl Transport for Relay {
        fn send<'a>(&'a self, m: &'a OutgoingMessage) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                self.tried.lock().unwrap().push(m.envelope_to.join(","));
                if self.down {
                    return Err(Error::Unavailable("connection refused".into()));
                }
                if m.envelope_to.iter().any(|t| t.starts_with("busy@")) {
                    return Err(Error::Transient("452 mailbox busy".into()));
                }
                Ok(())
            })
        }

        fn describe(&self) -> String {
            "relay".into()
        }
    }

    fn pipeline(dir: &std::path::Path, to: &[&str]) -> Pipeline {
        std::fs::write(dir.join("secret.key"), "outbox-test-key-0123456789abcdef").unwrap();
        std::fs::write(dir.join("accounts.toml"), "").unwrap();
        let settings = crate::config::Settings::from_toml(crate::config::DEMO_TOML, dir, "test");
        let store = Store::temporary().unwrap();
        let outbox = to
            .iter()
            .enumerate()
            .map(|(seq, to)| {
                let item = OutboxItem {
                    seq: seq as u64,
                    case_id: CaseId::parse("RD-AAAAAA").unwrap(),
                    message_id: format!("m{seq}@x"),
                    template: crate::templates::TemplateKind::Acknowledgement,
                    envelope_from: "support@pypi.example".into(),
                    to: vec![to.to_string()],
                    subject: "s".into(),
                    queued_at: 0,
                    sent_at: None,
                    attempts: 0,
                    next_attempt_at: 0,
                    last_error: None,
                    failed: false,
                };
                (item, b"Subject: s\r\n\r\nhi\r\n".to_vec())
            })
            .collect();
        store
            .commit(&Commit {
                outbox,
                ..Commit::default()
            })
            .unwrap();
        crate::worker::open_pipeline_with_store(Arc::new(settings.unwrap()), store).unwrap()
    }

    /// Two connections; accepts everything. The second message takes a
    /// few polls to go out and opens `gate` once accepted.
    struct Opener {
        sends: Mutex<usize>,
        gate: Mutex<std::sync::mpsc::Sender<()>>,
    }

    impl Transport for Opener {
        fn send<'a>(&'a self, _: &'a OutgoingMessage) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                let n = {
                    let mut sends = self.sends.lock().unwrap();
                    *sends += 1;
                    *sends
                };
                if n == 2 {
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    let _ = self.gate.lock().unwrap().send(());
                }
                Ok(())
            })
        }

        fn connections(&self) -> usize {
            2
        }

        fn describe(&self) -> String {
            "opener".into()
        }
    }

    #[tokio::test]
    async fn a_message_on_the_wire_goes_on_while_the_marks_before_it_are_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path(), &["a@x.org", "b@x.org", "c@x.org"]);
        let (open, gate) = std::sync::mpsc::channel();
        let gate = Mutex::new(gate);
        let calls = Arc::new(Mutex::new(0usize));
        let counted = calls.clone();
        // The first fsync (of the first message's mark) returns only once
        // the second message is accepted; a sender that stopped its
        // connections for the fsync would never get there (the timeout
        // only ends that deadlock).
        let sync: SyncFn = Arc::new(move || {
            let first = {
                let mut calls = counted.lock().unwrap();
                *calls += 1;
                *calls == 1
            };
            if first {
                gate.lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .map_err(|_| Error::Permanent("the sender waited for the fsync".into()))?;
            }
            Ok(())
        });
        let relay = Opener {
            sends: Mutex::new(0),
            gate: Mutex::new(open),
        };
        let report = send_due_with(&p, &relay, 100, sync).await.unwrap();
        assert_eq!(report.sent, 3);
        assert!(p.store.pending_outbox().unwrap().is_empty());
        let calls = *calls.lock().unwrap();
        // One per mark here: each fsync starts as soon as the one before
        // returns, and the last covers the last mark.
        assert_eq!(calls, 3, "fsyncs for 3 marks");
    }

    #[tokio::test]
    async fn a_4xx_for_one_message_defers_only_that_message() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path(), &["a@x.org", "busy@x.org", "b@x.org"]);
        let report = send_due(&p, &Relay::default(), 100).await.unwrap();
        assert_eq!((report.sent, report.deferred, report.held), (2, 1, 0));
        let pending = p.store.pending_outbox().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].attempts, 1);
        assert!(pending[0].next_attempt_at > 100, "backed off");
    }

    #[tokio::test]
    async fn an_unreachable_relay_holds_the_queue_without_backing_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path(), &["a@x.org", "b@x.org", "c@x.org", "d@x.org"]);
        let relay = Relay {
            down: true,
            ..Relay::default()
        };
        let report = send_due(&p, &relay, 100).await.unwrap();
        assert!(report.unavailable);
        assert_eq!(report.sent, 0);
        assert_eq!(report.deferred + report.held, 4, "{report:?}");
        assert_eq!(relay.tried.lock().unwrap().len(), 1, "one try, then held");
        for item in p.store.pending_outbox().unwrap() {
            assert_eq!(item.attempts, 0, "not counted against {}", item.message_id);
            assert!(item.next_attempt_at <= 100, "due again at once");
        }
        // The relay is back a moment later: everything goes at once.
        let report = send_due(&p, &Relay::default(), 102).await.unwrap();
        assert_eq!(report.sent, 4);
    }
}
