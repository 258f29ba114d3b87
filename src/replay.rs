//! `replay` and `inspect`: the real pipeline over saved mail, on a
//! throwaway store, sending nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures::FutureExt;

use crate::case::Direction;
use crate::config::Settings;
use crate::source::Fetched;
use crate::store::Store;

/// Loads the given config, or the embedded demo config in a temp folder.
fn settings(config: Option<&Path>) -> anyhow::Result<(Option<tempfile::TempDir>, Arc<Settings>)> {
    match config {
        Some(path) => Ok((None, Arc::new(Settings::load(path)?))),
        None => {
            let dir = tempfile::tempdir().context("creating a temporary folder")?;
            let key = dir.path().join("secret.key");
            std::fs::write(&key, "replay-key-not-secret-0123456789")?;
            // Owner-only like any key file, so loading it warns about nothing.
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            std::fs::write(dir.path().join("accounts.toml"), crate::demo::ACCOUNTS)?;
            let settings =
                Settings::from_toml(crate::config::DEMO_TOML, dir.path(), "embedded demo config")?;
            Ok((Some(dir), Arc::new(settings)))
        }
    }
}

/// Every message under a path: a Maildir, a folder (recursively), an mbox, or one file.
pub fn collect(path: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        files.sort();
        for file in files {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            out.extend(split_mbox(&file, bytes));
        }
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        out.extend(split_mbox(path, bytes));
    }
    Ok(out)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, files)?;
        } else if entry.file_type()?.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// Splits an mbox (`From ` separator lines) into messages; anything else is one message.
fn split_mbox(path: &Path, bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let name = path.display().to_string();
    if !bytes.starts_with(b"From ") {
        return vec![(name, bytes)];
    }
    let mut messages = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            if !current.is_empty() {
                messages.push(std::mem::take(&mut current));
            }
            continue;
        }
        let unescaped = if line.starts_with(b">From ") {
            &line[1..]
        } else {
            line
        };
        current.extend_from_slice(unescaped);
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| (format!("{name}#{i}"), m))
        .collect()
}

/// What a replay did, counted per message.
#[derive(Default)]
struct Tally {
    kept: usize,
    failed: usize,
    panicked: usize,
    queued: usize,
}

/// `replay PATH [--json]`.
pub async fn run(config: Option<&Path>, path: &Path, json: bool) -> anyhow::Result<()> {
    let (_tmp, settings) = settings(config)?;
    let store = Store::temporary()?;
    let pipeline = crate::worker::open_pipeline_with_store(settings.clone(), store)?;
    let messages = collect(path)?;
    let bar = indicatif::ProgressBar::new(messages.len() as u64);
    if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let now = crate::clock::now();
    let started = Instant::now();
    let total = messages.len();
    let mut tally = Tally::default();
    let mut messages = messages.into_iter().peekable();
    while messages.peek().is_some() {
        let batch = Arc::new(next_batch(&mut messages, &settings));
        let mut readings = pipeline.read_ahead(batch.clone());
        for fetched in batch.iter() {
            let result = match readings.next().await {
                Ok(reading) => {
                    std::panic::AssertUnwindSafe(pipeline.ingest_read(fetched, reading, now))
                        .catch_unwind()
                        .await
                }
                Err(e) => Ok(Err(e)),
            };
            tally.count(&pipeline, fetched, result, json, now)?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let cases = pipeline.store.cases()?;
    if !json {
        print_cases(&cases);
    }
    eprintln!(
        "replayed {} message(s) in {:.2}s ({:.0} msgs/s): kept {}, errors {}, panics {}, cases {}, replies that would be sent {}",
        total,
        elapsed,
        total as f64 / elapsed.max(1e-9),
        tally.kept,
        tally.failed,
        tally.panicked,
        cases.len(),
        tally.queued
    );
    if tally.panicked > 0 {
        anyhow::bail!("{} message(s) made the pipeline panic", tally.panicked);
    }
    Ok(())
}

/// The next batch, as the worker takes one: the batch owns the bytes (no
/// copy of the corpus) and oversize mail is marked as the source would.
fn next_batch(
    messages: &mut std::iter::Peekable<std::vec::IntoIter<(String, Vec<u8>)>>,
    settings: &Settings,
) -> Vec<Fetched> {
    let max = settings.source.max_message_bytes;
    messages
        .by_ref()
        .take(settings.source.batch_size)
        .map(|(name, raw)| Fetched {
            source_id: name,
            oversize: (raw.len() as u64 > max).then_some(raw.len() as u64),
            raw: raw.into(),
            cursor: None,
        })
        .collect()
}

impl Tally {
    /// Counts one message's outcome; a failed one is quarantined as the worker would.
    fn count(
        &mut self,
        pipeline: &crate::pipeline::Pipeline,
        fetched: &Fetched,
        result: std::thread::Result<crate::error::Result<crate::pipeline::Handled>>,
        json: bool,
        now: i64,
    ) -> anyhow::Result<()> {
        let name = &fetched.source_id;
        match result {
            Ok(Ok(handled)) => {
                self.kept += 1;
                self.queued += handled.queued.len();
                if json {
                    println!("{}", serde_json::json!({"file": name, "handled": handled}));
                }
            }
            Ok(Err(e)) => {
                self.failed += 1;
                crate::worker::quarantine(&pipeline.store, fetched, &e, now)?;
                let hash = crate::parse::content_hash(&fetched.raw);
                if pipeline.store.seen_content(&hash)? {
                    self.kept += 1;
                }
                eprintln!("{name}: {e}");
            }
            Err(_) => {
                self.panicked += 1;
                eprintln!("{name}: PANIC in the pipeline (a bug)");
            }
        }
        Ok(())
    }
}

/// One line per case: id, state, username and the templates sent.
fn print_cases(cases: &[crate::case::Case]) {
    for case in cases {
        println!(
            "{} {:<22} {:<16} {}",
            case.id,
            case.state.as_str(),
            case.fields.username.as_deref().unwrap_or("-"),
            case.messages
                .iter()
                .filter(|m| m.direction == Direction::Out)
                .map(|m| m.kind.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
}

/// The benchmark baseline: read and parse every message, nothing else.
pub fn parse_only(path: &Path) -> anyhow::Result<()> {
    let messages = collect(path)?;
    let started = Instant::now();
    let mut bytes = 0usize;
    for (_, raw) in &messages {
        bytes += crate::parse::parse(raw).text.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "parsed {} message(s) in {:.2}s ({:.0} msgs/s, {} text bytes)",
        messages.len(),
        elapsed,
        messages.len() as f64 / elapsed.max(1e-9),
        bytes
    );
    Ok(())
}

/// `inspect FILE [--json]`: what the worker reads from one message (the
/// same `reading::read` the worker runs), without a store.
pub async fn inspect(config: Option<&Path>, file: &Path, json: bool) -> anyhow::Result<()> {
    let (_tmp, settings) = settings(config)?;
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let fetched = Fetched {
        source_id: file.display().to_string(),
        raw: raw.into(),
        oversize: None,
        cursor: None,
    };
    let reading = crate::reading::read(&fetched, &settings)
        .with_context(|| format!("reading {}", file.display()))?;
    let report = reading_report(&reading, &settings);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_reading(&reading, &report)?;
    }
    Ok(())
}

/// The reading of one message as JSON: what `inspect --json` prints and
/// what the golden set (`tests/golden/`) pins.
pub fn reading_report(reading: &crate::reading::Reading, settings: &Settings) -> serde_json::Value {
    let inbound = &reading.inbound;
    let missing: Vec<&str> = settings
        .policy
        .required
        .iter()
        .filter(|f| !reading.fields.has(**f))
        .map(|f| f.code())
        .collect();
    serde_json::json!({
        "message_id": inbound.message_id, "from": inbound.from_address(), "subject": inbound.subject,
        "kind": reading.classification.kind.code(), "kind_detail": reading.classification.kind, "kind_reason": reading.classification.reason,
        "staff": reading.staff, "language": reading.language,
        "thread_keys": { "in_reply_to": inbound.in_reply_to, "references": inbound.references,
            "subject_tag": crate::thread::subject_tag(&inbound.subject), "recipients": inbound.recipients().collect::<Vec<_>>() },
        "new_text": reading.redacted.text, "secrets_found": reading.redacted.found,
        "codes": reading.new_codes.len(), "quoted_codes": reading.quoted_codes.len(),
        "fields": reading.fields, "missing": missing,
        "warnings": inbound.warnings, "size": inbound.size, "html_only": inbound.html_only,
    })
}

fn print_reading(
    reading: &crate::reading::Reading,
    report: &serde_json::Value,
) -> anyhow::Result<()> {
    let inbound = &reading.inbound;
    println!("Message-ID   {}", inbound.message_id);
    println!(
        "From         {}",
        inbound
            .from_address()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "(none)".into())
    );
    println!("Subject      {}", inbound.subject);
    println!(
        "Kind         {} ({})",
        reading.classification.kind.code(),
        reading.classification.reason
    );
    println!("Staff        {}", serde_json::to_string(&reading.staff)?);
    println!("Language     {}", report["language"]);
    println!("Thread keys  {}", report["thread_keys"]);
    println!(
        "Fields       {}",
        serde_json::to_string_pretty(&report["fields"])?
    );
    println!("Missing      {}", report["missing"]);
    println!("Secrets      {:?}", reading.redacted.found);
    println!("Warnings     {:?}", inbound.warnings);
    println!("--- new text ---\n{}", reading.redacted.text);
    Ok(())
}
