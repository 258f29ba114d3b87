//! The worker: opens the source, transport, directory and templates from
//! the settings, and runs passes: fetch a batch → ingest each message →
//! one durable flush (group commit) → mark the batch on the source → due
//! timers → send the outbox. `run` repeats passes until shut down.
//!
//! One bad message never stops a pass: it is kept in the store with the
//! error and marked, so it is not retried forever.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Settings, SourceKind, TransportKind};
use crate::error::{Error, Result};
use crate::outbox::{self, SendReport};
use crate::pipeline::{Handled, Pipeline};
use crate::signature::{SignatureChecker, StaffVerify};
use crate::source::maildir::MaildirSource;
use crate::source::{CursorReader, Fetched, Source};
use crate::store::{Commit, InboundRecord, Store};
use crate::templates::SharedTemplates;
use crate::transport::file::FileTransport;
use crate::transport::Transport;

/// Test hook: exit right after the batch is flushed, before the source is
/// marked, to prove a crash there loses nothing and doubles nothing.
pub const CRASH_ENV: &str = "RECOVERYDESK_CRASH_AFTER_COMMIT";

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Messages ingested (including repeats).
    pub handled: Vec<Handled>,
    /// Messages that failed and were quarantined.
    pub errors: usize,
    /// Cases whose timers fired.
    pub timers: usize,
    /// Outbox results.
    pub sent: SendReport,
}

/// A running worker.
pub struct Worker {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Where mail comes from.
    pub source: Box<dyn Source>,
    /// Where mail goes.
    pub transport: Arc<dyn Transport>,
    /// Don't send or mark: shadow mode.
    pub dry_run: bool,
}

/// Opens the store, templates and directory: everything but the mailboxes.
pub fn open_pipeline(settings: Arc<Settings>) -> Result<Pipeline> {
    let store = Store::open(&settings.path(&settings.raw.store.path))?;
    open_pipeline_with_store(settings, store)
}

/// Like [`open_pipeline`] with a given store (replay uses a temporary one).
pub fn open_pipeline_with_store(settings: Arc<Settings>, store: Store) -> Result<Pipeline> {
    let templates = match &settings.raw.templates.dir {
        Some(dir) => SharedTemplates::from_dir(&settings.path(dir))?,
        None => SharedTemplates::embedded()?,
    };
    let directory = crate::directory::open(&settings.raw.directory, &settings.base_dir)?;
    let policy = settings.policy.clone();
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let signatures = match settings.staff.verify {
        StaffVerify::Dkim => Some(Arc::new(
            SignatureChecker::new(
                settings.raw.staff.dns_server,
                settings.raw.staff.dns_timeout(),
            )
            .map_err(|e| Error::Config(e.to_string()))?,
        )),
        StaffVerify::AuthenticationResults => None,
    };
    Ok(Pipeline {
        settings,
        store,
        templates,
        directory,
        policy,
        metrics,
        signatures,
    })
}

/// Opens the configured source, connecting at once (see [`open_source_lazily`]).
pub async fn open_source(settings: &Settings, store: &Store) -> Result<Box<dyn Source>> {
    open_source_with(settings, store, true).await
}

/// Opens the configured source without connecting yet (for the daemon).
pub async fn open_source_lazily(settings: &Settings, store: &Store) -> Result<Box<dyn Source>> {
    open_source_with(settings, store, false).await
}

async fn open_source_with(
    settings: &Settings,
    store: &Store,
    eager: bool,
) -> Result<Box<dyn Source>> {
    let reader_store = store.clone();
    let cursor: CursorReader = Arc::new(move |key: &str| reader_store.cursor(key).ok().flatten());
    match settings.raw.source.kind {
        SourceKind::Maildir => {
            let section = settings
                .raw
                .source
                .maildir
                .as_ref()
                .ok_or_else(|| Error::Config("source.maildir missing".into()))?;
            Ok(Box::new(MaildirSource::open(
                &settings.path(&section.path),
                settings.raw.source.max_message_bytes,
                cursor,
            )?))
        }
        SourceKind::Imap => crate::wiring::open_imap(settings, cursor, eager).await,
    }
}

/// Opens the configured transport.
pub fn open_transport(settings: &Settings) -> Result<Arc<dyn Transport>> {
    match settings.raw.transport.kind {
        TransportKind::File => {
            let section = settings
                .raw
                .transport
                .file
                .as_ref()
                .ok_or_else(|| Error::Config("transport.file missing".into()))?;
            Ok(Arc::new(FileTransport::new(&settings.path(&section.dir))?))
        }
        TransportKind::Smtp => crate::wiring::open_smtp(settings),
    }
}

impl Worker {
    /// Opens everything the settings name. `eager` connects the source now
    /// (`once`: fail fast); otherwise the first pass does (`run` starts
    /// even while the server is down). A dry run never changes the mailbox
    /// and writes replies to `shadow-outbox/` instead of sending them.
    pub async fn open(settings: Arc<Settings>, eager: bool, dry_run: bool) -> Result<Worker> {
        let pipeline = open_pipeline(settings.clone())?;
        let mut source = if eager {
            open_source(&settings, &pipeline.store).await?
        } else {
            open_source_lazily(&settings, &pipeline.store).await?
        };
        if dry_run {
            source.set_read_only();
        }
        let transport = if dry_run {
            let dir = settings.path(std::path::Path::new("shadow-outbox"));
            Arc::new(FileTransport::new(&dir)?) as Arc<dyn Transport>
        } else {
            open_transport(&settings)?
        };
        Ok(Worker {
            pipeline,
            source,
            transport,
            dry_run,
        })
    }

    /// One pass: all waiting mail, due timers, the outbox.
    pub async fn pass(&mut self, now: i64) -> Result<PassReport> {
        let started = std::time::Instant::now();
        let mut report = PassReport::default();
        let batch_size = self.pipeline.settings.raw.source.batch_size.max(1);
        loop {
            let batch = self.source.fetch_batch(batch_size).await?;
            if batch.is_empty() {
                break;
            }
            let mut done = Vec::with_capacity(batch.len());
            // Held a secret: marked apart (the source may move them aside).
            let mut secret = Vec::new();
            // Reading is pure and half the work: other cores read ahead
            // while messages meet the store here one by one, in order.
            let batch = Arc::new(batch);
            let mut readings = self.pipeline.read_ahead(batch.clone());
            for fetched in batch.iter() {
                let result = match readings.next().await {
                    Ok(reading) => {
                        let held_secret = reading.kept.is_some();
                        let result = self.pipeline.ingest_read(fetched, reading, now).await;
                        if held_secret && result.is_ok() {
                            secret.push(fetched.source_id.clone());
                        }
                        result
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(handled) => {
                        log_handled(&handled);
                        report.handled.push(handled);
                    }
                    Err(Error::Store(e)) => return Err(Error::Store(e)),
                    Err(e) => {
                        report.errors += 1;
                        tracing::error!(source_id = %fetched.source_id, error.message = %e, "message failed; kept and set aside");
                        quarantine(&self.pipeline.store, fetched, &e, now)?;
                    }
                }
                if secret.last() != Some(&fetched.source_id) {
                    done.push(fetched.source_id.clone());
                }
            }
            // Group commit: one durable flush for the whole batch, then mark.
            self.pipeline.store.flush()?;
            if std::env::var_os(CRASH_ENV).is_some() {
                tracing::error!(
                    "{CRASH_ENV} is set: exiting after the commit, before marking the source"
                );
                std::process::exit(99);
            }
            if !self.dry_run {
                self.source.mark_done(&done).await?;
                self.source.mark_secret(&secret).await?;
            }
            if batch.len() < batch_size {
                break;
            }
        }
        report.timers = self.pipeline.run_timers(now).await?;
        self.pipeline.store.flush()?;
        report.sent = outbox::send_due(&self.pipeline, self.transport.as_ref(), now).await?;
        if !self.dry_run {
            if let Err(e) =
                crate::digest::send_if_due(&self.pipeline, self.transport.as_ref(), now).await
            {
                // A digest that cannot go out now is retried on the next pass.
                tracing::warn!(error.message = %e, "daily digest not sent");
            }
        }
        // Acknowledgements of messages fetched in this pass: the time from
        // the start of the pass to the transport accepting them.
        let acks = report
            .handled
            .iter()
            .filter(|h| h.queued.iter().any(|t| t == "acknowledgement"))
            .count();
        for _ in 0..acks.min(report.sent.sent) {
            self.pipeline
                .metrics
                .observe_ack_latency(started.elapsed().as_secs_f64());
        }
        self.pipeline.store.flush()?;
        Ok(report)
    }

    /// Runs passes until `shutdown` resolves; finishes the pass in hand.
    pub async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let poll = self.pipeline.settings.raw.source.poll_interval;
        let mut failures: u32 = 0;
        let mut ever_worked = false;
        loop {
            match self.pass(crate::clock::now()).await {
                Ok(_) => {
                    failures = 0;
                    ever_worked = true;
                }
                Err(e @ Error::Store(_)) => return Err(e),
                // A wrong password or a missing mailbox at start-up is the
                // operator's to fix (exit 2). Once the worker has run, the
                // same answer is most likely passing (a mailbox being
                // recreated, an auth backend restarting): keep retrying.
                Err(e @ Error::Config(_)) if !ever_worked => return Err(e),
                Err(e) => {
                    failures += 1;
                    self.pipeline
                        .metrics
                        .source_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(error.message = %e, source = %self.source.describe(), failures, "pass failed; retrying");
                }
            }
            let wait = if failures == 0 {
                poll
            } else {
                backoff(failures)
            };
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutting down");
                    return Ok(());
                }
                res = self.source.wait_for_new(wait) => {
                    if let Err(e) = res {
                        failures += 1;
                        tracing::warn!(error.message = %e, "waiting for mail failed");
                        // The backoff must not delay a shutdown.
                        tokio::select! {
                            _ = &mut shutdown => return Ok(()),
                            _ = tokio::time::sleep(backoff(failures)) => {}
                        }
                    }
                }
            }
        }
    }
}

/// Doubling backoff with a cap and a little jitter.
pub fn backoff(failures: u32) -> Duration {
    let base = 1u64 << failures.min(6);
    let jitter = rand::random::<u64>() % 1000;
    Duration::from_millis((base * 1000).min(60_000) + jitter)
}

fn log_handled(h: &Handled) {
    tracing::info!(
        message_id = %h.message_id,
        case_id = %h.case_id.as_ref().map(|c| c.as_str()).unwrap_or("-"),
        kind = %h.kind, via = %h.via, queued = ?h.queued, notes = ?h.notes,
        "message handled"
    );
}

/// Keeps a message that failed in the pipeline, with the error, so it is
/// never lost and never retried forever.
pub fn quarantine(store: &Store, fetched: &Fetched, error: &Error, now: i64) -> Result<()> {
    let hash = crate::parse::content_hash(&fetched.raw);
    let record = InboundRecord {
        message_id: String::new(),
        case_id: None,
        kind: "quarantined".into(),
        received_at: now,
        source_id: fetched.source_id.clone(),
        notes: vec![format!("error: {error}")],
    };
    store.commit(&Commit {
        raw: Some((hash.clone(), fetched.raw.clone())),
        inbound: Some((hash, record)),
        cursor: fetched
            .cursor
            .as_ref()
            .map(|c| (c.key.clone(), c.value.clone())),
        ..Commit::default()
    })
}
