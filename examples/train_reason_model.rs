//! Writes `src/request_rules/reason_model.tsv`: the reason model trained on
//! the development part of `pypi-support-requests` (never the held-out
//! part; see `reading_common`), the project's own development requests
//! (`tests/fixtures/requests/requests.toml`; the holdout files there are
//! left out) and the seed sentences in `src/request_rules/reason_seeds.tsv`.
//!
//! Run `cargo run --release --example train_reason_model` after changing
//! the seeds, the features or the split, and commit the model with the
//! change. Training is deterministic: the same inputs write the same file.
//! `--cv` writes nothing: it prints the primary-reason accuracy of a
//! five-fold cross-validation inside the development part (each fold read
//! by a model trained without it), the figure to tune on; `--grid` prints
//! it for every setting tried (L2 penalty, n-gram and prose weights,
//! trust), which is how the committed settings were chosen.

mod reading_common;

use std::path::Path;

use reading_common::training::{base_examples, cross_validate, pypi_raw, settings, Raw};
use reading_common::{held_out, pypi_records, PypiRecord};
use recoverydesk::request_rules::linear::TrainConfig;
use recoverydesk::request_rules::reason_model::{self, FeatureOpts, Trust, TRUST};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let records = pypi_records();
    if records.is_empty() {
        eprintln!("../shared/corpus/pypi-support-requests is absent: cannot train");
        std::process::exit(1);
    }
    let dev_records: Vec<&PypiRecord> = records.iter().filter(|r| !held_out(&r.id)).collect();
    let skipped = records.len() - dev_records.len();
    let (mut raws, own_n, seed_n) = base_examples(root);
    let args: Vec<String> = std::env::args().collect();
    let (cfg, opts) = settings();
    if args.iter().any(|a| a == "--grid") {
        grid(&dev_records, &raws);
        return;
    }
    if args.iter().any(|a| a == "--cv") {
        let cv = &cross_validate(&dev_records, &raws, &cfg, &opts, &[TRUST])[0];
        if args.iter().any(|a| a == "--misses") {
            for line in &cv.misses {
                println!("  {line}");
            }
        }
        let pct = |n: usize| 100.0 * n as f64 / cv.total.max(1) as f64;
        println!(
            "cross-validated primary reason on the development part: {}/{} = {:.1}% (rules alone {:.1}%, model alone {:.1}%)",
            cv.right,
            cv.total,
            pct(cv.right),
            pct(cv.rules_right),
            pct(cv.model_right)
        );
        return;
    }
    let dev = dev_records.len();
    raws.extend(dev_records.iter().filter_map(|r| pypi_raw(r)));
    let examples: Vec<_> = raws.iter().map(|r| r.example(&opts)).collect();
    let model = reason_model::train(&examples, &cfg, &opts);
    let out = root.join("src/request_rules/reason_model.tsv");
    let text = reason_model::write(&model);
    std::fs::write(&out, &text).expect("write the model");
    println!(
        "trained on {dev} development requests ({skipped} held out, not used), {own_n} own requests, {seed_n} seeds: {} features, {} bytes -> {}",
        model.len(),
        text.len(),
        out.display()
    );
}

/// Cross-validation over the settings tried.
fn grid(dev: &[&PypiRecord], raws: &[Raw]) {
    let levels = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01];
    let fills = [0.2, 0.3, 0.4, 0.5];
    let trusts: Vec<Trust> = fills
        .iter()
        .flat_map(|f| {
            levels.iter().map(|o| Trust {
                overrule: *o,
                fill: *f,
            })
        })
        .collect();
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let list = |k: &str, d: &str| -> Vec<f64> {
        env(k, d)
            .split(',')
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    for l2 in list("GRID_L2", "0.0003,0.001,0.003") {
        for gram_share in list("GRID_GRAM", "0,0.25,0.5") {
            for rest_share in list("GRID_REST", "0,0.3") {
                let cfg = TrainConfig {
                    l2,
                    epochs: env("GRID_EPOCHS", "300").parse().unwrap_or(300),
                    step: env("GRID_STEP", "1").parse().unwrap_or(1.0),
                    ..TrainConfig::default()
                };
                let opts = FeatureOpts {
                    gram_share,
                    rest_share,
                    rule_share: env("GRID_RULE", "0").parse().unwrap_or(0.0),
                    fold: std::env::var("GRID_FOLD").map_or(true, |v| v != "0"),
                };
                let cvs = cross_validate(dev, raws, &cfg, &opts, &trusts);
                let pct = |n: usize| 100.0 * n as f64 / cvs[0].total.max(1) as f64;
                let line: Vec<String> = trusts
                    .iter()
                    .zip(&cvs)
                    .map(|(t, cv)| format!("{}/{}:{:.1}", t.overrule, t.fill, pct(cv.right)))
                    .collect();
                if std::env::var("GRID_MISSES").is_ok() {
                    for m in cvs[2].misses.iter().chain(&cvs[2].model_misses) {
                        println!("  {m}");
                    }
                }
                println!(
                    "l2 {l2} gram {gram_share} rest {rest_share}: rules {:.1} model {:.1} | {}",
                    pct(cvs[0].rules_right),
                    pct(cvs[0].model_right),
                    line.join(" ")
                );
            }
        }
    }
}
