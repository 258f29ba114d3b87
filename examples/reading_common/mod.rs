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
