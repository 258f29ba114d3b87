//! Running the daemon for operators: signals (SIGINT/SIGTERM stop, SIGHUP
//! reloads templates and the accounts file), the template watcher, the metrics endpoint and
//! `doctor`.

use std::path::Path;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::config::Settings;
use crate::pipeline::Pipeline;
use crate::templates::SharedTemplates;

/// Resolves on SIGINT or SIGTERM; reloads templates on SIGHUP meanwhile.
///
/// The SIGTERM and SIGHUP handlers are installed by this call, not when the
/// future is first polled: the worker polls it only after its first pass,
/// and SIGHUP's default action (terminate) would otherwise stop a daemon
/// that is still working through its backlog. Call it inside the runtime.
pub fn shutdown_signal(
    templates: SharedTemplates,
    directory: Arc<dyn crate::directory::Directory>,
) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    async move {
        let (Ok(mut term), Ok(mut hup)) = handlers else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    match templates.reload() {
                        Ok(()) => tracing::info!("templates reloaded on SIGHUP"),
                        Err(e) => tracing::error!(error.message = %e, "template reload failed; keeping the previous set"),
                    }
                    match directory.reload() {
                        Some(Ok(changes)) => tracing::info!(%changes, "account directory reloaded on SIGHUP"),
                        Some(Err(e)) => tracing::error!(error.message = %e, "account directory reload failed; keeping the previous accounts"),
                        None => {}
                    }
                }
            }
        }
    }
}

/// How long `run` lets the pass in hand finish after SIGTERM before it
/// stops without it.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// A stop request shared by the worker (finish the pass, then return) and
/// `run` (stop anyway once [`SHUTDOWN_GRACE`] has passed).
#[derive(Clone)]
pub struct Stop {
    requested: tokio::sync::watch::Receiver<bool>,
}

impl Stop {
    /// Installs the signal handlers now (see [`shutdown_signal`]).
    pub fn on_signals(
        templates: SharedTemplates,
        directory: Arc<dyn crate::directory::Directory>,
    ) -> Stop {
        let signal = shutdown_signal(templates, directory);
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = tx.send(true);
        });
        Stop { requested: rx }
    }

    /// Resolves once a stop was asked for.
    pub fn requested(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut rx = self.requested.clone();
        async move {
            // An error means the sender is gone: nothing can ask any more,
            // so wait for ever rather than stop.
            if rx.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves [`SHUTDOWN_GRACE`] after a stop was asked for.
    pub fn overdue(&self) -> impl std::future::Future<Output = ()> + 'static {
        let requested = self.requested();
        async move {
            requested.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    }
}

/// Starts the template watcher when `templates.watch` is on.
pub fn watch_templates(
    settings: &Settings,
    pipeline: &Pipeline,
) -> anyhow::Result<Option<notify::RecommendedWatcher>> {
    match (&settings.templates_dir, settings.templates_watch) {
        (Some(dir), true) => Ok(Some(crate::templates::watch(
            pipeline.templates.clone(),
            dir,
        )?)),
        _ => Ok(None),
    }
}

/// Serves `/metrics` (Prometheus text) and `/healthz` when configured.
pub async fn start_metrics(
    settings: &Settings,
    pipeline: &Pipeline,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listen) = &settings.metrics.listen else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        crate::error::Error::Config(format!("metrics.listen: cannot bind {listen}: {e}"))
    })?;
    let pipeline = Arc::new(pipeline.clone());
    let ready_pipeline = pipeline.clone();
    let grace = settings.metrics.not_ready_after.as_secs() as i64;
    // A worker that waits poll_interval between passes is stuck only well
    // past it.
    let stale = grace.max(3 * settings.source.poll_interval.as_secs() as i64 + 60);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let pipeline = ready_pipeline.clone();
                async move {
                    let store = pipeline.store.clone();
                    let metrics = pipeline.metrics.clone();
                    let now = crate::clock::now();
                    let r = tokio::task::spawn_blocking(move || {
                        metrics.readiness(&store, now, grace, stale)
                    })
                    .await;
                    readiness_response(r.ok())
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let pipeline = pipeline.clone();
                async move { metrics_response(&pipeline, crate::clock::now()) }
            }),
        );
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error.message = %e, "metrics endpoint stopped");
        }
    })))
}

/// The scrape answer: the text, or a 503 naming the store error (a failing
/// store must not read as "zero cases").
fn metrics_response(pipeline: &Pipeline, now: i64) -> (axum::http::StatusCode, String) {
    match metrics_text(pipeline, now) {
        Ok(text) => (axum::http::StatusCode::OK, text),
        Err(e) => {
            tracing::error!(error.message = %e, "metrics: the store cannot be read");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("store unreadable: {e}\n"),
            )
        }
    }
}

fn readiness_response(r: Option<crate::metrics::Readiness>) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let Some(r) = r else {
        return (StatusCode::SERVICE_UNAVAILABLE, "readiness check failed\n").into_response();
    };
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string_pretty(&r).unwrap_or_default() + "\n";
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The Prometheus text exposition, computed from the store at scrape time.
pub fn metrics_text(pipeline: &Pipeline, now: i64) -> crate::error::Result<String> {
    let store = &pipeline.store;
    let mut out = String::new();
    let cases = store.cases()?;
    out.push_str("# HELP recoverydesk_cases Cases by state.\n# TYPE recoverydesk_cases gauge\n");
    for state in [
        "awaiting_info",
        "awaiting_verification",
        "awaiting_staff",
        "waiting_period",
        "resolved",
        "closed",
    ] {
        let n = cases.iter().filter(|c| c.state.as_str() == state).count();
        out.push_str(&format!("recoverydesk_cases{{state=\"{state}\"}} {n}\n"));
    }
    let oldest = cases
        .iter()
        .filter(|c| c.state.is_open())
        .map(|c| now - c.created_at)
        .max()
        .unwrap_or(0);
    out.push_str("# HELP recoverydesk_oldest_open_case_seconds Age of the oldest open case.\n# TYPE recoverydesk_oldest_open_case_seconds gauge\n");
    out.push_str(&format!("recoverydesk_oldest_open_case_seconds {oldest}\n"));
    let (_, by_kind) = store.inbound_counts()?;
    out.push_str("# HELP recoverydesk_messages_ingested_total Inbound messages by kind.\n# TYPE recoverydesk_messages_ingested_total counter\n");
    for (kind, n) in by_kind {
        out.push_str(&format!(
            "recoverydesk_messages_ingested_total{{kind=\"{kind}\"}} {n}\n"
        ));
    }
    let (sent, failed, pending) = store.outbox_counts()?;
    out.push_str("# HELP recoverydesk_replies_total Outgoing mail by result.\n# TYPE recoverydesk_replies_total counter\n");
    out.push_str(&format!(
        "recoverydesk_replies_total{{result=\"sent\"}} {sent}\n"
    ));
    out.push_str(&format!(
        "recoverydesk_replies_total{{result=\"failed\"}} {failed}\n"
    ));
    out.push_str("# HELP recoverydesk_outbox_pending Replies waiting to be sent.\n# TYPE recoverydesk_outbox_pending gauge\n");
    out.push_str(&format!("recoverydesk_outbox_pending {pending}\n"));
    out.push_str(&pipeline.metrics.render());
    Ok(out)
}

/// `doctor`: checks each part for real (login, connect, render, open)
/// and prints a ✓/✗ line with what to fix as each check finishes, so a
/// slow server shows which part is slow. Exit status 1 when any fails.
pub async fn doctor(config: Option<&Path>) -> anyhow::Result<()> {
    let path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| "config.toml".into());
    let settings = match Settings::load(&path) {
        Ok(s) => {
            let warning = s
                .key_warning
                .as_ref()
                .map(|w| format!(" (warning: {w})"))
                .unwrap_or_default();
            print_row("config", &Ok(format!("{}{warning}", path.display())));
            Arc::new(s)
        }
        Err(e) => {
            println!("✗ {:<10} {e}", "config");
            return Err(e.into());
        }
    };
    let mut failed = 0;
    let mut row = |name: &str, result: Result<String, String>| {
        failed += usize::from(result.is_err());
        print_row(name, &result);
    };
    row("store", check_store(&settings));
    row("templates", check_templates(&settings));
    row("directory", check_directory(&settings).await);
    row("source", check_source(&settings).await);
    row("transport", check_transport(&settings).await);
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

fn print_row(name: &str, result: &Result<String, String>) {
    match result {
        Ok(what) => println!("✓ {name:<10} {what}"),
        Err(why) => println!("✗ {name:<10} {why}"),
    }
}

fn check_store(settings: &Settings) -> Result<String, String> {
    let store_path = &settings.store_path;
    match crate::store::Store::open(store_path) {
        Ok(s) => Ok(format!(
            "{} ({} open case(s), {} reply(ies) queued)",
            store_path.display(),
            s.open_count(),
            s.outbox_counts().map(|c| c.2).unwrap_or(0)
        )),
        Err(e) => Err(format!(
            "{e} — is another recoverydesk running on this store?"
        )),
    }
}

fn check_templates(settings: &Settings) -> Result<String, String> {
    let templates = crate::templates::check::check_dir(settings.templates_dir.as_deref());
    if templates.is_ok() {
        Ok("every template renders".into())
    } else {
        Err(templates.to_string())
    }
}

async fn check_directory(settings: &Settings) -> Result<String, String> {
    // The directory's own contract check: a made-up username must come
    // back "not found", so an endpoint that claims every name fails too.
    match crate::directory::open(&settings.directory, &settings.base_dir) {
        Ok(dir) => crate::directory::check(dir.as_ref(), None).await,
        Err(e) => Err(e.to_string()),
    }
}

async fn check_source(settings: &Settings) -> Result<String, String> {
    use crate::config::Mailbox;
    match &settings.source.mailbox {
        Mailbox::Imap(imap) => crate::source::imap::check(imap, &settings.base_dir)
            .await
            .map_err(|e| e.to_string()),
        Mailbox::Maildir(p) if p.join("new").is_dir() => Ok(format!("maildir {}", p.display())),
        Mailbox::Maildir(p) => Err(format!("{} has no new/ folder", p.display())),
    }
}

async fn check_transport(settings: &Settings) -> Result<String, String> {
    use crate::config::TransportSettings;
    match &settings.transport {
        TransportSettings::Smtp(smtp) => crate::transport::smtp::check(smtp, &settings.base_dir)
            .await
            .map_err(|e| e.to_string()),
        TransportSettings::File(_) => crate::worker::open_transport(settings)
            .map(|t| t.describe())
            .map_err(|e| e.to_string()),
    }
}
