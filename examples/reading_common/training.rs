//! The reason model's training examples and its cross-validation, shared by
//! the generator (which writes the model) and the reading report (which
//! prints the cross-validated figure beside the development and held-out
//! ones).

use std::path::Path;

use recoverydesk::request::Reason;
use recoverydesk::request_rules::extract_with;
use recoverydesk::request_rules::linear::TrainConfig;
use recoverydesk::request_rules::reason_model::{
    reading_features, text_features, train, Example, FeatureOpts, Model, Trust, CLASSES,
};
use recoverydesk::{quote, secrets};

use super::{fnv1a, PypiRecord};

/// One training text before its features are computed (they depend on
/// the feature settings being tried): the new text, the subject, the
/// reason, and whether it is a hand-written seed sentence (read as free
/// text of its own).
#[derive(Debug, Clone)]
pub struct Raw {
    /// What the reader reads.
    pub text: String,
    /// The subject.
    pub subject: String,
    /// The labelled reason.
    pub reason: Reason,
    /// A seed sentence.
    pub seed: bool,
}

impl Raw {
    /// Its features under `opts`, as a training example.
    pub fn example(&self, opts: &FeatureOpts) -> Example {
        let features = if self.seed {
            text_features(&self.text, opts)
        } else {
            reading_features(&self.text, &self.subject, opts)
        };
        (features, self.reason, self.seed)
    }
}

fn reason(code: &str) -> Option<Reason> {
    CLASSES.into_iter().find(|r| r.code() == code)
}

/// What the pipeline hands the reader: new text, redacted.
pub fn new_text(body: &str) -> String {
    secrets::redact(&quote::new_text(body, None)).text
}

/// A labelled request as a training text (none for `unknown`).
pub fn pypi_raw(r: &PypiRecord) -> Option<Raw> {
    reason(&r.labels.reason_category).map(|reason| Raw {
        text: new_text(&r.body),
        subject: r.title.clone(),
        reason,
        seed: false,
    })
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

/// The texts every model is trained on besides the PyPI development
/// part: the project's own development requests and the seed sentences.
/// Returns them with the number of each.
pub fn base_examples(root: &Path) -> (Vec<Raw>, usize, usize) {
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
        examples.push(Raw {
            text,
            subject: r.subject.clone(),
            reason,
            seed: false,
        });
    }
    let own_n = examples.len();
    let seeds = std::fs::read_to_string(root.join("src/request_rules/reason_seeds.tsv"))
        .expect("reason_seeds.tsv");
    for line in seeds.lines().filter(|l| !l.starts_with('#')) {
        let Some((code, text)) = line.split_once('\t') else {
            continue;
        };
        let reason = reason(code).unwrap_or_else(|| panic!("unknown reason {code:?} in seeds"));
        examples.push(Raw {
            text: text.to_string(),
            subject: String::new(),
            reason,
            seed: true,
        });
    }
    let seed_n = examples.len() - own_n;
    (examples, own_n, seed_n)
}

/// The settings the committed model is trained with (chosen by
/// cross-validation: `train_reason_model --grid`).
pub fn settings() -> (TrainConfig, FeatureOpts) {
    let cfg = TrainConfig {
        l2: 1e-4,
        epochs: 1000,
        ..TrainConfig::default()
    };
    let opts = FeatureOpts {
        gram_share: 1.0,
        rest_share: 0.0,
        rule_share: 3.0,
        fold: true,
    };
    (cfg, opts)
}

/// Number of cross-validation folds.
pub const FOLDS: u64 = 5;

/// What a cross-validation found.
#[derive(Debug, Default, Clone)]
pub struct CvResult {
    /// Primary reason right, rules and model together.
    pub right: usize,
    /// Primary reason right by the model alone (`unknown` when it knows no word).
    pub model_right: usize,
    /// Primary reason right by the phrase rules alone.
    pub rules_right: usize,
    /// Requests read.
    pub total: usize,
    /// One line per miss of the whole reader.
    pub misses: Vec<String>,
    /// One line per miss of the model alone.
    pub model_misses: Vec<String>,
}

/// The fold of a development record: FNV-1a of `id#fold` modulo 5.
fn fold(r: &PypiRecord) -> u64 {
    fnv1a(&format!("{}#fold", r.id)) % FOLDS
}

/// Five folds inside the development part: each fold is read by the whole
/// reader with a model trained on the base examples and the other four
/// folds. One result per trust level tried (the least probability for
/// the model to overrule the phrase rules).
pub fn cross_validate(
    dev: &[&PypiRecord],
    base: &[Raw],
    cfg: &TrainConfig,
    opts: &FeatureOpts,
    trusts: &[Trust],
) -> Vec<CvResult> {
    let mut out = vec![CvResult::default(); trusts.len()];
    let base: Vec<Example> = base.iter().map(|r| r.example(opts)).collect();
    let texts: Vec<String> = dev.iter().map(|r| new_text(&r.body)).collect();
    for k in 0..FOLDS {
        let mut examples = base.clone();
        examples.extend(
            dev.iter()
                .filter(|r| fold(r) != k)
                .filter_map(|r| pypi_raw(r))
                .map(|raw| raw.example(opts)),
        );
        let model = train(&examples, cfg, opts);
        let trusted: Vec<Model> = trusts
            .iter()
            .map(|t| model.clone().with_trust(*t))
            .collect();
        for (r, text) in dev.iter().zip(&texts).filter(|(r, _)| fold(r) == k) {
            let want = r.labels.reason_category.as_str();
            let primary = |m: &Model| {
                let f = extract_with(text, &r.title, &[], m);
                (f.reasons.first().map_or("unknown", |x| x.code()), f.reasons)
            };
            let guess = model.guess_request(text, &r.title);
            let model_says = guess.map_or("unknown", |g| g.reason.code());
            let rules_says = primary(&Model::default()).0;
            for (res, m) in out.iter_mut().zip(&trusted) {
                let (got, all) = primary(m);
                res.right += usize::from(got == want);
                res.model_right += usize::from(model_says == want);
                res.rules_right += usize::from(rules_says == want);
                res.total += 1;
                if model_says != want {
                    res.model_misses
                        .push(format!("{} model {model_says} want {want}", r.id));
                }
                if got != want {
                    res.misses.push(format!(
                        "{} got {all:?} want {want} (model {guess:?})",
                        r.id
                    ));
                }
            }
        }
    }
    out
}
