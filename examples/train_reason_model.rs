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

use reading_common::{fnv1a, held_out, pypi_records, PypiRecord};
use recoverydesk::request::Reason;
use recoverydesk::request_rules::extract_with;
use recoverydesk::request_rules::reason_model::Model;
use recoverydesk::request_rules::reason_model::{reading_text, train, CLASSES};
use recoverydesk::{quote, secrets};

fn reason(code: &str) -> Option<Reason> {
    CLASSES.into_iter().find(|r| r.code() == code)
}

/// What the pipeline hands the reader: new text, redacted.
fn new_text(body: &str) -> String {
    secrets::redact(&quote::new_text(body, None)).text
}

#[derive(serde::Deserialize)]
struct Set {
    request: Vec<Own>,
}

#[derive(serde::Deserialize)]
struct Own {
    subject: String,
    text: String,
    html: Option<String>,
    reason: Option<String>,
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut examples: Vec<(String, Reason, bool)> = Vec::new();
    let records = pypi_records();
    if records.is_empty() {
        eprintln!("../shared/corpus/pypi-support-requests is absent: cannot train");
        std::process::exit(1);
    }
    let dev_records: Vec<&PypiRecord> = records.iter().filter(|r| !held_out(&r.id)).collect();
    let skipped = records.len() - dev_records.len();
    let pypi_example = |r: &PypiRecord| {
        reason(&r.labels.reason_category)
            .map(|reason| (reading_text(&new_text(&r.body), &r.title), reason, false))
    };
    let own: Set = toml::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/requests/requests.toml"))
            .expect("requests.toml"),
    )
    .expect("requests.toml parses");
    let mut own_n = 0;
    for r in &own.request {
        let Some(reason) = r.reason.as_deref().and_then(reason) else {
            continue;
        };
        let body = quote::new_text(&r.text, r.html.as_deref());
        let text = secrets::redact(&body).text;
        examples.push((reading_text(&text, &r.subject), reason, false));
        own_n += 1;
    }
    let seeds = std::fs::read_to_string(root.join("src/request_rules/reason_seeds.tsv"))
        .expect("reason_seeds.tsv");
    let mut seed_n = 0;
    for line in seeds.lines().filter(|l| !l.starts_with('#')) {
        let Some((code, text)) = line.split_once('\t') else {
            continue;
        };
        let reason = reason(code).unwrap_or_else(|| panic!("unknown reason {code:?} in seeds"));
        examples.push((text.to_string(), reason, true));
        seed_n += 1;
    }
    if std::env::args().any(|a| a == "--cv") {
        cross_validate(&dev_records, &examples, pypi_example);
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

/// Five folds inside the development part; prints the primary-reason
/// accuracy of the whole reader (rules and model) on each left-out fold.
fn cross_validate(
    dev: &[&PypiRecord],
    base: &[(String, Reason, bool)],
    example: impl Fn(&PypiRecord) -> Option<(String, Reason, bool)>,
) {
    const FOLDS: u64 = 5;
    let fold = |r: &PypiRecord| fnv1a(&format!("{}#fold", r.id)) % FOLDS;
    let (mut right, mut total) = (0, 0);
    for k in 0..FOLDS {
        let mut examples = base.to_vec();
        examples.extend(
            dev.iter()
                .filter(|r| fold(r) != k)
                .filter_map(|r| example(r)),
        );
        let model = Model::parse(&train(&examples));
        for r in dev.iter().filter(|r| fold(r) == k) {
            let text = new_text(&r.body);
            let fields = extract_with(&text, &r.title, &[], &model);
            let got = fields
                .reasons
                .first()
                .map(|x| x.code())
                .unwrap_or("unknown");
            right += usize::from(got == r.labels.reason_category);
            if got != r.labels.reason_category && std::env::args().any(|a| a == "--misses") {
                let g = model.guess(&reading_text(&text, &r.title));
                println!(
                    "  {} got {:?} want {} (model {:?})",
                    r.id, fields.reasons, r.labels.reason_category, g
                );
            }
            total += 1;
        }
    }
    println!(
        "cross-validated primary reason on the development part: {right}/{total} = {:.1}%",
        100.0 * right as f64 / total.max(1) as f64
    );
}
