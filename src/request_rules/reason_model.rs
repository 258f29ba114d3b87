//! The learnt reading of the reason: a softmax model over a request's
//! words, learnt from labelled requests.
//!
//! The phrase rules in `super::reasons` are precise but only know the
//! wordings someone wrote down; requesters keep finding new ones ("my
//! Yubikey broke", "the authentication code is not working"). This model
//! weighs every word, word pair, word after a negation, character 4-gram
//! of a longer word and (for Chinese and Japanese) character and character
//! pair, plus the shape of the form, by how they went with each reason in
//! the training data, so a wording close to a known one is still read and
//! the words of a whole request are weighed together.
//!
//! The weights are data, not code: `reason_model.tsv` is written by
//! `cargo run --example train_reason_model` from the development part of
//! the labelled requests (never the held-out part), the project's own
//! development requests and the hand-written multilingual seed sentences
//! in `reason_seeds.tsv`, and committed. The learner is
//! `super::linear` (multinomial logistic regression, written by hand). At
//! run time the model is only read; it is pure and cannot fail (a damaged
//! file reads as an empty model, which never decides anything).

use std::collections::BTreeSet;

use once_cell::sync::Lazy;
use regex::Regex;

use super::linear::{self, Features, Linear, TrainConfig};
use super::sections::{Document, SectionKind};
use crate::request::Reason;

/// The reasons the model tells apart, in the model file's column order.
pub const CLASSES: [Reason; 6] = [
    Reason::Lost2faDevice,
    Reason::RecoveryCodesLostOrNotWorking,
    Reason::ForgotPassword,
    Reason::LostEmailAccess,
    Reason::SuspectedCompromise,
    Reason::Other,
];

/// How many requests one seed sentence counts as: a seed is a wording
/// written on purpose (often the only one in its language), so it must
/// count against the many requests around it.
pub const SEED_WEIGHT: f64 = 2.0;

/// How sure the model must be to decide the primary reason. Chosen by
/// five-fold cross-validation inside the development part
/// (`train_reason_model --grid`; 0.3 to 0.5 is a plateau): the model
/// weighs the whole request and what the phrase rules found in it, a rule
/// sees one phrase ("my 2FA phone" in a request about a mailbox that is
/// gone), so the model decides unless it is unsure.
pub const TRUST: Trust = Trust {
    overrule: 0.4,
    fill: 0.3,
};

/// How sure the model must be to decide the primary reason.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trust {
    /// Least probability to put a reason before the one the phrase rules
    /// named first.
    pub overrule: f64,
    /// Least probability to name a reason where no rule found one.
    pub fill: f64,
}

/// The feature set the code computes; the committed file must name the
/// same, or it was trained on other features and is not used.
pub const FEATURE_VERSION: &str = "softmax-1";

/// The committed model.
static MODEL: Lazy<Model> = Lazy::new(|| Model::parse(include_str!("reason_model.tsv")));

/// Things that carry no reason in any language: links, addresses, redaction
/// markers, inline code.
static NOISE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"https?://\S+|\S+@\S+|\[redacted [a-z_]+\]|`[^`\n]*`").expect("valid regex")
});

/// Han, kana: written without spaces, read as characters and pairs.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff)
}

/// The features of a text: `w:` words, `b:` adjacent word pairs, `c:`
/// CJK characters and character pairs. Each feature once.
pub fn features(text: &str) -> BTreeSet<String> {
    features_folded(text, false)
}

/// [`features`], with Latin accents folded first when `fold` is set
/// ("código" and "codigo", "não" and "nao" read alike).
pub fn features_folded(text: &str, fold: bool) -> BTreeSet<String> {
    let (mut out, words) = analyse(text, fold);
    for w in &words {
        char_grams(w, &mut out);
    }
    out
}

/// The word, pair, negation and CJK features of a text, and its words
/// (each once) for the character n-grams.
fn analyse(text: &str, fold: bool) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut lower = text.to_lowercase();
    if fold {
        lower = lower.chars().map(crate::lang::fold_accent).collect();
    }
    let clean = NOISE.replace_all(&lower, " ");
    let mut out = BTreeSet::new();
    let mut word = String::new();
    let mut words: Vec<String> = Vec::new();
    let mut prev_cjk: Option<char> = None;
    let flush = |word: &mut String, words: &mut Vec<String>| {
        let w = word.trim_matches('\'').to_string();
        word.clear();
        let digits = w.chars().filter(char::is_ascii_digit).count();
        if w.chars().count() >= 2 && digits <= 1 {
            words.push(w);
        } else if !w.is_empty() {
            // A number, a code or a username breaks the phrase.
            words.push(String::new());
        }
    };
    for c in clean.chars() {
        if is_cjk(c) {
            flush(&mut word, &mut words);
            words.push(String::new());
            out.insert(format!("c:{c}"));
            if let Some(p) = prev_cjk {
                out.insert(format!("c:{p}{c}"));
            }
            prev_cjk = Some(c);
            continue;
        }
        prev_cjk = None;
        if c.is_alphanumeric() || (c == '\'' && !word.is_empty()) {
            word.push(c);
        } else {
            flush(&mut word, &mut words);
            if matches!(c, '.' | ',' | ';' | '!' | '?' | '\n' | ':' | '(' | ')') {
                words.push(String::new());
            }
        }
    }
    flush(&mut word, &mut words);
    // Words after a negation, up to the end of the phrase, also count as
    // negated ("n:working" in "codes are not working"): whether a thing
    // works or is gone is the reason, and a pair only sees one word on.
    let mut negated = 0usize;
    for (i, w) in words.iter().enumerate() {
        if w.is_empty() {
            negated = 0;
            continue;
        }
        out.insert(format!("w:{w}"));
        if let Some(next) = words.get(i + 1).filter(|n| !n.is_empty()) {
            out.insert(format!("b:{w} {next}"));
        }
        if negated > 0 {
            out.insert(format!("n:{w}"));
            negated -= 1;
        }
        if is_negation(w) {
            negated = NEGATED_WORDS;
        }
    }
    let words = words.into_iter().filter(|w| !w.is_empty()).collect();
    (out, words)
}

/// How many words a negation reaches.
const NEGATED_WORDS: usize = 4;

/// The weight of one character n-gram against a word's 1 when the file
/// names none: a word gives several grams, all saying much the same.
const GRAM_SHARE: f64 = 0.25;

/// Shortest word cut into n-grams: short words ("login", "phone") are
/// features enough on their own, and their grams are mostly the word.
const MIN_GRAM_WORD: usize = 4;

/// Length of the character n-grams taken inside a word.
const GRAM: usize = 4;

/// Negating words in the languages read (the apostrophe forms keep their
/// `n't`, as the tokenizer leaves it).
fn is_negation(word: &str) -> bool {
    const NEG: &[&str] = &[
        "not", "no", "never", "cannot", "without", "nor", "none", "nothing", "sin", "nunca", "não",
        "nao", "nem", "sem", "pas", "plus", "jamais", "sans", "nicht", "kein", "keine", "keinen",
        "nie", "ohne", "не", "нет", "без", "ни",
    ];
    word.ends_with("n't") || NEG.contains(&word)
}

/// Character n-grams of a longer word, marked at its edges: they carry a
/// word's stem across inflections, typos and compounds ("authenticator",
/// "authentication", "authentifizierung"), which whole words cannot.
fn char_grams(word: &str, out: &mut BTreeSet<String>) {
    let chars: Vec<char> = format!("^{word}$").chars().collect();
    if chars.len() < MIN_GRAM_WORD + 2 {
        return;
    }
    for gram in chars.windows(GRAM) {
        // One allocation a gram (this runs for every gram of every word).
        let mut name = String::with_capacity(2 + gram.iter().map(|c| c.len_utf8()).sum::<usize>());
        name.push_str("g:");
        name.extend(gram);
        out.insert(name);
    }
}

/// How the features of a request are weighed; written into the model
/// file by the trainer, so the reader weighs them the same way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureOpts {
    /// The value of one character n-gram (a word, pair or character is 1).
    pub gram_share: f64,
    /// The value of a word of the prose around a form's reason answer
    /// (0: only the answer is read when there is one).
    pub rest_share: f64,
    /// The value of the phrase rules' findings (`r:` each reason they
    /// name, `r1:` the first-named): the model learns how far each rule
    /// is to be believed (0: the rules are not read).
    pub rule_share: f64,
    /// Latin accents are folded before the words are cut (a file that
    /// names no `fold` was trained without).
    pub fold: bool,
}

impl Default for FeatureOpts {
    fn default() -> Self {
        FeatureOpts {
            gram_share: GRAM_SHARE,
            rest_share: 0.0,
            rule_share: 0.0,
            fold: false,
        }
    }
}

impl FeatureOpts {
    fn from_meta(linear: &Linear) -> FeatureOpts {
        let get = |key: &str, default: f64| {
            linear
                .meta(key)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .unwrap_or(default)
        };
        let d = FeatureOpts::default();
        FeatureOpts {
            gram_share: get("gram_share", d.gram_share),
            rest_share: get("rest_share", d.rest_share),
            rule_share: get("rule_share", d.rule_share),
            fold: linear.meta("fold") == Some("1"),
        }
    }
}

/// A text's features with their values: `w:` words, `b:` pairs, `n:`
/// negated words, `c:` CJK characters and pairs at 1, `g:` character
/// n-grams at `opts.gram_share`, each multiplied by `scale`.
fn weigh(text: &str, opts: &FeatureOpts, scale: f64, out: &mut Features) {
    for f in features_folded(text, opts.fold) {
        let v = if f.starts_with("g:") {
            opts.gram_share
        } else {
            1.0
        } * scale;
        if v > 0.0 {
            *out.entry(f).or_default() += v;
        }
    }
}

/// The features of free text (a seed sentence), normalised.
pub fn text_features(text: &str, opts: &FeatureOpts) -> Features {
    let mut out = Features::new();
    weigh(text, opts, 1.0, &mut out);
    linear::normalise(&mut out);
    out
}

/// The features of a request as the reader prepares it: the form's
/// reason answer when it has one, else the prose and the subject (see
/// [`reading_text`]); the rest of the prose at `rest_share`; and the shape
/// of the form (`f:`: a form, a reason answer, the recovery-codes box
/// ticked or not), which says which template, and so which era, the
/// request is from; and what the phrase rules `named` (the reader has
/// them already: they are not found twice). Normalised.
pub(super) fn doc_features(
    doc: &Document,
    subject: &str,
    named: &[Reason],
    opts: &FeatureOpts,
) -> Features {
    let mut out = Features::new();
    let answer = doc.answers(SectionKind::Reason);
    weigh(&model_input(doc, subject), opts, 1.0, &mut out);
    if !answer.trim().is_empty() && opts.rest_share > 0.0 {
        let rest = doc.prose.replacen(answer.trim(), " ", 1);
        let rest = format!("{rest}\n{subject}");
        weigh(&rest, opts, opts.rest_share, &mut out);
    }
    let mut flag = |name: &str| {
        out.insert(format!("f:{name}"), 1.0);
    };
    if doc.is_form() {
        flag("form");
    }
    if !answer.trim().is_empty() {
        flag("answer");
    }
    let codes_box = doc
        .ticks
        .iter()
        .find(|t| t.section == Some(SectionKind::RecoveryCodes));
    match codes_box {
        Some(t) if t.checked => flag("codes_ticked"),
        Some(_) => flag("codes_unticked"),
        None => {}
    }
    if opts.rule_share > 0.0 {
        for (i, r) in named.iter().enumerate() {
            out.insert(format!("r:{}", r.code()), opts.rule_share);
            if i == 0 {
                out.insert(format!("r1:{}", r.code()), opts.rule_share);
            }
        }
    }
    linear::normalise(&mut out);
    out
}

/// The reader's features of a request's new text and subject (what the
/// trainer learns from).
pub fn reading_features(new_text: &str, subject: &str, opts: &FeatureOpts) -> Features {
    let (doc, subject) = super::prepare(new_text, subject);
    let named = super::reasons::named(&doc, &subject);
    doc_features(&doc, &subject, &named, opts)
}

/// A trained reason model: the learnt weights and how to weigh features.
#[derive(Debug, Clone, Default)]
pub struct Model {
    linear: Linear,
    opts: FeatureOpts,
    trust: Option<Trust>,
}

/// What the model makes of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guess {
    /// The likeliest reason.
    pub reason: Reason,
    /// Its probability (0..=1).
    pub confidence: f64,
}

impl Model {
    /// Reads a model file (as [`train`] writes it). A file trained on
    /// another feature set, or a damaged one, is an empty model, which
    /// never decides anything: the phrase rules then read alone.
    pub fn parse(text: &str) -> Model {
        let linear = Linear::parse(text, CLASSES.len());
        if linear.meta("features") != Some(FEATURE_VERSION) {
            return Model::default();
        }
        Model {
            opts: FeatureOpts::from_meta(&linear),
            linear,
            trust: None,
        }
    }

    /// True when the model knows nothing.
    pub fn is_empty(&self) -> bool {
        self.linear.is_empty()
    }

    /// How many features carry a weight.
    pub fn len(&self) -> usize {
        self.linear.len()
    }

    /// How the model weighs features.
    pub fn opts(&self) -> &FeatureOpts {
        &self.opts
    }

    /// The same model trusted differently (cross-validation tries
    /// several levels).
    pub fn with_trust(mut self, trust: Trust) -> Model {
        self.trust = Some(trust);
        self
    }

    /// How sure the model must be to decide ([`TRUST`] unless set).
    pub fn trust(&self) -> Trust {
        self.trust.unwrap_or(TRUST)
    }

    /// The log probability of every reason for a feature vector, in
    /// [`CLASSES`] order; `None` when the model knows none of them.
    pub fn scores(&self, features: &Features) -> Option<Scores> {
        let lp = self.linear.log_probs(features)?;
        let mut log_posterior = [f64::NEG_INFINITY; 6];
        for (slot, v) in log_posterior.iter_mut().zip(lp) {
            *slot = v;
        }
        Some(Scores { log_posterior })
    }

    /// The likeliest reason for a request's new text and subject.
    pub fn guess_request(&self, new_text: &str, subject: &str) -> Option<Guess> {
        self.scores(&reading_features(new_text, subject, &self.opts))
            .map(|s| s.guess())
    }

    /// The likeliest reason for free text read as a request of its own.
    pub fn guess(&self, text: &str) -> Option<Guess> {
        self.guess_request(text, "")
    }
}

/// The model's log probabilities for one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// `ln P(reason | text)` per reason, in [`CLASSES`] order.
    pub log_posterior: [f64; 6],
}

impl Scores {
    /// The likeliest reason.
    pub fn guess(&self) -> Guess {
        let p = &self.log_posterior;
        let best = (0..6).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
        Guess {
            reason: CLASSES[best],
            confidence: p[best].exp(),
        }
    }

    /// The probability of one reason.
    pub fn p(&self, reason: Reason) -> f64 {
        CLASSES
            .iter()
            .position(|c| *c == reason)
            .map_or(0.0, |i| self.log_posterior[i].exp())
    }
}

/// The committed model.
pub fn committed() -> &'static Model {
    &MODEL
}

/// The text the model reads for a request, as the reader prepares it: a
/// form's reason answer when it has one (the rest of a form is the same
/// in every request and says little about the reason), else the prose
/// and the subject.
pub fn reading_text(new_text: &str, subject: &str) -> String {
    let (doc, subject) = super::prepare(new_text, subject);
    model_input(&doc, &subject)
}

/// See [`reading_text`].
pub(super) fn model_input(doc: &Document, subject: &str) -> String {
    let answer = doc.answers(SectionKind::Reason);
    if answer.trim().is_empty() {
        format!("{}\n{subject}", doc.prose)
    } else {
        answer
    }
}

/// One training example: its features, its reason, whether it is a seed.
pub type Example = (Features, Reason, bool);

/// Trains a model on examples (seeds count [`SEED_WEIGHT`] requests and
/// keep their features even when they occur once) and returns it with
/// the settings it was trained with recorded.
pub fn train(examples: &[Example], cfg: &TrainConfig, opts: &FeatureOpts) -> Model {
    let examples: Vec<linear::Example> = examples
        .iter()
        .filter_map(|(features, reason, seed)| {
            Some(linear::Example {
                features: features.clone(),
                class: CLASSES.iter().position(|c| c == reason)?,
                weight: if *seed { SEED_WEIGHT } else { 1.0 },
                seed: *seed,
            })
        })
        .collect();
    let mut linear = Linear::train(&examples, CLASSES.len(), cfg);
    linear.set_meta("features", FEATURE_VERSION);
    linear.set_meta("gram_share", &opts.gram_share.to_string());
    linear.set_meta("rest_share", &opts.rest_share.to_string());
    linear.set_meta("rule_share", &opts.rule_share.to_string());
    if opts.fold {
        linear.set_meta("fold", "1");
    }
    linear.set_meta("l2", &cfg.l2.to_string());
    linear.set_meta("epochs", &cfg.epochs.to_string());
    Model {
        linear,
        opts: *opts,
        trust: None,
    }
}

/// The model file's text.
pub fn write(model: &Model) -> String {
    model.linear.write(
        "recoverydesk reason model: multinomial logistic regression (softmax).\nGenerated by `cargo run --example train_reason_model`; do not edit by hand.\nColumns: feature, then its weight for lost_2fa_device,\nrecovery_codes_lost_or_not_working, forgot_password, lost_email_access,\nsuspected_compromise, other. Feature values are normalised per request.",
    )
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_words_pairs_and_cjk_characters() {
        let f = features("My YubiKey broke. 我的手机");
        assert!(f.contains("w:yubikey"));
        assert!(f.contains("b:yubikey broke"));
        assert!(!f.contains("b:broke 我"));
        assert!(f.contains("c:手机"));
        let f = features("user jodoe1234 at https://x.example/user/jodoe");
        assert!(!f
            .iter()
            .any(|x| x.contains("1234") || x.contains("example")));
    }

    #[test]
    fn accents_are_folded_only_when_asked() {
        let f = features_folded("Código não funciona", true);
        assert!(f.contains("w:codigo") && f.contains("n:funciona"), "{f:?}");
        assert!(f.contains("g:^cod"));
        let f = features_folded("Código не", true);
        assert!(f.contains("w:не"));
        let f = features("Código");
        assert!(f.contains("w:código") && !f.contains("w:codigo"));
        // The committed model was trained folded, and says so.
        assert!(MODEL.opts().fold);
    }

    #[test]
    fn the_committed_model_loads_and_is_modest() {
        let text = include_str!("reason_model.tsv");
        assert!(text.len() < 1_000_000, "{} bytes", text.len());
        assert!(MODEL.len() > 500, "{}", MODEL.len());
        assert_eq!(
            Linear::parse(text, CLASSES.len()).meta("features"),
            Some(FEATURE_VERSION),
            "the committed model was trained on other features: retrain it"
        );
        for (text, want) in [
            ("My Yubikey (security device) broke", Reason::Lost2faDevice),
            ("Loss access to email address", Reason::LostEmailAccess),
        ] {
            assert_eq!(MODEL.guess(text).map(|g| g.reason), Some(want), "{text}");
        }
    }

    #[test]
    fn a_damaged_or_foreign_model_file_is_an_empty_model() {
        let m = Model::parse("=features\tsoftmax-1\n=bias\t1\t2\nw:x\tnan\t1\t1\t1\t1\t1\n\u{0}");
        assert!(m.is_empty());
        assert_eq!(m.guess("x"), None);
        // Weights learnt over another feature set are not read at all.
        let m = Model::parse("=features\tnaive-bayes\nw:x\t1\t1\t1\t1\t1\t1\n");
        assert!(m.is_empty());
    }

    #[test]
    fn training_writing_and_reading_agree() {
        let opts = FeatureOpts::default();
        let seed = |t: &str, r| (text_features(t, &opts), r, true);
        let examples = vec![
            seed("lost phone", Reason::Lost2faDevice),
            seed("my phone broke", Reason::Lost2faDevice),
            seed("forgot password", Reason::ForgotPassword),
            seed("I forgot the password", Reason::ForgotPassword),
        ];
        let trained = train(&examples, &TrainConfig::default(), &opts);
        let read = Model::parse(&write(&trained));
        assert_eq!(read.len(), trained.len());
        for (text, want) in [
            ("I lost my phone", Reason::Lost2faDevice),
            ("forgot my password", Reason::ForgotPassword),
        ] {
            let a = trained.guess(text).expect("known words");
            let b = read.guess(text).expect("known words");
            assert_eq!(a.reason, want, "{text}");
            assert_eq!(b.reason, want, "{text}");
            assert!((a.confidence - b.confidence).abs() < 1e-3, "{a:?} {b:?}");
        }
    }
}
