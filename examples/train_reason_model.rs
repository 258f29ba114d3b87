//! Writes `src/request_rules/reason_model.tsv`: the reason model trained on
//! the development part of `pypi-support-requests` (never the held-out
//! part; see `reading_common`), the project's own development requests
//! (`tests/fixtures/requests/requests.toml`; the holdout files there are
//! left out) and the seed sentences in `src/request_rules/reason_seeds.tsv`.
//!
//! Run `cargo run --example train_reason_model` after changing the seeds,
//! the features or the split, and commit the model with the change.
//! `--cv` writes nothing: it prints the primary-reason accuracy of a
//! five-fold cross-validation inside the development part (each fold read
//! by a model trained without it), the figure to tune on.

mod reading_common;

use std::path::Path;

use reading_common::training::{base_examples, cross_validate, pypi_example};
use reading_common::{held_out, pypi_records, PypiRecord};
use recoverydesk::request_rules::reason_model::train;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let records = pypi_records();
    if records.is_empty() {
        eprintln!("../shared/corpus/pypi-support-requests is absent: cannot train");
        std::process::exit(1);
    }
    let dev_records: Vec<&PypiRecord> = records.iter().filter(|r| !held_out(&r.id)).collect();
    let skipped = records.len() - dev_records.len();
    let (mut examples, own_n, seed_n) = base_examples(root);
    if std::env::args().any(|a| a == "--cv") {
        let cv = cross_validate(&dev_records, &examples);
        if std::env::args().any(|a| a == "--misses") {
            for line in &cv.misses {
                println!("  {line}");
            }
        }
        let pct = |n: usize| 100.0 * n as f64 / cv.total.max(1) as f64;
        println!(
            "cross-validated primary reason on the development part: {}/{} = {:.1}% (model alone {:.1}%)",
            cv.right,
            cv.total,
            pct(cv.right),
            pct(cv.model_right)
        );
        return;
    }
    let dev = dev_records.len();
    examples.extend(dev_records.iter().filter_map(|r| pypi_example(r)));
    let model = train(&examples);
    let out = root.join("src/request_rules/reason_model.tsv");
    std::fs::write(&out, &model).expect("write the model");
    println!(
        "trained on {dev} development requests ({skipped} held out, not used), {own_n} own requests, {seed_n} seeds: {} features -> {}",
        model.lines().filter(|l| !l.starts_with('#')).count() - 1,
        out.display()
    );
}
