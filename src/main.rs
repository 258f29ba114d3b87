//! The `recoverydesk` binary: parse argv, set up logging, run, map errors
//! to exit codes (0 ok, 1 failure, 2 configuration).

use clap::Parser;
use recoverydesk::cli::{self, Cli};

fn main() {
    fixed_mmap_threshold();
    let cli = Cli::parse();
    // The demo prints its own summary; its per-message log lines are noise.
    let quiet = matches!(
        cli.command,
        cli::Command::Demo { .. }
            | cli::Command::Cases { .. }
            | cli::Command::Followups { .. }
            | cli::Command::Backup { .. }
            | cli::Command::Restore { .. }
    );
    init_tracing(
        &cli.log_format,
        if quiet {
            "warn"
        } else {
            "warn,recoverydesk=info"
        },
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("recoverydesk: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(cli::run(cli)) {
        eprintln!("recoverydesk: {}", cli::describe(&error));
        std::process::exit(cli::exit_code(&error));
    }
}

fn init_tracing(format: &str, default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("RECOVERYDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour only for a person at a terminal; a file or journald gets
    // plain text. NO_COLOR (set and not empty) turns it off everywhere.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.event_format(json_log::JsonLines).init();
    } else {
        builder.init();
    }
}

/// JSON log lines whose field values are JSON values: numbers and booleans
/// as such, and a list logged with `?` (its Debug text, which for lists of
/// strings and numbers is JSON already) as a real array rather than a
/// string holding its Debug text.
mod json_log {
    use std::fmt;

    use serde_json::{Map, Value};
    use tracing::field::{Field, Visit};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    /// The event format: `{"timestamp", "level", "target", "fields", "spans"}`.
    pub struct JsonLines;

    impl<S, N> FormatEvent<S, N> for JsonLines
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result {
            let mut fields = Map::new();
            event.record(&mut Fields(&mut fields));
            let meta = event.metadata();
            let mut line = Map::new();
            line.insert(
                "timestamp".into(),
                chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                    .into(),
            );
            line.insert("level".into(), meta.level().as_str().into());
            line.insert("target".into(), meta.target().into());
            line.insert("fields".into(), Value::Object(fields));
            if let Some(scope) = ctx.event_scope() {
                let spans: Vec<Value> = scope.from_root().map(|s| s.name().into()).collect();
                line.insert("spans".into(), Value::Array(spans));
            }
            writeln!(writer, "{}", Value::Object(line))
        }
    }

    struct Fields<'a>(&'a mut Map<String, Value>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            let text = format!("{value:?}");
            let value = match serde_json::from_str::<Value>(&text) {
                Ok(v @ (Value::Array(_) | Value::Object(_) | Value::String(_))) => v,
                _ => Value::String(text),
            };
            self.0.insert(field.name().into(), value);
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_i64(&mut self, field: &Field, value: i64) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_f64(&mut self, field: &Field, value: f64) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_bool(&mut self, field: &Field, value: bool) {
            self.0.insert(field.name().into(), value.into());
        }
    }
}

/// Large buffers in mappings of their own, returned to the system when
/// freed. glibc otherwise raises its mmap threshold to the largest block
/// freed (up to 32 MiB): after one 10 MB message, every later large
/// buffer comes from the heap, whose top goes back only past twice that,
/// so a backlog of large mail held memory it no longer used (30 messages
/// of 9.6 MiB: 121 MiB peak RSS, 100 MiB with the threshold fixed at its
/// 128 KiB default). An operator's own `MALLOC_MMAP_THRESHOLD_` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; this runs
        // first in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

/// Other platforms' allocators have no such threshold to fix.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}
