//! What the reading report and the reason-model generator share: where the
//! corpus is, the fixed held-out split, and the labelled PyPI requests.
//!
//! The split is decided by a hash of each record's id (FNV-1a, 64 bits):
//! a record is held out when the hash modulo 100 is below
//! [`HOLDOUT_PERCENT`]. It never depends on the data's order or content, so
//! adding records never moves an old one between the parts, and the tuning
//! work (and the reason model) only ever sees the development part.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod training;

/// Share of every labelled set kept out of tuning and training.
pub const HOLDOUT_PERCENT: u64 = 30;

/// The shared corpus beside the checkout.
pub fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.is_dir().then_some(dir)
}

/// FNV-1a over the id's bytes: stable across runs, platforms and Rust
/// versions (unlike `DefaultHasher`).
pub fn fnv1a(id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// True when the record with this id is in the held-out part.
pub fn held_out(id: &str) -> bool {
    fnv1a(id) % 100 < HOLDOUT_PERCENT
}

/// One labelled request of `pypi-support-requests/requests.jsonl`.
#[derive(Debug, Deserialize)]
pub struct PypiRecord {
    /// `pypi/support#N`: the split key.
    pub id: String,
    /// The issue title (used as the subject).
    pub title: String,
    /// The opening body.
    pub body: String,
    /// What a reader labelled.
    pub labels: PypiLabels,
}

/// The labels the report scores.
#[derive(Debug, Deserialize)]
pub struct PypiLabels {
    /// The username, `None` where none is given.
    pub username: Option<String>,
    /// The primary reason category.
    pub reason_category: String,
    /// Further reasons.
    #[serde(default)]
    pub secondary_reason_categories: Vec<String>,
    /// `true`, `false` or `"unknown"`.
    pub claims_linked_email_access: serde_json::Value,
    /// `true`, `false`, `"unknown"` or `"not_in_template"`.
    pub agreed_code_of_conduct: serde_json::Value,
    /// `true`, `false`, `"unknown"` or `"not_in_template"`.
    pub acknowledged_processing_time: serde_json::Value,
    /// ISO 639-1, or `None`.
    pub language: Option<String>,
}

/// Every labelled PyPI request, or an empty list when the corpus is absent.
pub fn pypi_records() -> Vec<PypiRecord> {
    let Some(dir) = corpus() else {
        return Vec::new();
    };
    let path = dir.join("pypi-support-requests/requests.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// Whitespace that carries no meaning for a support desk, removed before
/// reply texts are compared: CRLF, trailing spaces, runs of blank lines,
/// blank lines at both ends. The reply corpora record their expectations
/// from parsers that keep them.
pub fn normalise(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// One reply body of a reply-stripping corpus and the new text expected.
#[derive(Debug, Clone)]
pub struct ReplyCase {
    /// The file name: the split key.
    pub name: String,
    /// The body as the corpus gives it.
    pub body: String,
    /// The expected new text.
    pub want: String,
}

/// Discourse's email-reply-trimmer bodies, sorted by name; `None` when the
/// corpus is absent.
pub fn trimmer_cases() -> Option<Vec<ReplyCase>> {
    let dir = corpus()?.join("email-reply-trimmer");
    let entries = std::fs::read_dir(dir.join("emails")).ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let cases = names
        .into_iter()
        .filter_map(|name| {
            let body = std::fs::read_to_string(dir.join("emails").join(&name)).ok()?;
            let want = std::fs::read_to_string(dir.join("trimmed").join(&name)).ok()?;
            Some(ReplyCase { name, body, want })
        })
        .collect();
    Some(cases)
}

/// The crisp corpus folder and its `expectations` object; `None` when the
/// corpus is absent.
pub fn crisp_expectations() -> Option<(PathBuf, serde_json::Map<String, serde_json::Value>)> {
    let dir = corpus()?.join("crisp-email-reply-parser");
    let text = std::fs::read_to_string(dir.join("expected.json")).ok()?;
    let mut expected: serde_json::Value =
        serde_json::from_str(&text).expect("expected.json parses");
    match expected["expectations"].take() {
        serde_json::Value::Object(cases) => Some((dir, cases)),
        other => panic!("expectations is not an object: {other}"),
    }
}

/// The crisp cases that give a full expected new text.
pub fn crisp_cases() -> Option<Vec<ReplyCase>> {
    let (dir, expectations) = crisp_expectations()?;
    let cases = expectations
        .iter()
        .filter_map(|(name, case)| {
            let want = case["new_text"]["text"].as_str()?.to_string();
            let body = std::fs::read_to_string(dir.join("fixtures").join(name)).ok()?;
            Some(ReplyCase {
                name: name.clone(),
                body,
                want,
            })
        })
        .collect();
    Some(cases)
}
