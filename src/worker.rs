//! The worker: opens the source, transport, directory and templates from
//! the settings, and runs passes: fetch a batch → ingest each message →
//! one durable flush (group commit, fsync) → mark the batch on the source
//! → due timers → send the outbox. `run` repeats them until shut down,
//! each part on its own retry schedule, so a mailbox outage stops neither
//! timers nor sending.
//!
//! One bad message never stops a pass: it is kept in the store with the
//! error and marked, so it is not retried forever.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Mailbox, Settings, TransportSettings};
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

/// The shadow store's folder, beside the config (like `shadow-outbox/`).
pub const SHADOW_STORE: &str = "shadow-store";

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    /// Messages ingested (including repeats).
    pub handled: Vec<Handled>,
    /// Messages that failed and were quarantined.
    pub errors: usize,
    /// Cases whose timers fired.
    pub timers: usize,
    /// Outbox results.
    pub sent: SendReport,
    /// Why mail could not be fetched or marked (the rest of the pass ran).
    pub source_error: Option<Error>,
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
    let store = Store::open_with_cache(&settings.store_path, settings.store_cache_bytes)?;
    open_pipeline_with_store(settings, store)
}

/// Like [`open_pipeline`] with a given store (replay uses a temporary one).
pub fn open_pipeline_with_store(settings: Arc<Settings>, store: Store) -> Result<Pipeline> {
    let templates = match &settings.templates_dir {
        Some(dir) => SharedTemplates::from_dir(dir)?,
        None => SharedTemplates::embedded()?,
    };
    let directory = crate::directory::open(&settings.directory, &settings.base_dir)?;
    let policy = settings.policy.clone();
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let signatures = match settings.staff.verify {
        StaffVerify::Dkim => Some(Arc::new(
            SignatureChecker::new(settings.dns.server, settings.dns.timeout)
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
    let source = &settings.source;
    match &source.mailbox {
        Mailbox::Maildir(path) => Ok(Box::new(
            MaildirSource::open(path, source.max_message_bytes, cursor)?
                .with_batch_bytes(source.batch_bytes),
        )),
        Mailbox::Imap(imap) => crate::wiring::open_imap(settings, imap, cursor, eager).await,
    }
}

/// Opens the configured transport.
pub fn open_transport(settings: &Settings) -> Result<Arc<dyn Transport>> {
    match &settings.transport {
        TransportSettings::File(dir) => Ok(Arc::new(FileTransport::new(dir)?)),
        TransportSettings::Smtp(smtp) => crate::wiring::open_smtp(settings, smtp),
    }
}

impl Worker {
    /// Opens everything the settings name. `eager` connects the source now
    /// (`once`: fail fast); otherwise the first pass does (`run` starts
    /// even while the server is down). A dry run never changes the mailbox
    /// and writes replies to `shadow-outbox/` instead of sending them; its
    /// cases go to `shadow-store/`, a fresh copy of the real store.
    pub async fn open(settings: Arc<Settings>, eager: bool, dry_run: bool) -> Result<Worker> {
        let pipeline = if dry_run {
            // The real store is never written in shadow mode: a copy of it
            // takes every commit, so the next real run still answers all.
            let shadow = Store::open_shadow(
                &settings.store_path,
                &settings.path(std::path::Path::new(SHADOW_STORE)),
            )?;
            open_pipeline_with_store(settings.clone(), shadow)?
        } else {
            open_pipeline(settings.clone())?
        };
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

    /// One pass: all waiting mail, due timers, the outbox. A mailbox that
    /// cannot be read is reported in [`PassReport::source_error`] after the
    /// timers and the outbox have run anyway; only a store failure is an
    /// error here.
    pub async fn pass(&mut self, now: i64) -> Result<PassReport> {
        let started = std::time::Instant::now();
        let mut report = PassReport::default();
        if let Err(e) = self.ingest_waiting(now, &mut report).await {
            if matches!(e, Error::Store(_)) {
                return Err(e);
            }
            tracing::error!(error.message = %e, source = %self.source.describe(), "mail could not be fetched; timers and the outbox run anyway");
            report.source_error = Some(e);
        }
        self.duties(now, &mut report).await?;
        self.observe_ack_latency(started, &report);
        Ok(report)
    }

    /// Fetches, ingests, flushes and marks batches until a fetch comes back
    /// empty.
    async fn ingest_waiting(&mut self, now: i64, report: &mut PassReport) -> Result<()> {
        let batch_size = self.pipeline.settings.source.batch_size;
        loop {
            let batch = self.source.fetch_batch(batch_size).await?;
            if batch.is_empty() {
                return Ok(());
            }
            // Group commit: the batch is handled on a staged handle, whose
            // commits later messages of the batch read before the store;
            // then one transaction, one durable flush (fsync), and only
            // then the marks. A store error drops the staged writes: the
            // whole batch is fetched again.
            let staged = self.pipeline.store.staged();
            let pipeline = Pipeline {
                store: staged.clone(),
                ..self.pipeline.clone()
            };
            let (done, secret) = Self::ingest_batch(&pipeline, batch, now, report).await?;
            staged.commit_staged()?;
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
            // A batch may end short of `batch_size` on its byte budget, so
            // only an empty fetch says nothing more is waiting.
        }
    }

    /// Ingests one batch in order; returns the source ids to mark done and
    /// those that held a secret (marked apart: the source may move them
    /// aside).
    async fn ingest_batch(
        pipeline: &Pipeline,
        batch: Vec<Fetched>,
        now: i64,
        report: &mut PassReport,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let mut done = Vec::with_capacity(batch.len());
        let mut secret = Vec::new();
        // Reading is pure and half the work: other cores read ahead
        // while messages meet the store here one by one, in order.
        let batch = Arc::new(batch);
        let mut readings = pipeline.read_ahead(batch.clone());
        for fetched in batch.iter() {
            let result = match readings.next().await {
                Ok(reading) => {
                    let held_secret = reading.kept.is_some();
                    let result = pipeline.ingest_read(fetched, reading, now).await;
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
                    quarantine(&pipeline.store, fetched, &e, now)?;
                }
            }
            if secret.last() != Some(&fetched.source_id) {
                done.push(fetched.source_id.clone());
            }
        }
        Ok((done, secret))
    }

    /// The work that needs no mailbox: due timers, retention, the outbox,
    /// the digest.
    async fn duties(&mut self, now: i64, report: &mut PassReport) -> Result<()> {
        report.timers = self.pipeline.run_timers(now).await?;
        self.pipeline.store.flush()?;
        if let Some(keep) = self.pipeline.settings.retention {
            let purged = self
                .pipeline
                .store
                .purge_if_due(now, keep.as_secs() as i64)?;
            if !purged.is_empty() {
                let cases: Vec<String> = purged
                    .iter()
                    .filter_map(|e| e.case_id.as_ref().map(|c| c.to_string()))
                    .collect();
                tracing::info!(count = purged.len(), cases = ?cases, "retention: closed cases purged");
            }
        }
        report.sent = outbox::send_due(&self.pipeline, self.transport.as_ref(), now).await?;
        if !self.dry_run && !report.sent.unavailable {
            if let Err(e) =
                crate::digest::send_if_due(&self.pipeline, self.transport.as_ref(), now).await
            {
                // A digest that cannot go out now is retried on the next pass.
                tracing::warn!(error.message = %e, "daily digest not sent");
            }
        }
        self.pipeline.store.flush()
    }

    /// Acknowledgements of messages fetched in this pass: the time from
    /// the start of the pass to the transport accepting them.
    fn observe_ack_latency(&self, started: std::time::Instant, report: &PassReport) {
        let acks = report
            .handled
            .iter()
            .filter(|h| {
                h.queued
                    .contains(&crate::templates::TemplateKind::Acknowledgement)
            })
            .count();
        for _ in 0..acks.min(report.sent.sent) {
            self.pipeline
                .metrics
                .observe_ack_latency(started.elapsed().as_secs_f64());
        }
    }

    /// Runs until `shutdown` resolves; finishes the work in hand. Mail in,
    /// timers and the outbox fail on their own: the mailbox retries with
    /// its own backoff while timers and the outbox keep to the poll
    /// interval, and an unavailable transport is retried after its own
    /// (shorter) backoff, not a whole poll interval later. With `jobs`, the
    /// admin socket's changes (erase, purge, a consistent backup) run
    /// between passes, where no case is being handled.
    pub(crate) async fn run_serving(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
        mut jobs: Option<crate::admin::Jobs>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let poll = self.pipeline.settings.source.poll_interval;
        let mut mailbox = Retry::default();
        let mut outbox = Retry::default();
        let mut ever_worked = false;
        loop {
            let now = crate::clock::now();
            let started = std::time::Instant::now();
            let mut report = PassReport::default();
            if mailbox.due() {
                match self.ingest_waiting(now, &mut report).await {
                    Ok(()) => {
                        mailbox.succeeded();
                        ever_worked = true;
                        self.pipeline.metrics.pass_succeeded(crate::clock::now());
                    }
                    Err(e @ Error::Store(_)) => return Err(e),
                    // A wrong password or a missing mailbox at start-up is the
                    // operator's to fix (exit 2). Once the worker has run, the
                    // same answer is most likely passing (a mailbox being
                    // recreated, an auth backend restarting): keep retrying.
                    Err(e @ Error::Config(_)) if !ever_worked => return Err(e),
                    Err(e) => {
                        mailbox.failed();
                        self.pipeline
                            .metrics
                            .source_failures
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.pipeline
                            .metrics
                            .pass_failed(crate::clock::now(), &e.to_string());
                        tracing::error!(error.message = %e, source = %self.source.describe(), failures = mailbox.failures, "fetching mail failed; retrying");
                    }
                }
            }
            self.duties(now, &mut report).await?;
            self.observe_ack_latency(started, &report);
            if report.sent.unavailable {
                outbox.failed();
            } else {
                outbox.succeeded();
            }
            let wait = mailbox.wait(outbox.wait(poll));
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutting down");
                    return Ok(());
                }
                res = self.source.wait_for_new(wait), if mailbox.failures == 0 => {
                    if let Err(e) = res {
                        tracing::warn!(error.message = %e, "waiting for mail failed");
                        mailbox.failed();
                    }
                }
                _ = tokio::time::sleep(wait), if mailbox.failures > 0 => {}
                // Interrupting IDLE costs a reconnect, which an operator's
                // erase or backup is worth.
                Some(job) = next_job(&mut jobs) => job.run(&self.pipeline.store),
            }
        }
    }
}

/// The next admin job; never ready without a queue.
async fn next_job(jobs: &mut Option<crate::admin::Jobs>) -> Option<crate::admin::Job> {
    match jobs {
        Some(queue) => queue.recv().await,
        None => std::future::pending().await,
    }
}

/// When a failing part (the mailbox, the transport) is tried next.
#[derive(Debug, Default)]
struct Retry {
    failures: u32,
    at: Option<std::time::Instant>,
}

impl Retry {
    fn due(&self) -> bool {
        self.at.is_none_or(|at| std::time::Instant::now() >= at)
    }

    fn succeeded(&mut self) {
        *self = Retry::default();
    }

    fn failed(&mut self) {
        self.failures += 1;
        self.at = Some(std::time::Instant::now() + backoff(self.failures));
    }

    /// `limit`, or less when a retry is due sooner.
    fn wait(&self, limit: Duration) -> Duration {
        match self.at {
            Some(at) => at
                .saturating_duration_since(std::time::Instant::now())
                .min(limit),
            None => limit,
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
    // Names, not variants: the JSON log turns a Debug list of strings into an array.
    let queued: Vec<&str> = h.queued.iter().map(|kind| kind.name()).collect();
    tracing::info!(
        message_id = %h.message_id,
        case_id = %h.case_id.as_ref().map(|c| c.as_str()).unwrap_or("-"),
        kind = %h.kind, via = %h.via, queued = ?queued, notes = ?h.notes,
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
        kind: crate::domain::HandledKind::Quarantined,
        received_at: now,
        source_id: fetched.source_id.clone(),
        notes: vec![format!("error: {error}")],
    };
    store.commit(&Commit {
        raw: Some((hash.clone(), Arc::clone(&fetched.raw))),
        inbound: Some((hash, record)),
        cursor: fetched
            .cursor
            .as_ref()
            .map(|c| (c.key.clone(), c.value.clone())),
        ..Commit::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    /// What the fake source saw: the store's fsync count when each batch
    /// was fetched and when it was marked.
    #[derive(Default)]
    struct Seen {
        fetched_at: Vec<u64>,
        marked_at: Vec<u64>,
        marked: Vec<String>,
    }

    /// A source that hands out its messages once, or fails every fetch.
    struct FakeSource {
        store: Store,
        waiting: Vec<Fetched>,
        down: bool,
        seen: Arc<Mutex<Seen>>,
    }

    impl Source for FakeSource {
        fn fetch_batch(&mut self, max: usize) -> BoxFuture<'_, Result<Vec<Fetched>>> {
            Box::pin(async move {
                if self.down {
                    return Err(Error::Transient("connection refused".into()));
                }
                let take = max.min(self.waiting.len());
                let batch: Vec<Fetched> = self.waiting.drain(..take).collect();
                if !batch.is_empty() {
                    let syncs = self.store.durable_flushes();
                    self.seen.lock().unwrap().fetched_at.push(syncs);
                }
                Ok(batch)
            })
        }

        fn mark_done<'a>(&'a mut self, ids: &'a [String]) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                // The worker also marks the (here always empty) list of
                // messages that held a secret.
                if ids.is_empty() {
                    return Ok(());
                }
                let syncs = self.store.durable_flushes();
                let mut seen = self.seen.lock().unwrap();
                seen.marked_at.push(syncs);
                seen.marked.extend(ids.iter().cloned());
                Ok(())
            })
        }

        fn wait_for_new(&mut self, _: Duration) -> BoxFuture<'_, Result<()>> {
            Box::pin(async { Ok(()) })
        }

        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn request(i: usize) -> Fetched {
        let raw = format!(
            "From: r{i}@example.org\r\nTo: support@pypi.example\r\nSubject: Lost 2FA\r\n\
             Message-ID: <w{i}@example.org>\r\n\r\nUsername: user{i}\r\nI lost my phone.\r\n"
        );
        Fetched {
            source_id: format!("id-{i}"),
            raw: raw.into_bytes().into(),
            oversize: None,
            cursor: None,
        }
    }

    fn worker(
        dir: &std::path::Path,
        waiting: Vec<Fetched>,
        down: bool,
    ) -> (Worker, Arc<Mutex<Seen>>) {
        std::fs::write(dir.join("secret.key"), "worker-test-key-0123456789abcdef").unwrap();
        std::fs::write(dir.join("accounts.toml"), "").unwrap();
        let text = crate::config::DEMO_TOML.replace("batch_size = 100", "batch_size = 2");
        let settings = Arc::new(Settings::from_toml(&text, dir, "test").unwrap());
        let store = Store::open(&dir.join("store")).unwrap();
        let pipeline = open_pipeline_with_store(settings, store.clone()).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let source = FakeSource {
            store,
            waiting,
            down,
            seen: seen.clone(),
        };
        let transport = Arc::new(FileTransport::new(&dir.join("outbox")).unwrap());
        let worker = Worker {
            pipeline,
            source: Box::new(source),
            transport,
            dry_run: false,
        };
        (worker, seen)
    }

    #[tokio::test]
    async fn each_batch_is_fsynced_before_the_source_marks_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut worker, seen) = worker(dir.path(), (0..5).map(request).collect(), false);
        let report = worker.pass(1_763_900_000).await.unwrap();
        assert_eq!(report.handled.len(), 5);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.marked.len(), 5, "every message marked");
        assert_eq!(seen.fetched_at.len(), 3, "batches of 2, 2 and 1");
        assert_eq!(seen.marked_at.len(), 3);
        for (fetched, marked) in seen.fetched_at.iter().zip(&seen.marked_at) {
            assert!(
                marked > fetched,
                "a batch fetched after {fetched} fsyncs was marked after {marked}"
            );
        }
    }

    #[tokio::test]
    async fn later_messages_of_a_batch_see_what_earlier_ones_did() {
        let dir = tempfile::tempdir().unwrap();
        // From another address, so only the Message-ID the first message
        // put in the index can thread it (rule 2).
        let reply = Fetched {
            source_id: "id-reply".into(),
            raw: b"From: other@example.org\r\nTo: support@pypi.example\r\n\
                   Subject: more\r\nMessage-ID: <reply@example.org>\r\n\
                   In-Reply-To: <w1@example.org>\r\n\r\nAlso my laptop.\r\n"
                .to_vec()
                .into(),
            oversize: None,
            cursor: None,
        };
        let again = Fetched {
            source_id: "id-3-again".into(),
            ..request(3)
        };
        // Batches of 2: (request, reply) and (request, the same again).
        let waiting = vec![request(1), reply, request(3), again];
        let (mut worker, seen) = worker(dir.path(), waiting, false);
        let report = worker.pass(1_763_900_000).await.unwrap();
        let h = &report.handled;
        assert_eq!(h.len(), 4);
        assert_eq!(h[1].via, "reference", "{:?}", h[1]);
        assert_eq!(h[1].case_id, h[0].case_id, "the reply joins the case");
        assert!(h[3].repeat, "same content in the same batch: {:?}", h[3]);
        assert_eq!(h[3].kind, crate::domain::HandledKind::Repeat);
        let store = &worker.pipeline.store;
        assert_eq!(store.cases().unwrap().len(), 2);
        let case = store.case(h[0].case_id.as_ref().unwrap()).unwrap().unwrap();
        assert_eq!(
            case.messages
                .iter()
                .filter(|m| m.direction == crate::case::Direction::In)
                .count(),
            2
        );
        assert_eq!(seen.lock().unwrap().marked.len(), 4);
    }

    #[tokio::test]
    async fn a_mailbox_that_cannot_be_read_stops_neither_timers_nor_sending() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_763_900_000;
        // A first pass with the mailbox up queues acknowledgements, and
        // (the transport being down then) leaves them unsent.
        let (mut worker, _) = worker(dir.path(), vec![request(1), request(2)], false);
        worker.transport = Arc::new(Unavailable);
        let first = worker.pass(now).await.unwrap();
        assert!(first.sent.unavailable);
        assert_eq!(first.sent.sent, 0);
        let queued = worker.pipeline.store.pending_outbox().unwrap().len();
        assert!(queued >= 2, "acknowledgements queued: {queued}");
        // Now the mailbox is down and the transport is back.
        worker.source = Box::new(FakeSource {
            store: worker.pipeline.store.clone(),
            waiting: Vec::new(),
            down: true,
            seen: Arc::default(),
        });
        worker.transport = Arc::new(FileTransport::new(&dir.path().join("outbox")).unwrap());
        // A month later: the requests still lack everything, so reminders
        // and close notices are due.
        let second = worker.pass(now + 30 * 86_400).await.unwrap();
        assert!(
            second.source_error.is_some(),
            "the fetch failure is reported"
        );
        assert!(second.timers > 0, "timers ran");
        assert!(second.sent.sent > queued, "{:?}", second.sent);
        assert!(worker.pipeline.store.pending_outbox().unwrap().is_empty());
    }

    /// A transport whose server cannot be reached.
    struct Unavailable;

    impl Transport for Unavailable {
        fn send<'a>(
            &'a self,
            _: &'a crate::transport::OutgoingMessage,
        ) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Err(Error::Unavailable("connection refused".into())) })
        }

        fn describe(&self) -> String {
            "down".into()
        }
    }
}
