//! The reason model's training examples and its cross-validation, shared by
//! the generator (which writes the model) and the reading report (which
//! prints the cross-validated figure beside the development and held-out
//! ones).

use std::path::Path;

use recoverydesk::request::Reason;
use recoverydesk::request_rules::extract_with;
use recoverydesk::request_rules::reason_model::{reading_text, train, Model, CLASSES};
use recoverydesk::{quote, secrets};

use super::{fnv1a, PypiRecord};

/// One training example: the text the model reads, its reason, and
/// whether it is a hand-written seed sentence.
pub type Example = (String, Reason, bool);

fn reason(code: &str) -> Option<Reason> {
    CLASSES.into_iter().find(|r| r.code() == code)
}

/// What the pipeline hands the reader: new text, redacted.
pub fn new_text(body: &str) -> String {
    secrets::redact(&quote::new_text(body, None)).text
}

/// A labelled request as a training example (none for `unknown`).
pub fn pypi_example(r: &PypiRecord) -> Option<Example> {
    reason(&r.labels.reason_category)
        .map(|reason| (reading_text(&new_text(&r.body), &r.title), reason, false))
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

/// The examples every model is trained on besides the PyPI development
/// part: the project's own development requests and the seed sentences.
/// Returns them with the number of each.
pub fn base_examples(root: &Path) -> (Vec<Example>, usize, usize) {
    let mut examples = Vec::new();
    let own: Set = toml::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/requests/requests.toml"))
            .expect("requests.toml"),
    )
    .expect("requests.toml parses");
    for r in &own.request {
        let Some(reason) = r.reason.as_deref().and_then(reason) else {
            continue;
        };
        let body = quote::new_text(&r.text, r.html.as_deref());
        let text = secrets::redact(&body).text;
        examples.push((reading_text(&text, &r.subject), reason, false));
    }
    let own_n = examples.len();
    let seeds = std::fs::read_to_string(root.join("src/request_rules/reason_seeds.tsv"))
        .expect("reason_seeds.tsv");
    for line in seeds.lines().filter(|l| !l.starts_with('#')) {
        let Some((code, text)) = line.split_once('\t') else {
            continue;
        };
        let reason = reason(code).unwrap_or_else(|| panic!("unknown reason {code:?} in seeds"));
        examples.push((text.to_string(), reason, true));
    }
    let seed_n = examples.len() - own_n;
    (examples, own_n, seed_n)
}

/// Number of cross-validation folds.
pub const FOLDS: u64 = 5;

/// What a cross-validation found.
#[derive(Debug, Default)]
pub struct CvResult {
    /// Primary reason right, rules and model together.
    pub right: usize,
    /// Primary reason right by the model alone (`unknown` when it knows no word).
    pub model_right: usize,
    /// Requests read.
    pub total: usize,
    /// One line per miss of the whole reader.
    pub misses: Vec<String>,
}

/// Five folds inside the development part (fold = FNV-1a of `id#fold`
/// modulo 5): each fold is read by the whole reader with a model trained
/// on the base examples and the other four folds.
pub fn cross_validate(dev: &[&PypiRecord], base: &[Example]) -> CvResult {
    let fold = |r: &PypiRecord| fnv1a(&format!("{}#fold", r.id)) % FOLDS;
    let mut out = CvResult::default();
    for k in 0..FOLDS {
        let mut examples = base.to_vec();
        examples.extend(
            dev.iter()
                .filter(|r| fold(r) != k)
                .filter_map(|r| pypi_example(r)),
        );
        let model = Model::parse(&train(&examples));
        for r in dev.iter().filter(|r| fold(r) == k) {
            let want = r.labels.reason_category.as_str();
            let text = new_text(&r.body);
            let fields = extract_with(&text, &r.title, &[], &model);
            let got = fields.reasons.first().map_or("unknown", |x| x.code());
            let guess = model.guess(&reading_text(&text, &r.title));
            out.right += usize::from(got == want);
            out.model_right += usize::from(guess.map_or("unknown", |g| g.reason.code()) == want);
            out.total += 1;
            if got != want {
                out.misses.push(format!(
                    "{} got {:?} want {want} (model {guess:?})",
                    r.id, fields.reasons
                ));
            }
        }
    }
    out
}
