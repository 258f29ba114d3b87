//! The golden set: `tests/golden/*.eml`, each with the reading the worker
//! makes of it pinned in `*.json` (kind, staff verdict, language, new text,
//! secrets, fields, what is missing), as `recoverydesk inspect --json`
//! prints it with the embedded demo config.
//!
//! A change in reading shows up here as a diff to review. After an intended
//! change, regenerate with `scripts/golden-bless` and read the diff of the
//! `.json` files before committing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn messages() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

fn reading_of(eml: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .args(["inspect", "--json"])
        .arg(eml)
        .env_remove("RECOVERYDESK_CONFIG")
        .output()
        .expect("run recoverydesk inspect");
    assert!(
        out.status.success(),
        "inspect {}: {}",
        eml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

#[test]
fn every_golden_message_reads_as_pinned() {
    let bless = std::env::var_os("RD_BLESS").is_some();
    let files = messages();
    assert!(
        files.len() >= 12,
        "the golden set has {} messages",
        files.len()
    );
    let mut differ = Vec::new();
    for eml in &files {
        let actual = reading_of(eml);
        let pinned = eml.with_extension("json");
        if bless {
            let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            std::fs::write(&pinned, text).expect("write the pinned reading");
            continue;
        }
        let expected: serde_json::Value = match std::fs::read(&pinned) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("pinned JSON parses"),
            Err(_) => panic!(
                "{} has no pinned reading: run scripts/golden-bless",
                eml.display()
            ),
        };
        if actual != expected {
            differ.push(format!(
                "{}:\n  pinned: {expected}\n  now:    {actual}",
                eml.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "readings changed (review, then scripts/golden-bless):\n{}",
        differ.join("\n")
    );
}

#[test]
fn the_golden_set_covers_the_kinds_of_mail_we_meet() {
    let kinds: std::collections::BTreeSet<String> = messages()
        .iter()
        .map(|eml| reading_of(eml)["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    for kind in ["human", "auto_reply", "bounce"] {
        assert!(kinds.contains(kind), "no golden {kind} among {kinds:?}");
    }
}
