//! The floor under `recoverydesk once`, for `scripts/bench-ingest.sh`: the
//! least any worker must do under the issue's rules, and nothing more. With
//! the worker's own source, store and config it fetches every message,
//! parses it, keeps it (raw bytes and a processed marker), commits the
//! whole batch in one sled transaction with the cursor last, makes it
//! durable with one fsync'd flush and only then marks the batch on the
//! server. No classification, no case, no reply.
//!
//! ```text
//! cargo run --release --example ingest_floor -- --config bench/config.toml
//! ```
//!
//! The store named in the config must be a fresh folder (the bench gives it
//! one). Prints one line: `kept N msgs in S s: R msgs/s`.

use std::path::PathBuf;
use std::time::Instant;

use recoverydesk::config::Settings;
use recoverydesk::parse;
use recoverydesk::store::{Commit, InboundRecord, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config = match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => PathBuf::from(path),
        _ => return Err("usage: ingest_floor --config CONFIG.toml".into()),
    };
    let settings = Settings::load(&config)?;
    let store = Store::open_with_cache(&settings.store_path, settings.store_cache_bytes)?;
    let mut source = recoverydesk::worker::open_source(&settings, &store).await?;
    let batch_size = settings.source.batch_size;
    let started = Instant::now();
    let mut kept = 0usize;
    // Where the time goes, per step, summed over the batches.
    let mut spent = [0f64; 5];
    loop {
        let step = Instant::now();
        let batch = source.fetch_batch(batch_size).await?;
        spent[0] += step.elapsed().as_secs_f64();
        if batch.is_empty() {
            break;
        }
        let step = Instant::now();
        let mut done = Vec::with_capacity(batch.len());
        let mut commits = Vec::with_capacity(batch.len());
        for fetched in &batch {
            let inbound = parse::parse(&fetched.raw);
            commits.push(Commit {
                raw: Some((inbound.content_hash.clone(), fetched.raw.clone())),
                inbound: Some((
                    inbound.content_hash.clone(),
                    InboundRecord {
                        message_id: inbound.message_id.clone(),
                        case_id: None,
                        kind: recoverydesk::domain::HandledKind::Human,
                        received_at: 0,
                        source_id: fetched.source_id.clone(),
                        notes: Vec::new(),
                    },
                )),
                cursor: fetched
                    .cursor
                    .as_ref()
                    .map(|c| (c.key.clone(), c.value.clone())),
                ..Commit::default()
            });
            done.push(fetched.source_id.clone());
        }
        spent[1] += step.elapsed().as_secs_f64();
        let step = Instant::now();
        store.commit_all(&commits)?;
        spent[2] += step.elapsed().as_secs_f64();
        let step = Instant::now();
        store.flush()?;
        spent[3] += step.elapsed().as_secs_f64();
        let step = Instant::now();
        source.mark_done(&done).await?;
        spent[4] += step.elapsed().as_secs_f64();
        kept += batch.len();
        if batch.len() < batch_size {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "kept {kept} msgs in {secs:.3} s: {:.0} msgs/s (fetch {:.3} s, parse {:.3} s, commit {:.3} s, fsync'd flush {:.3} s, mark {:.3} s)",
        kept as f64 / secs.max(1e-9),
        spent[0],
        spent[1],
        spent[2],
        spent[3],
        spent[4]
    );
    Ok(())
}
