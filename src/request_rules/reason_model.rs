//! A naive-Bayes reading of the reason, learnt from labelled requests.
//!
//! The phrase rules in `super::reasons` are precise but only know the
//! wordings someone wrote down; requesters keep finding new ones ("my
//! Yubikey broke", "the authentication code is not working"). This model
//! weighs every word, word pair and (for Chinese and Japanese) character
//! pair by how often it came with each reason in the development data, so
//! a wording close to a known one is still read.
//!
//! The weights are data, not code: `reason_model.tsv` is written by
//! `cargo run --example train_reason_model` from the development part of
//! the labelled requests (never the held-out part) and the hand-written
//! multilingual seed sentences in `reason_seeds.tsv`, and committed. At run
//! time the model is only read; it is pure and cannot fail (a damaged file
//! reads as an empty model, which never decides anything).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use once_cell::sync::Lazy;
use regex::Regex;

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

/// Additive smoothing of feature counts (a feature never seen with a class
/// is unlikely there, not impossible).
const ALPHA: f64 = 0.5;
/// How many requests one seed sentence counts as: a seed is a wording
/// written on purpose (often the only one in its language), so one
/// occurrence must outweigh the common words around it.
const SEED_WEIGHT: usize = 3;
/// A feature must occur in this many training requests to be kept, which
/// drops names, usernames and one-off typos from the committed weights.
const MIN_DOCS: usize = 2;

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
    let (mut out, words) = analyse(text);
    for w in &words {
        char_grams(w, &mut out);
    }
    out
}

/// The word, pair, negation and CJK features of a text, and its words
/// (each once) for the character n-grams.
fn analyse(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let lower = text.to_lowercase();
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

/// The weight of one character n-gram's evidence: a word gives several,
/// all saying much the same, and counted in full they would make the
/// model sure of a stem it saw a few times.
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
        out.insert(format!("g:{}", gram.iter().collect::<String>()));
    }
}

/// A trained model: log-probabilities per class, as read from a model file.
#[derive(Debug, Default)]
pub struct Model {
    prior: [f64; 6],
    weights: HashMap<String, [f64; 6]>,
}

/// What the model makes of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guess {
    /// The likeliest reason.
    pub reason: Reason,
    /// Its posterior probability (0..=1).
    pub confidence: f64,
    /// How many of the text's features the model knows.
    pub known: usize,
}

impl Model {
    /// Reads a model file (as [`train`] writes it); lines that do not parse
    /// are skipped, so a damaged file is a smaller model, never an error.
    pub fn parse(text: &str) -> Model {
        let mut model = Model::default();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut cols = line.split('\t');
            let key = cols.next().unwrap_or("");
            let mut values = [0.0f64; 6];
            let mut n = 0;
            for (slot, v) in values.iter_mut().zip(cols) {
                match v.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => {
                        *slot = v;
                        n += 1;
                    }
                    _ => break,
                }
            }
            if n != 6 {
                continue;
            }
            if key == "=prior" {
                model.prior = values;
            } else {
                model.weights.insert(key.to_string(), values);
            }
        }
        model
    }

    /// The likeliest reason for a text; `None` when the text has no
    /// feature the model knows.
    pub fn guess(&self, text: &str) -> Option<Guess> {
        self.scores(text).map(|s| s.guess())
    }

    /// The log posterior of every reason for a text, in [`CLASSES`] order;
    /// `None` when the text has no feature the model knows.
    pub fn scores(&self, text: &str) -> Option<Scores> {
        let mut score = self.prior;
        let mut known = 0;
        let (mut feats, words) = analyse(text);
        // Character n-grams stand in for a word the model has not seen (a
        // typo, an inflection); a known word speaks for itself, and its
        // grams would only repeat it.
        let mut grams = BTreeSet::new();
        for w in words
            .iter()
            .filter(|w| !self.weights.contains_key(&format!("w:{w}")))
        {
            char_grams(w, &mut grams);
        }
        feats.extend(grams);
        for f in feats {
            if let Some(w) = self.weights.get(&f) {
                known += 1;
                let share = if f.starts_with("g:") { GRAM_SHARE } else { 1.0 };
                for (s, w) in score.iter_mut().zip(w) {
                    *s += w * share;
                }
            }
        }
        if known == 0 {
            return None;
        }
        let top = score.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let norm = top + score.iter().map(|s| (s - top).exp()).sum::<f64>().ln();
        Some(Scores {
            log_posterior: score.map(|s| s - norm),
            known,
        })
    }
}

/// The model's log posteriors for one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// `ln P(reason | text)` per reason, in [`CLASSES`] order.
    pub log_posterior: [f64; 6],
    /// How many of the text's features the model knows.
    pub known: usize,
}

impl Scores {
    /// The likeliest reason.
    pub fn guess(&self) -> Guess {
        let p = &self.log_posterior;
        let best = (0..6).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
        Guess {
            reason: CLASSES[best],
            confidence: p[best].exp(),
            known: self.known,
        }
    }

    /// The log posterior of one reason.
    pub fn of(&self, reason: Reason) -> f64 {
        CLASSES
            .iter()
            .position(|c| *c == reason)
            .map_or(f64::NEG_INFINITY, |i| self.log_posterior[i])
    }
}

/// The committed model.
pub fn committed() -> &'static Model {
    &MODEL
}

/// The text the model reads for a request, as the reader prepares it: a
/// form's reason answer when it has one (the rest of a form is the same
/// in every request and says nothing about the reason), else the prose
/// and the subject. The generator trains on exactly this.
pub fn reading_text(new_text: &str, subject: &str) -> String {
    let (doc, subject) = super::prepare(new_text, subject);
    model_input(&doc, &subject)
}

/// See [`reading_text`].
pub(super) fn model_input(doc: &super::sections::Document, subject: &str) -> String {
    let answer = doc.answers(super::sections::SectionKind::Reason);
    if answer.trim().is_empty() {
        format!("{}\n{subject}", doc.prose)
    } else {
        answer
    }
}

/// Trains a model on `(reading text, reason, is_seed)` examples and returns
/// the model file's text. Seed sentences keep their features even when
/// they occur once: they were written to teach a wording.
pub fn train(examples: &[(String, Reason, bool)]) -> String {
    let mut df: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    let docs: Vec<(BTreeSet<String>, usize, usize)> = examples
        .iter()
        .filter_map(|(text, reason, seed)| {
            let class = CLASSES.iter().position(|c| c == reason)?;
            let feats = features(text);
            for f in &feats {
                let e = df.entry(f.clone()).or_default();
                e.0 += 1;
                e.1 |= *seed;
            }
            Some((feats, class, if *seed { SEED_WEIGHT } else { 1 }))
        })
        .collect();
    let vocab: BTreeSet<&String> = df
        .iter()
        .filter(|(_, (n, seed))| *n >= MIN_DOCS || *seed)
        .map(|(f, _)| f)
        .collect();
    let mut class_docs = [0usize; 6];
    let mut counts: BTreeMap<&String, [usize; 6]> = BTreeMap::new();
    let mut totals = [0usize; 6];
    for (feats, class, weight) in &docs {
        class_docs[*class] += 1;
        for f in feats.iter().filter(|f| vocab.contains(f)) {
            counts.entry(f).or_default()[*class] += weight;
            totals[*class] += weight;
        }
    }
    let n_docs = docs.len().max(1) as f64;
    let v = vocab.len() as f64;
    let mut out = String::from(
        "# recoverydesk reason model: naive Bayes over words, word pairs and CJK characters.\n# Generated by `cargo run --example train_reason_model`; do not edit by hand.\n# Columns: feature, then log P(feature | reason) for lost_2fa_device,\n# recovery_codes_lost_or_not_working, forgot_password, lost_email_access,\n# suspected_compromise, other.\n",
    );
    let row = |out: &mut String, key: &str, values: [f64; 6]| {
        out.push_str(key);
        for v in values {
            out.push_str(&format!("\t{v:.3}"));
        }
        out.push('\n');
    };
    // Priors are flattened halfway to uniform: the development set is half
    // lost devices, and a new wording should not default to that.
    let prior = class_docs.map(|n| (((n as f64 + 1.0) / (n_docs + 6.0)).sqrt()).ln());
    row(&mut out, "=prior", prior);
    for (f, c) in counts {
        let mut values = [0.0; 6];
        for k in 0..6 {
            values[k] = ((c[k] as f64 + ALPHA) / (totals[k] as f64 + ALPHA * v)).ln();
        }
        row(&mut out, f, values);
    }
    out
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
    fn the_committed_model_loads_and_reads_new_wordings() {
        assert_eq!(MODEL.prior.len(), 6);
        assert!(MODEL.weights.len() > 500, "{}", MODEL.weights.len());
        for (text, want) in [
            ("My Yubikey (security device) broke", Reason::Lost2faDevice),
            ("Loss access to email address", Reason::LostEmailAccess),
            ("Mi llave de seguridad se rompió", Reason::Lost2faDevice),
            ("パスワードを忘れました", Reason::ForgotPassword),
        ] {
            assert_eq!(MODEL.guess(text).map(|g| g.reason), Some(want), "{text}");
        }
    }

    #[test]
    fn a_damaged_model_file_is_an_empty_model() {
        let m = Model::parse("=prior\t1\t2\nw:x\tnan\t1\t1\t1\t1\t1\n\u{0}");
        assert!(m.weights.is_empty());
        assert_eq!(m.guess("x"), None);
    }

    #[test]
    fn training_and_reading_agree() {
        let examples = vec![
            ("lost phone".to_string(), Reason::Lost2faDevice, true),
            ("forgot password".to_string(), Reason::ForgotPassword, true),
        ];
        let m = Model::parse(&train(&examples));
        assert_eq!(
            m.guess("I lost my phone").map(|g| g.reason),
            Some(Reason::Lost2faDevice)
        );
        assert_eq!(
            m.guess("forgot my password").map(|g| g.reason),
            Some(Reason::ForgotPassword)
        );
    }
}
